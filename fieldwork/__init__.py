"""Fieldwork operations shared by the command line and the web console.

Each operation here is what one coordinator or analyst action does — load a survey, import a
frame, draw a sample, issue letters, edit quotas, export, weight, score, report — with its
validation and its messages, so that `khaosat …` and the console's pages run the same code and
say the same things. Layers: the command line and the console call this package; it calls
``surveys``, ``exporters`` and ``storage``; nothing here prints or knows about HTTP.

Input that cannot be used raises ``Refused``: a message naming what was refused and the list of
problems (sheet/row/column, line and field, configuration key), with nothing written.
"""

from __future__ import annotations

from typing import Iterable


class Refused(Exception):
    """An operation refused its input; nothing was written. ``problems`` say where and why."""

    def __init__(self, message: str, problems: Iterable[object] = ()) -> None:
        self.message = message
        self.problems = [str(p) for p in problems]
        super().__init__(message + "".join(f"\n    {p}" for p in self.problems))
