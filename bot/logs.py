"""How ``khaosat run`` logs: one line per event, with the process's name and id.

"text" is for a person reading a terminal or journalctl; "json" (``[process] log_format``) gives
a log collector one object per line (time in UTC, level, logger, process name and pid, message,
and a traceback when there is one), so the lines of several processes can be merged and filtered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os


class JsonLines(logging.Formatter):
    def __init__(self, process_name: str):
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "process": self.process_name,
                "pid": record.process, "message": record.getMessage()}
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str, process_name: str) -> None:
    """Log INFO and above to stderr in ``log_format`` ("text" or "json")."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines(process_name))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s {process_name}[{os.getpid()}] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
