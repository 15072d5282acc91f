"""Scoring rules: how answers become the survey's share of an index, as versioned data.

The official conversion of answers into points, the weighting of respondent groups and the
split of the 30.50 survey points across domains are not public and are re-issued every few
years, so none of it is code: a TOML file per index year maps questions to sub-criteria,
criteria and domains, answer options to a share of the maximum, groups to weights and
sub-criteria to maximum points. `surveys/templates/scoring_par_2026.example.toml` is an
example, not the official rules.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from surveys.model import Questionnaire

EXCLUDE = "exclude"


class ScoringError(ValueError):
    pass


@dataclass(frozen=True)
class SubCriterion:
    id: str
    name: str
    criterion: str
    domain: str
    max_points: float
    questions: tuple[str, ...]
    scale: str


@dataclass(frozen=True)
class Satisfaction:
    """SIPAS-style: the share of answers in the `satisfied` options, per aspect and overall."""

    satisfied: frozenset[str]
    excluded: frozenset[str]
    aspects: Mapping[str, tuple[str, ...]]
    aspect_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoringRules:
    name: str
    year: int
    max_points: float
    #: scale name → answer option → share of the maximum (None: the option is not counted)
    scales: Mapping[str, Mapping[str, float | None]]
    domains: Mapping[str, str]
    criteria: Mapping[str, tuple[str, str]]  # id → (name, domain)
    subcriteria: tuple[SubCriterion, ...]
    #: respondent group → weight; empty: every answer counts by its design weight alone
    group_weights: Mapping[str, float] = field(default_factory=dict)
    satisfaction: Satisfaction | None = None

    @property
    def questions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(q for sub in self.subcriteria for q in sub.questions))

    def share(self, scale: str, answer: Any) -> float | None:
        """The share of the maximum an answer earns; None when it does not count."""
        if answer is None or (isinstance(answer, float) and math.isnan(answer)):
            return None
        key = str(int(answer)) if isinstance(answer, float) and answer.is_integer() else str(answer)
        return self.scales[scale].get(key)

    def check_against(self, forms: list[Questionnaire]) -> None:
        """Every question the rules score exists, with every option the scale names."""
        by_name = {q.name: q for form in forms for q in form.questions}
        for sub in self.subcriteria:
            for name in sub.questions:
                if name not in by_name:
                    raise ScoringError(f"sub-criterion {sub.id}: question '{name}' is in none of the forms")
                options = {c.name for c in by_name[name].choices}
                unknown = options - set(self.scales[sub.scale])
                if options and unknown:
                    raise ScoringError(f"sub-criterion {sub.id}: scale '{sub.scale}' gives no share for "
                                       f"option(s) {', '.join(sorted(unknown))} of '{name}'")


_TOP = {"index", "scales", "groups", "domains", "criteria", "subcriteria", "satisfaction"}
_INDEX = {"name", "year", "max_points"}
_SUB = {"id", "name", "criterion", "max_points", "questions", "scale"}
_SATISFACTION = {"satisfied", "exclude", "aspects", "aspect_names"}


def load_scoring(path: Path) -> ScoringRules:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoringError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ScoringError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ScoringError(f"{path}: not UTF-8 text (byte {error.start}; perhaps Windows-1258 or TCVN3): "
                           "save it as UTF-8") from None
    _keys(path, "top level", raw, _TOP)
    index = raw.get("index", {})
    _keys(path, "[index]", index, _INDEX)
    scales = {}
    for scale, options in raw.get("scales", {}).items():
        _keys(path, f"scales.{scale}", options, set(options) if isinstance(options, dict) else set())
        scales[scale] = {}
        for option, share in options.items():
            if share == EXCLUDE:
                scales[scale][str(option)] = None
            elif isinstance(share, (int, float)) and 0 <= share <= 1:
                scales[scale][str(option)] = float(share)
            else:
                raise ScoringError(f"{path}: scales.{scale}.{option} must be a share from 0 to 1 or \"exclude\"")
    domains = {str(k): str(v) for k, v in raw.get("domains", {}).items()}
    criteria = {}
    for criterion, spec in raw.get("criteria", {}).items():
        _keys(path, f"criteria.{criterion}", spec, {"name", "domain"})
        if str(spec.get("domain")) not in domains:
            raise ScoringError(f"{path}: criteria.{criterion} names domain {spec.get('domain')!r}, "
                               "which [domains] does not list")
        criteria[str(criterion)] = (str(spec.get("name", criterion)), str(spec["domain"]))
    subcriteria = []
    for number, spec in enumerate(raw.get("subcriteria", []), start=1):
        where = f"[[subcriteria]] #{number}"
        _keys(path, where, spec, _SUB)
        for key in ("id", "criterion", "max_points", "questions", "scale"):
            if key not in spec:
                raise ScoringError(f"{path}: {where} has no {key}")
        if str(spec["criterion"]) not in criteria:
            raise ScoringError(f"{path}: {where} names criterion {spec['criterion']!r}, which [criteria] does not list")
        if spec["scale"] not in scales:
            raise ScoringError(f"{path}: {where} uses scale {spec['scale']!r}, which [scales] does not define")
        if not spec["questions"]:
            raise ScoringError(f"{path}: {where} scores no question")
        if not isinstance(spec["questions"], list):
            raise ScoringError(f"{path}: {where} questions must be a list of question names, e.g. [\"q1\"]")
        criterion = str(spec["criterion"])
        subcriteria.append(SubCriterion(id=str(spec["id"]), name=str(spec.get("name", spec["id"])),
                                        criterion=criterion, domain=criteria[criterion][1],
                                        max_points=_number(path, f"{where} max_points", spec["max_points"]),
                                        questions=tuple(spec["questions"]), scale=spec["scale"]))
    ids = [sub.id for sub in subcriteria]
    if len(set(ids)) != len(ids):
        raise ScoringError(f"{path}: two sub-criteria share an id")
    if subcriteria and "max_points" not in index:
        raise ScoringError(f"{path}: [index] has no max_points (the total the sub-criteria add up to)")
    if not subcriteria and raw.get("satisfaction") is None:
        raise ScoringError(f"{path}: nothing to score: give [[subcriteria]] or [satisfaction]")
    max_points = _number(path, "index.max_points", index.get("max_points", 0))
    total = sum(sub.max_points for sub in subcriteria)
    if not math.isclose(total, max_points, abs_tol=1e-9):
        raise ScoringError(f"{path}: the sub-criteria's max_points add up to {total:g}, not index.max_points "
                           f"= {max_points:g}")
    _keys(path, "[groups]", raw.get("groups", {}), set(raw.get("groups", {})) if isinstance(raw.get("groups"), dict) else set())
    groups = {str(k): _number(path, f"groups.{k}", v) for k, v in raw.get("groups", {}).items()}
    if any(weight <= 0 for weight in groups.values()):
        raise ScoringError(f"{path}: group weights must be positive")
    return ScoringRules(name=str(index.get("name", "")), year=int(_number(path, "index.year", index.get("year", 0))), max_points=max_points,
                        scales=scales, domains=domains, criteria=criteria, subcriteria=tuple(subcriteria),
                        group_weights=groups, satisfaction=_satisfaction(path, raw.get("satisfaction")))


def _satisfaction(path: Path, raw: dict | None) -> Satisfaction | None:
    if raw is None:
        return None
    _keys(path, "[satisfaction]", raw, _SATISFACTION)
    if not isinstance(raw.get("aspects", {}), dict) or not all(isinstance(v, list) for v in raw.get("aspects", {}).values()):
        raise ScoringError(f"{path}: [satisfaction] aspects must be a table of lists, e.g. aspects = {{ a = [\"q1\"] }}")
    if not isinstance(raw.get("satisfied", []), list):
        raise ScoringError(f"{path}: [satisfaction] satisfied must be a list of options, e.g. [\"hai_long\"]")
    aspects = {str(k): tuple(v) for k, v in raw.get("aspects", {}).items()}
    if not aspects or not raw.get("satisfied"):
        raise ScoringError(f"{path}: [satisfaction] needs `satisfied` options and at least one aspect")
    return Satisfaction(satisfied=frozenset(map(str, raw["satisfied"])),
                        excluded=frozenset(map(str, raw.get("exclude", []))), aspects=aspects,
                        aspect_names={str(k): str(v) for k, v in raw.get("aspect_names", {}).items()})


def _number(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScoringError(f"{path}: {where} must be a number, not {value!r}")
    return float(value)


def _keys(path: Path, where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise ScoringError(f"{path}: {where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise ScoringError(f"{path}: unknown key {sorted(unknown)[0]!r} in {where}; known: {', '.join(sorted(allowed))}")
