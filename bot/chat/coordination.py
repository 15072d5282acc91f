"""Coordinator commands (`/progress`, `/export`) and fieldwork announcements, for the chat ids
listed as a bot's coordinators, on whatever channel they write from."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Callable

from bot.chat.events import Capabilities, Document, Notice, Outgoing
from bot.conversations import Conversations
from exporters.progress import fieldwork_messages
from fieldwork import Refused
from fieldwork.data import ExportOptions, Exported, export
from storage import StorageError, open_storage
from storage.answers_read import database_file
from surveys.messages import say

log = logging.getLogger(__name__)

# TODO(lead): move into surveys.messages.MESSAGES (the one place for texts; this branch may not edit it).
class CoordinatorDesk:
    commands = ("progress", "export")

    def __init__(self, conversations: Conversations, export_dir: Path, clock: Callable[[], dt.datetime]):
        self.conversations = conversations
        self.export_dir = export_dir
        self.clock = clock

    async def run(self, name: str, key: str, capabilities: Capabilities) -> list[Outgoing]:
        if name == "progress":  # the same text as `khaosat status`, in pieces the platform takes
            texts = await fieldwork_messages(self.conversations.storage, self.clock(), limit=capabilities.text_limit)
            return [Notice(text) for text in texts]
        if not capabilities.documents:
            return [Notice(say("export_not_here", "vi"))]
        path = self.export_dir / f"answers-{self.clock():%Y%m%d-%H%M%S}-{key.rsplit(':', 1)[-1]}.csv"
        try:
            database = await database_file(self.conversations.storage)
            exported = await asyncio.to_thread(write_export, database, path)
        except (Refused, StorageError) as error:
            log.warning("/export for %s failed: %s", key, error)
            return [Notice(say("export_failed", "vi", reason=getattr(error, "message", None) or error))]
        return [Document(str(path), path.name, say("export_caption", "vi", rows=exported.rows))]


def write_export(database: Path, out: Path) -> Exported:
    """`khaosat export`'s wide, pseudonymous CSV of ``database`` (the shared `fieldwork.data.export`),
    run to the end in the calling thread on an event loop and connection of its own: called through
    ``asyncio.to_thread``, neither the read nor the write of the file holds the bots' event loop."""
    async def run() -> Exported:
        async with await open_storage(database) as storage:
            return await export(storage, out, ExportOptions(), where=database.name)

    return asyncio.run(run())
