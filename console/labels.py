"""How groups, strata and units are named on the pages (the project's own labels and unit names)."""

from __future__ import annotations

from surveys.project import SurveyProject


def group_label(project: SurveyProject, group_id: str, lang: str) -> str:
    group = project.groups.get(group_id)
    return group.label_in(lang) if group else group_id


def stratum_label(project: SurveyProject, stratum: str, lang: str) -> str:
    """``citizen/xa-a/nu`` → ``Xã Á / nu`` (the group is shown in its own column)."""
    rest = stratum.split("/", 1)[1] if "/" in stratum else ""
    return " / ".join(project.units[p].name if p in project.units else p for p in rest.split("/")) if rest else "—"


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
