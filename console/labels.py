"""How groups, strata and units are named on the pages (the project's own labels and unit names)."""

from __future__ import annotations

from console.i18n import TEXTS, add_texts, t
from surveys.project import SurveyProject

# Names for the level ids most Vietnamese surveys use (province → commune since July 2025),
# shown when the survey file gives no survey.level_labels.
add_texts({"level_province": {"vi": "tỉnh", "en": "province"},
           "level_commune": {"vi": "xã, phường", "en": "commune"}})


def group_label(project: SurveyProject, group_id: str, lang: str) -> str:
    group = project.groups.get(group_id)
    return group.label_in(lang) if group else group_id


def level_label(project: SurveyProject, level: str, lang: str) -> str:
    """The survey file's name for a level, else the built-in one for a common id, else the id."""
    named = project.level_label(level, lang)
    if named:
        return named
    return t(f"level_{level}", lang) if f"level_{level}" in TEXTS else level


def stratum_label(project: SurveyProject, stratum: str, lang: str) -> str:
    """``citizen/xa-a/nu`` → ``Xã Á / nu`` (the group is shown in its own column)."""
    rest = stratum.split("/", 1)[1] if "/" in stratum else ""
    return " / ".join(project.units[p].name if p in project.units else p for p in rest.split("/")) if rest else "—"


def strata_names(project: SurveyProject, strata, lang: str) -> dict[str, tuple[str, str]]:
    """Stratum key → (group label, stratum label), for rows that carry ``.group`` and ``.stratum``."""
    return {s.stratum: (group_label(project, s.group, lang), stratum_label(project, s.stratum, lang)) for s in strata}


def unit_units(project: SurveyProject, unit: str) -> frozenset[str]:
    """The unit and every unit below it."""
    below = set()
    for unit_id in project.units:
        node = project.units.get(unit_id)
        while node is not None:
            if node.id == unit:
                below.add(unit_id)
                break
            node = project.units.get(node.parent) if node.parent else None
    return frozenset(below)
