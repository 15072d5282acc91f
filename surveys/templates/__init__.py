"""Bundled example questionnaires (XLSForm as markdown tables, so they diff well in git).

They are examples to be replaced by each year's official forms, and say so on their first
screen; nothing in the code depends on their content.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent


def bundled_templates() -> list[Path]:
    return sorted(FOLDER.glob("*.md"))
