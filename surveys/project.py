"""A survey project: one survey round, described in a TOML file and checked strictly.

One project is one round, e.g. "PAR INDEX 2026, Tỉnh Quảng Trị": its respondent groups
and the questionnaire each group answers, its administrative units (any number of levels;
since July 2025 usually province → commune), how each group is stratified and how its
sample is allocated, its open/close dates, quota targets and reminder policy. Nothing about
the index is hard-coded: groups, units, levels and strata are all data from the file (see
the ``[survey]`` section of ``config.example.toml`` and
``surveys/templates/survey.example.toml``).

Strata. A sample is always drawn separately within each respondent group; the group's
strata variables subdivide it. A variable is ``unit`` (the frame row's unit), the name of a
level (the unit's ancestor at that level, e.g. ``commune``), or the name of an extra column
of the frame (e.g. ``gender``). A stratum's key is the group id followed by the values,
joined by ``/``: ``citizen/xa-hai-lang``, or just ``hdnd`` for a group with no variables.
Quota targets and fixed allocations are keyed by these strings.

Errors are collected, not stopped at the first: ``SurveyError.problems`` names the key
(``groups.citizen.form_id``) or the unit line (``units.csv line 4, column parent``).

This module parses and validates the reminder and quota parts only; their behaviour lives
elsewhere.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import string
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from surveys.privacy import PrivacyPolicy, parse_policy

#: Allocation methods (see ``surveys.sampling``).
ALLOCATION_METHODS = ("proportional", "equal", "fixed", "census")
#: When a quota slot counts as taken (enforced elsewhere).
QUOTA_COUNT_AT = ("completion", "start")
#: Placeholders a reminder text may use.
REMINDER_PLACEHOLDERS = frozenset({"answered", "total"})
UI_LANGUAGES = ("vi", "en")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class SurveyError(ValueError):
    """A survey file that cannot be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Unit:
    """An administrative unit (e.g. a province or a commune); ``parent`` is None at the top."""

    id: str
    name: str
    level: str
    parent: str | None = None


@dataclass(frozen=True)
class Allocation:
    """How a group's sample is spread over its strata.

    ``n`` is the group's total for ``proportional`` and ``equal``; ``fixed`` gives n per
    stratum key; ``census`` takes everyone. ``reserve`` is the length of the ordered reserve
    list drawn per stratum. ``expected_response_rate`` turns the allocated n into expected
    completes, the target of strata that have no quota.
    """

    method: str = "proportional"
    n: int | None = None
    fixed: dict[str, int] = field(default_factory=dict)
    reserve: int = 0
    expected_response_rate: float = 1.0


@dataclass(frozen=True)
class Group:
    """A respondent group (citizens, HĐND delegates, department leaders…) and its questionnaire."""

    id: str
    label: dict[str, str]
    form_id: str
    strata: tuple[str, ...] = ()
    allocation: Allocation = Allocation()

    def label_in(self, language: str) -> str:
        return self.label.get(language) or self.label.get("vi") or next(iter(self.label.values()), self.id)


@dataclass(frozen=True)
class QuotaPolicy:
    """Completes wanted per stratum key; ``count_at`` says when a slot is taken.

    ``hard`` quotas are enforced (``bot/quotas.py``): a slot is reserved when a person
    accepts the consent screen, and the person who arrives when a stratum is full is
    thanked and gets the disposition ``quota_full``. Soft quotas (``hard = false``) never
    block anyone; slots are still recorded, so status shows the fill and the overshoot.
    ``release_after_hours``: a reserved slot whose session has had no activity for this
    long is released (the person becomes a break-off, disposition ``partial``), so that
    people who walked away do not hold a stratum shut. With ``count_at = "start"`` a
    reserved slot counts as taken for good: it is never released.
    """

    count_at: str = "completion"
    targets: dict[str, int] = field(default_factory=dict)
    hard: bool = True
    release_after_hours: int = 72


