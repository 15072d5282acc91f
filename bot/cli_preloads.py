"""`khaosat try --frame F --frame-id ID` / `--preload NAME=VALUE`: the sampled person a tried form preloads."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from fieldwork.preloads import PreloadError, flag_preloads, table_row_preloads
from surveys.model import Questionnaire
from surveys.sampling import FrameError

_errors = Console(stderr=True, highlight=False, soft_wrap=True)
_EXIT_REFUSED = 1  # bot.cli.EXIT_REFUSED, not imported to keep this module free of the CLI's imports


def try_preloads(form: Questionnaire, frame: Path | None, frame_id: str | None, flags: tuple[str, ...]) -> dict[str, str]:
    """The frame row's columns, then the flags over them; exits with a message naming the flag or file."""
    try:
        if (frame is None) != (frame_id is None):
            raise PreloadError("--frame and --frame-id go together: the frame file and the row to preload")
        preloads = table_row_preloads(frame, frame_id) if frame is not None and frame_id is not None else {}
        preloads.update(flag_preloads(list(flags)))
    except PreloadError as error:
        _refuse(str(error))
    except FrameError as error:
        _refuse(str(error))
    missing = [name for name in form.preloads if name not in preloads]
    if missing:
        _errors.print(f"! the form reads instance('respondent') {', '.join(missing)}, not given "
                      "(--frame/--frame-id or --preload NAME=VALUE): they stay empty", markup=False, style="yellow")
    return preloads


def _refuse(message: str) -> None:
    _errors.print(f"✗ {message}", markup=False, style="bold red")
    sys.exit(_EXIT_REFUSED)
