"""Coordinator commands (`/progress`, `/export`) and fieldwork announcements, for the chat ids
listed as a bot's coordinators, on whatever channel they write from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from bot.chat.events import Capabilities, Document, Notice, Outgoing
from bot.conversations import Conversations
from exporters.progress import fieldwork_messages
from exporters.table import session_table, write_csv
from surveys.messages import say


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
        table = await session_table(self.conversations)
        path = self.export_dir / f"answers-{self.clock():%Y%m%d-%H%M%S}-{key.rsplit(':', 1)[-1]}.csv"
        write_csv(table, path)
        return [Document(str(path), path.name, say("export_caption", "vi", rows=len(table.rows)))]
