"""The survey project's data model: its units, groups, allocation, quota, reminder and
organiser settings, and ``SurveyProject`` with its canonical JSON for storage.

Split from ``surveys/project.py`` (which re-exports every public name here); the TOML
reading and checking is ``surveys/project_toml.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field

from surveys.privacy import PrivacyPolicy

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

    ``hard`` quotas are enforced (``fieldwork/quotas.py``): a slot is reserved when a person
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