@dataclass(frozen=True)
class ReminderPolicy:
    """Reminders ``after_days`` days after the person's last activity (at most ``max_count``
    in all), never in quiet hours (local time of ``settings.timezone``).

    ``texts`` per language may use ``{answered}`` and ``{total}``. When they are due is
    decided by ``surveys.reminders``; the periodic pass is ``bot/reminders.py``.
    """

    after_days: tuple[int, ...] = ()
    max_count: int = 0
    quiet_start: str = "21:00"
    quiet_end: str = "07:00"
    texts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class Organiser:
    """Who runs the round, as the invitation letters say: the agency that sends them (``name``,
    e.g. "Sở Nội vụ tỉnh Quảng Trị") and whom people may ask (``contact``, an office or a
    person, with a ``phone`` and an ``email``). Every key is optional ([organiser] in the file)."""

    name: str | None = None
    contact: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class SurveyProject:
    id: str
    title: str
    index_year: int
    opens: dt.date
    closes: dt.date
    levels: tuple[str, ...]
    groups: dict[str, Group]
    units: dict[str, Unit]
    strata: tuple[str, ...] = ()
    settings: Settings = Settings()
    quotas: QuotaPolicy = QuotaPolicy()
    reminders: ReminderPolicy = ReminderPolicy()
    organiser: Organiser = Organiser()
    #: Days after ``closes`` during which people who had begun may still finish (no one new starts).
    grace_days: int = 0
    #: ``survey.level_labels``: level id → {language: label}; levels not in it have none.
    level_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ``[privacy]``: texts, version and retention (``surveys/privacy.py``); empty = the defaults.
    privacy: PrivacyPolicy = PrivacyPolicy()

    # -- queries ---------------------------------------------------------------------------

    def ancestor(self, unit_id: str, level: str) -> str | None:
        """The unit itself or its ancestor at ``level``; None if the unit sits above that level."""
        unit = self.units.get(unit_id)
        while unit is not None:
            if unit.level == level:
                return unit.id
            unit = self.units.get(unit.parent) if unit.parent else None
        return None

    def target(self, stratum: str) -> int | None:
        return self.quotas.targets.get(stratum)

    def level_label(self, level: str, language: str) -> str | None:
        """The file's name for a level in ``language`` (else Vietnamese), None if it gave none."""
        label = self.level_labels.get(level, {})
        return label.get(language) or label.get("vi") or next(iter(label.values()), None)

    # -- (de)serialisation for storage ----------------------------------------------------

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal projects give equal text, so it can be hashed."""
        data = dataclasses.asdict(self)
        data["opens"], data["closes"] = self.opens.isoformat(), self.closes.isoformat()
        if self.organiser == Organiser():  # projects stored before [organiser] existed keep their hash
            del data["organiser"]
        if not self.grace_days:
            del data["grace_days"]  # so a project stored before grace periods keeps its hash
        if not self.level_labels:
            del data["level_labels"]  # likewise for projects stored before level labels
        if self.privacy == PrivacyPolicy():
            del data["privacy"]  # likewise for projects stored before [privacy]
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> SurveyProject:
        d = json.loads(text)
        groups = {}
        for gid, g in d["groups"].items():
            groups[gid] = Group(g["id"], g["label"], g["form_id"], tuple(g["strata"]),
                                Allocation(**g["allocation"]))
        return cls(
            id=d["id"], title=d["title"], index_year=d["index_year"],
            opens=dt.date.fromisoformat(d["opens"]), closes=dt.date.fromisoformat(d["closes"]),
            levels=tuple(d["levels"]), groups=groups,
            units={uid: Unit(**u) for uid, u in d["units"].items()},
            strata=tuple(d["strata"]), settings=Settings(**d["settings"]),
            quotas=QuotaPolicy(**d["quotas"]),
            reminders=ReminderPolicy(**{**d["reminders"], "after_days": tuple(d["reminders"]["after_days"])}),
            organiser=Organiser(**d.get("organiser", {})),
            grace_days=d.get("grace_days", 0),
            level_labels=d.get("level_labels", {}),
            privacy=PrivacyPolicy.from_dict(d.get("privacy")),
        )


# -- loading ------------------------------------------------------------------------------

_TOP_KEYS = {"survey", "settings", "units", "groups", "allocation", "quotas", "reminders", "organiser", "privacy"}
_SURVEY_KEYS = {"id", "title", "index_year", "opens", "closes", "grace_days", "levels", "strata", "level_labels"}
_SETTINGS_KEYS = {"language", "timezone"}
_GROUP_KEYS = {"label", "form_id", "strata", "allocation"}
_ALLOCATION_KEYS = {"method", "n", "reserve", "expected_response_rate"}
_QUOTA_KEYS = {"count_at", "targets", "hard", "release_after_hours"}
_REMINDER_KEYS = {"after_days", "max_count", "quiet_hours", "text"}
_UNIT_KEYS = {"id", "name", "level", "parent"}
_ORGANISER_KEYS = {"name", "contact", "phone", "email"}
#: What a phone number on a letter may be written with; it needs 8 to 15 digits.
_PHONE = re.compile(r"^\+?[0-9 .()\-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def load_survey(path: Path) -> SurveyProject:
    """Read and validate a survey TOML file (units may come from a CSV next to it)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SurveyError(str(path), ["no such file"]) from None
    except UnicodeDecodeError as error:
        raise SurveyError(str(path), [f"not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    return parse_survey(text, str(path), base=path.parent)


def parse_survey(text: str, source: str = "survey.toml", base: Path | None = None) -> SurveyProject:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SurveyError(source, [f"not valid TOML: {error}"]) from None
    return parse_survey_table(raw, source, base)


def parse_survey_table(raw: dict, source: str = "survey.toml", base: Path | None = None) -> SurveyProject:
    """Validate a survey already read from TOML (e.g. a stored one with edited quotas)."""
    return _Parser(source, base).parse(raw)


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


class _Parser:
    def __init__(self, source: str, base: Path | None) -> None:
        self.source = source
        self.base = base
        self.problems: list[str] = []

    def bad(self, message: str) -> None:
        self.problems.append(message)

    def keys(self, where: str, table: Any, allowed: set[str]) -> dict:
        if not isinstance(table, dict):
            self.bad(f"{where}: must be a table")
            return {}
        for key in sorted(set(table) - allowed):
            self.bad(f"{where}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
        return table

    def text(self, where: str, value: Any, *, required: bool = True) -> str | None:
        if value is None:
            if required:
                self.bad(f"{where}: required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(f"{where}: must be non-empty text")
            return None
        return _nfc(value.strip())

    def ident(self, where: str, value: Any) -> str | None:
        value = self.text(where, value)
        if value is not None and not _ID.match(value):
            self.bad(f"{where}: '{value}' must be letters, digits, '.', '_' or '-' (no spaces or '/')")
            return None
        return value

    def integer(self, where: str, value: Any, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(f"{where}: must be a whole number")
            return None
        if value < minimum:
            self.bad(f"{where}: must be at least {minimum}")
            return None
        return value

    def names(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.bad(f"{where}: must be a list of names")
            return ()
        names = tuple(_nfc(v.strip()) for v in value)
        if len(set(names)) != len(names):
            self.bad(f"{where}: a name is repeated")
        return names

    def date(self, where: str, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.bad(f"{where}: must be a date (YYYY-MM-DD)")
        return None

    # -- the sections --------------------------------------------------------------------------

    def parse(self, raw: dict) -> SurveyProject:
        self.keys("(top level)", raw, _TOP_KEYS)
        survey = self.keys("survey", raw.get("survey", {}), _SURVEY_KEYS)
        if "survey" not in raw:
            self.bad("survey: the [survey] table is required")
        sid = self.ident("survey.id", survey.get("id"))
        title = self.text("survey.title", survey.get("title"))
        year = self.integer("survey.index_year", survey.get("index_year"), 2000) if "index_year" in survey \
            else self.bad("survey.index_year: required")
        opens = self.date("survey.opens", survey.get("opens")) if "opens" in survey else self.bad("survey.opens: required")
        closes = self.date("survey.closes", survey.get("closes")) if "closes" in survey \
            else self.bad("survey.closes: required")
        if opens and closes and closes < opens:
            self.bad(f"survey.closes: {closes} is before survey.opens {opens}")
        grace_days = self.integer("survey.grace_days", survey.get("grace_days", 0), 0) or 0
        levels = self.names("survey.levels", survey.get("levels")) if "levels" in survey else ()
        if "levels" not in survey:
            self.bad("survey.levels: required, e.g. [\"province\", \"commune\"]")
        for level in levels:
            if level in ("unit", "group") or "/" in level:
                self.bad(f"survey.levels: '{level}' cannot be a level name")
        level_labels = self.level_labels(survey.get("level_labels", {}), levels)
        strata = self.names("survey.strata", survey.get("strata", []))
        settings = self.settings(raw.get("settings", {}))
        units = self.units(raw.get("units"), levels)
        default_alloc = self.allocation("allocation", raw.get("allocation", {}), None)
        groups = self.groups(raw.get("groups"), strata, default_alloc)
        for variable in strata:
            self.check_variable("survey.strata", variable)
        quotas = self.quotas(raw.get("quotas", {}), groups, levels, units)
        reminders = self.reminders(raw.get("reminders"))
        organiser = self.organiser(raw.get("organiser", {}))
        privacy = parse_policy(raw.get("privacy", {}), self.bad)
        for group in groups.values():
            for key in group.allocation.fixed:
                self.check_stratum_key(f"groups.{group.id}.allocation.n.\"{key}\"", key, groups, levels, units)
            if group.allocation.method == "fixed" and not group.allocation.fixed:
                self.bad(f"groups.{group.id}.allocation.n: method 'fixed' needs a table of n per stratum")
        if self.problems:
            raise SurveyError(self.source, self.problems)
        return SurveyProject(id=sid, title=title, index_year=year, opens=opens, closes=closes, levels=levels,
                             groups=groups, units=units, strata=strata, settings=settings, quotas=quotas,
                             reminders=reminders, organiser=organiser, grace_days=grace_days,
                             level_labels=level_labels, privacy=privacy)

    def settings(self, table: Any) -> Settings:
        table = self.keys("settings", table, _SETTINGS_KEYS)
        language = table.get("language", "vi")
        if language not in UI_LANGUAGES:
            self.bad(f"settings.language: must be one of {', '.join(UI_LANGUAGES)}")
        timezone = table.get("timezone", "Asia/Ho_Chi_Minh")
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            self.bad(f"settings.timezone: '{timezone}' is not a known time zone")
        return Settings(str(language), str(timezone))

    def organiser(self, table: Any) -> Organiser:
        table = self.keys("organiser", table, _ORGANISER_KEYS)
        name = self.text("organiser.name", table.get("name"), required=False) if "name" in table else None
        contact = self.text("organiser.contact", table.get("contact"), required=False) if "contact" in table \
            else None
        phone = email = None
        if "phone" in table:
            if not isinstance(table["phone"], str):
                self.bad("organiser.phone: must be text, e.g. \"0233 3852 123\" (in quotes, as printed)")
            else:
                phone = table["phone"].strip()
                digits = sum(ch.isdigit() for ch in phone)
                if not (phone.isascii() and _PHONE.match(phone) and 8 <= digits <= 15):
                    self.bad(f"organiser.phone: '{phone}' is not a phone number (e.g. 0233 3852 123 or "
                             "+84 233 3852 123)")
                    phone = None
        if "email" in table:
            if not isinstance(table["email"], str):
                self.bad("organiser.email: must be text, e.g. \"khaosat@snv.quangtri.gov.vn\"")
            else:
                email = table["email"].strip()
                if not _EMAIL.match(email):
                    self.bad(f"organiser.email: '{email}' is not an e-mail address (e.g. khaosat@snv.quangtri.gov.vn)")
                    email = None
        return Organiser(name, contact, phone, email)

    def allocation(self, where: str, table: Any, default: Allocation | None) -> Allocation:
        table = self.keys(where, table, _ALLOCATION_KEYS)
        base = default or Allocation()
        method = table.get("method", base.method)
        if method not in ALLOCATION_METHODS:
            self.bad(f"{where}.method: '{method}' is not one of {', '.join(ALLOCATION_METHODS)}")
        n, fixed = base.n, dict(base.fixed)
        if "n" in table:
            value = table["n"]
            if isinstance(value, dict):
                n, fixed = None, {}
                for key, count in value.items():
                    count = self.integer(f"{where}.n.\"{key}\"", count, 0)
                    if count is not None:
                        fixed[_nfc(key)] = count
            else:
                n, fixed = self.integer(f"{where}.n", value, 1), {}
        if default is not None and method in ("proportional", "equal") and n is None:
            self.bad(f"{where}.n: method '{method}' needs the group's total sample size n")
        if default is not None and method == "fixed" and "n" in table and not isinstance(table["n"], dict):
            self.bad(f"{where}.n: method 'fixed' needs a table of n per stratum, e.g. n = {{ \"citizen/xa-a\" = 30 }}")
        reserve = base.reserve
        if "reserve" in table:
            reserve = self.integer(f"{where}.reserve", table["reserve"], 0) or 0
        rate = table.get("expected_response_rate", base.expected_response_rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            self.bad(f"{where}.expected_response_rate: must be a number in (0, 1]")
            rate = 1.0
        return Allocation(str(method), n, fixed, reserve, float(rate))

    def label(self, where: str, label: Any, example: str) -> dict[str, str]:
        """A text for people: one Vietnamese string, or a table of them per UI language."""
        if isinstance(label, str):
            label = {"vi": label}
        if not isinstance(label, dict) or not label:
            self.bad(f"{where}: required, e.g. {example}")
            return {}
        for lang in label:
            if lang not in UI_LANGUAGES:
                self.bad(f"{where}.{lang}: language must be one of {', '.join(UI_LANGUAGES)}")
        return {lang: self.text(f"{where}.{lang}", text) or "" for lang, text in label.items()}

    def level_labels(self, table: Any, levels: tuple[str, ...]) -> dict[str, dict[str, str]]:
        example = '{ province = "Tỉnh", commune = { vi = "Xã, phường", en = "Commune" } }'
        if not isinstance(table, dict):
            self.bad(f"survey.level_labels: must be a table of level → label, e.g. {example}")
            return {}
        labels = {}
        for level, label in table.items():
            if level not in levels:
                self.bad(f"survey.level_labels.{level}: not one of survey.levels ({', '.join(levels)})")
            labels[level] = self.label(f"survey.level_labels.{level}", label, example)
        return labels

    def groups(self, table: Any, strata: tuple[str, ...], default: Allocation) -> dict[str, Group]:
        if not isinstance(table, dict) or not table:
            self.bad("groups: at least one [groups.<id>] table is required")
            return {}
        groups: dict[str, Group] = {}
        for gid, g in table.items():
            where = f"groups.{gid}"
            if not _ID.match(gid):
                self.bad(f"{where}: a group id must be letters, digits, '.', '_' or '-'")
            g = self.keys(where, g, _GROUP_KEYS)
            label = self.label(f"{where}.label", g.get("label"), '{ vi = "Người dân", en = "Citizens" }')
            form_id = self.ident(f"{where}.form_id", g.get("form_id"))
            group_strata = self.names(f"{where}.strata", g["strata"]) if "strata" in g else strata
            for variable in group_strata if "strata" in g else ():
                self.check_variable(f"{where}.strata", variable)
            allocation = self.allocation(f"{where}.allocation", g.get("allocation", {}), default)
            groups[gid] = Group(gid, label, form_id or "", group_strata, allocation)
        return groups

    def check_variable(self, where: str, variable: str) -> None:
        if variable == "group":
            self.bad(f"{where}: 'group' is implicit (samples are drawn within each group); remove it")
        elif variable in ("id", "name", "phone") or "/" in variable:
            self.bad(f"{where}: '{variable}' cannot be a strata variable")

    def units(self, value: Any, levels: tuple[str, ...]) -> dict[str, Unit]:
        if isinstance(value, str):
            rows = self.units_csv(value)
        elif isinstance(value, list):
            rows = []
            for index, table in enumerate(value, start=1):
                where = f"units[{index}]"
                table = self.keys(where, table, _UNIT_KEYS)
                rows.append((where, {k: (str(v) if isinstance(v, int) else v) for k, v in table.items()}))
        else:
            self.bad("units: required: a CSV file path (units = \"units.csv\") or [[units]] tables")
            return {}
        units: dict[str, Unit] = {}
        where_of: dict[str, str] = {}
        for where, row in rows:
            uid = row.get("id")
            ok = True
            for key in ("id", "name", "level"):
                if not isinstance(row.get(key), str) or not row[key].strip():
                    self.bad(f"{where}, column {key}: required")
                    ok = False
            if not ok:
                continue
            uid = _nfc(uid.strip())
            if not _ID.match(uid):
                self.bad(f"{where}, column id: '{uid}' must be letters, digits, '.', '_' or '-' (no spaces or '/')")
                continue
            if uid in units:
                self.bad(f"{where}, column id: '{uid}' is repeated (first at {where_of[uid]})")
                continue
            level = _nfc(row["level"].strip())
            if level not in levels:
                self.bad(f"{where}, column level: '{level}' is not one of survey.levels ({', '.join(levels)})")
                continue
            parent = row.get("parent")
            parent = _nfc(parent.strip()) if isinstance(parent, str) and parent.strip() else None
            units[uid] = Unit(uid, _nfc(row["name"].strip()), level, parent)
            where_of[uid] = where
        for uid, unit in units.items():
            depth = levels.index(unit.level)
            where = where_of[uid]
            if unit.parent is None:
                if depth != 0:
                    self.bad(f"{where}, column parent: a {unit.level} needs a parent unit")
            elif unit.parent not in units:
                self.bad(f"{where}, column parent: unknown unit '{unit.parent}'")
            elif levels.index(units[unit.parent].level) >= depth:
                self.bad(f"{where}, column parent: '{unit.parent}' is a {units[unit.parent].level}, "
                         f"not a level above {unit.level}")
        if not units and not self.problems:
            self.bad("units: no units given")
        return units

    def units_csv(self, name: str) -> list[tuple[str, dict]]:
        path = Path(name)
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            self.bad(f"units: file {path} not found")
            return []
        except UnicodeDecodeError as error:
            self.bad(f"units: {path.name} is not UTF-8 ({error.reason} at byte {error.start}); save it as CSV UTF-8")
            return []
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ("id", "name", "level", "parent") if c not in header]
        if missing:
            self.bad(f"units: {path.name} line 1: missing column(s) {', '.join(missing)}")
            return []
        for extra in sorted(set(header) - _UNIT_KEYS):
            self.bad(f"units: {path.name} line 1, column {extra}: unknown column")
        rows = []
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            rows.append((f"{path.name} line {start}", dict(zip(header, record))))
        return rows

    def quotas(self, table: Any, groups: dict[str, Group], levels: tuple[str, ...],
               units: dict[str, Unit]) -> QuotaPolicy:
        table = self.keys("quotas", table, _QUOTA_KEYS)
        count_at = table.get("count_at", "completion")
        if count_at not in QUOTA_COUNT_AT:
            self.bad(f"quotas.count_at: must be one of {', '.join(QUOTA_COUNT_AT)}")
        targets = {}
        raw_targets = table.get("targets", {})
        if not isinstance(raw_targets, dict):
            self.bad("quotas.targets: must be a table of stratum = completes wanted")
            raw_targets = {}
        for key, target in raw_targets.items():
            where = f"quotas.targets.\"{key}\""
            key = _nfc(key)
            self.check_stratum_key(where, key, groups, levels, units)
            target = self.integer(where, target, 1)
            if target is not None:
                targets[key] = target
        hard = table.get("hard", True)
        if not isinstance(hard, bool):
            self.bad("quotas.hard: must be true or false")
            hard = True
        release = table.get("release_after_hours", 72)
        release = self.integer("quotas.release_after_hours", release, 1) if "release_after_hours" in table else 72
        return QuotaPolicy(str(count_at), targets, hard, release or 72)

    def check_stratum_key(self, where: str, key: str, groups: dict[str, Group], levels: tuple[str, ...],
                          units: dict[str, Unit]) -> None:
        parts = key.split("/")
        group = groups.get(parts[0])
        if group is None:
            self.bad(f"{where}: '{parts[0]}' is not a group (a stratum is group/value/…)")
            return
        if len(parts) != 1 + len(group.strata):
            shape = "/".join([group.id, *group.strata])
            self.bad(f"{where}: group {group.id} has strata {shape}, so a stratum has {1 + len(group.strata)} part(s)")
            return
        for variable, value in zip(group.strata, parts[1:]):
            if variable == "unit" and value not in units:
                self.bad(f"{where}: '{value}' is not a unit")
            elif variable in levels and (value not in units or units[value].level != variable):
                self.bad(f"{where}: '{value}' is not a unit at level {variable}")

    def reminders(self, table: Any) -> ReminderPolicy:
        if table is None:
            return ReminderPolicy()
        table = self.keys("reminders", table, _REMINDER_KEYS)
        after = table.get("after_days", [])
        if not isinstance(after, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                  for d in after):
            self.bad("reminders.after_days: must be a list of whole days ≥ 1, e.g. [3, 7]")
            after = []
        elif any(b <= a for a, b in zip(after, after[1:])):
            self.bad("reminders.after_days: days must increase, e.g. [3, 7]")
        max_count = table.get("max_count", len(after))
        max_count = self.integer("reminders.max_count", max_count, 0)
        if max_count is not None and max_count > len(after):
            self.bad(f"reminders.max_count: {max_count} is more than the {len(after)} day(s) in after_days")
        quiet = table.get("quiet_hours", {"start": "21:00", "end": "07:00"})
        quiet = self.keys("reminders.quiet_hours", quiet, {"start", "end"})
        for key in ("start", "end"):
            if not _HHMM.match(str(quiet.get(key, ""))):
                self.bad(f"reminders.quiet_hours.{key}: must be a time HH:MM (24-hour)")
        texts = table.get("text", {})
        if not isinstance(texts, dict):
            self.bad("reminders.text: must be a table of language = text")
            texts = {}
        if after and "vi" not in texts:
            self.bad("reminders.text.vi: required (the Vietnamese reminder)")
        for lang, text in texts.items():
            where = f"reminders.text.{lang}"
            if lang not in UI_LANGUAGES:
                self.bad(f"{where}: language must be one of {', '.join(UI_LANGUAGES)}")
            if not isinstance(text, str) or not text.strip():
                self.bad(f"{where}: must be non-empty text")
                continue
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            except ValueError as error:
                self.bad(f"{where}: {error} (write a literal brace as {{{{ or }}}})")
                continue
            for name in sorted(fields - REMINDER_PLACEHOLDERS):
                self.bad(f"{where}: unknown placeholder {{{name}}}; use {{answered}} and {{total}}")
        return ReminderPolicy(tuple(after), max_count or 0, str(quiet.get("start", "21:00")),
                              str(quiet.get("end", "07:00")), {k: _nfc(v) for k, v in texts.items()
                                                                if isinstance(v, str)})


# -- with storage ----------------------------------------------------------------------------


async def store_survey(storage, project: SurveyProject, source: str, source_name: str, at: str):
    """Save ``project`` (``Storage.save_survey``); returns (stored version, whether new).

    Re-loading the same id: identical content is a no-op; changed content becomes a new
    version and the old ones are kept. A change is refused (``SurveyError``) when it would
    strand data already collected: a group or unit that the stored frame or sample uses
    disappears, or a group that has a sample changes its questionnaire.
    """
    problems = await replacement_problems(storage, project)
    if problems:
        raise SurveyError(source_name, problems)
    return await storage.save_survey(
        project.id, title=project.title, index_year=project.index_year, opens=project.opens.isoformat(),
        closes=project.closes.isoformat(), source_name=source_name, source=source,
        project=project.to_json(), at=at)


async def replacement_problems(storage, project: SurveyProject) -> list[str]:
    """Why ``project`` cannot replace the stored version of its survey (empty: it can; see
    ``store_survey``), checked apart so that callers storing more than the survey can check first."""
    from storage import NotFound

    try:
        old = SurveyProject.from_json((await storage.get_survey(project.id)).project)
    except NotFound:
        return []
    if old.sha256 == project.sha256:
        return []
    groups, units = await storage.frame_references(project.id)
    problems = [f"groups.{g}: the stored frame or sample uses this group; it cannot be removed"
                for g in sorted(groups - set(project.groups))]
    problems += [f"units: unit '{u}' is used by the stored frame; it cannot be removed"
                 for u in sorted(units - set(project.units))]
    if await storage.sample_info(project.id) is not None:
        problems += [f"groups.{g}.form_id: the sample was drawn with questionnaire "
                     f"'{old.groups[g].form_id}'; it cannot change to '{project.groups[g].form_id}'"
                     for g in sorted(groups & set(project.groups) & set(old.groups))
                     if old.groups[g].form_id != project.groups[g].form_id]
    return problems


async def stored_project(storage, survey_id: str, version: int | None = None) -> SurveyProject:
    """The stored project (current version unless ``version``); raises storage's ``NotFound``."""
    return SurveyProject.from_json((await storage.get_survey(survey_id, version)).project)
