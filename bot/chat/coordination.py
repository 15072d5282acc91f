"""Coordinator commands (`/progress`, `/export`) and fieldwork announcements, for the chat ids
listed as a bot's coordinators, on whatever channel they write from."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from bot.chat.events import Capabilities, Document, Notice, Outgoing
from exporters.bundle import Handover, handover
from exporters.progress import fieldwork_messages
from fieldwork import Refused
from fieldwork.background import lower_priority
from fieldwork.conversations import Conversations
from fieldwork.data import ExportOptions, Exported, export
from storage import StorageError, open_storage, redacted
from storage.answers_read import database_file
from surveys.messages import say

log = logging.getLogger(__name__)


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
            exported, handed = await asyncio.to_thread(write_export, database, path)
        except (Refused, StorageError) as error:
            log.warning("/export for %s failed: %s", key, error)
            return [Notice(say("export_failed", "vi", reason=getattr(error, "message", None) or error))]
        return [Document(str(handed.path), handed.path.name, export_caption(exported, handed))]


def export_caption(exported: Exported, handed: Handover) -> str:
    """How many sessions; for a ZIP, how many tables (and media files) it holds."""
    caption = say("export_caption", "vi", rows=exported.rows)
    if handed.media:
        return caption + " " + say("export_caption_zip_media", "vi", tables=len(handed.tables), media=handed.media)
    if handed.bundled:
        return caption + " " + say("export_caption_zip", "vi", tables=len(handed.tables))
    return caption


#: Where write_export's child finds a PostgreSQL URL (its first argument is then "-").
_URL_VARIABLE = "KHAOSAT_EXPORT_DATABASE"


def write_export(database: Path | str, out: Path) -> tuple[Exported, Handover]:
    """`khaosat export`'s wide, pseudonymous CSV of ``database`` (the shared `fieldwork.data.export`),
    run in a child process at idle priority from its first instruction (as the console's jobs run)
    and waited for in the calling thread (``asyncio.to_thread``): in a worker thread the export
    shares the bots' GIL and costs them a third or more of their answers (bench/chat_export_load.py).
    With the file to send: ``out``, or a ZIP of it and its repeat tables (`exporters.bundle`),
    packed by the child too."""
    source = str(Path(__file__).resolve().parents[2])  # the child imports the same code as the bot
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    if isinstance(database, str):  # a PostgreSQL URL: in the environment, where ps does not show its password
        env[_URL_VARIABLE], database = database, "-"
    with subprocess.Popen([sys.executable, "-m", "bot.chat.coordination", str(database), str(out)], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        lower_priority(child.pid)  # at once, before its imports (no preexec_fn: the bot has threads)
        stdout, stderr = child.communicate()
    if child.returncode == 2 and stderr.strip():  # refused: its own words, for the coordinator
        raise Refused(stderr.strip())
    if child.returncode != 0:  # a crash: the traceback to the log, one line to the chat
        log.error("/export of %s: the child process failed (exit %s):\n%s", database, child.returncode, stderr)
        raise Refused(f"the export stopped (exit {child.returncode})")
    rows, columns, handed, tables, media = json.loads(stdout.strip().splitlines()[-1])
    return Exported(out, rows, columns), Handover(Path(handed), tuple(tables), media)


def export_here(database: Path | str, out: Path) -> tuple[Exported, Handover]:
    """The export, to the end, in this process on an event loop and connection of its own; then
    what to hand over."""
    where = database.name if isinstance(database, Path) else redacted(database)

    async def run() -> Exported:
        async with await open_storage(database) as storage:
            return await export(storage, out, ExportOptions(), where=where)

    exported = asyncio.run(run())
    try:
        return exported, handover(out)
    except OSError as error:  # the disk filled while packing: one line, as for the export itself
        raise Refused(str(error)) from None


if __name__ == "__main__":  # write_export's child: the figures on stdout, a refusal's text on stderr
    try:
        exported, handed = export_here(os.environ[_URL_VARIABLE] if sys.argv[1] == "-" else Path(sys.argv[1]),
                                       Path(sys.argv[2]))
    except (Refused, StorageError) as error:
        print(getattr(error, "message", None) or error, file=sys.stderr)
        sys.exit(2)
    print(json.dumps([exported.rows, exported.columns, str(handed.path), list(handed.tables), handed.media]))
