"""Privacy texts and rules as data: the consent screen, retention and the legal deadlines.

The bundled defaults (``templates/privacy.default.toml``) cite the Law on Personal Data Protection
No. 91/2025/QH15 and Decree 356/2025/NĐ-CP; a survey project's ``[privacy]`` table overrides any of
them (``PrivacyPolicy``). ``PrivacyNotice`` is one survey's effective texts: what a respondent is
shown, in a language, on a channel, and the hash that identifies that exact text, so a stored
consent can be reproduced. Pure: no clock, no storage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable, Collection

from surveys.messages import DEFAULT_UI_LANGUAGE, UI_LANGUAGES

DEFAULTS_FILE = Path(__file__).parent / "templates" / "privacy.default.toml"
#: The keys a survey's [privacy] table may have.
POLICY_KEYS = ("version", "retention_days", "controller", "purpose", "consent", "holidays")


@cache
def defaults() -> dict[str, Any]:
    """The bundled privacy texts and rules (read once)."""
    return tomllib.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PrivacyPolicy:
    """A survey's own privacy settings ([privacy] in its TOML); empty fields take the defaults.

    ``consent``, ``controller`` and ``purpose`` are {language: text}; ``controller`` defaults
    to the organiser's name. A survey that changes a text should change ``version`` too."""

    version: str | None = None
    retention_days: int | None = None
    controller: dict[str, str] = field(default_factory=dict)
    purpose: dict[str, str] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    #: Public holidays (ISO dates) that are not working days for the request deadlines; the
    #: government announces them each year (Tết, Hùng Kings' day follow the lunar calendar).
    holidays: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PrivacyPolicy:
        data = dict(data or {})
        data["holidays"] = tuple(data.get("holidays") or ())
        return cls(**data)

    def holiday_dates(self) -> frozenset[dt.date]:
        return frozenset(dt.date.fromisoformat(day) for day in self.holidays)


def parse_policy(table: Any, bad: Callable[[str], None]) -> PrivacyPolicy:
    """Validate a [privacy] table, reporting each problem through ``bad`` (naming the key)."""
    if not isinstance(table, dict):
        bad("privacy: must be a table")
        return PrivacyPolicy()
    for key in sorted(set(table) - set(POLICY_KEYS)):
        bad(f"privacy.{key}: unknown key (known: {', '.join(sorted(POLICY_KEYS))})")
    version = table.get("version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        bad("privacy.version: must be text, e.g. \"2026.1\"")
        version = None
    days = table.get("retention_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
        bad(f"privacy.retention_days: must be a whole number of days, 0 or more (got {days!r})")
        days = None
    texts: dict[str, dict[str, str]] = {}
    for key in ("controller", "purpose", "consent"):
        value = table.get(key, {})
        if isinstance(value, str):
            value = {DEFAULT_UI_LANGUAGE: value}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                  for k, v in value.items()):
            bad(f"privacy.{key}: must be text, or {{ vi = \"…\", en = \"…\" }}")
            value = {}
        texts[key] = {k: v.strip() for k, v in value.items()}
    holidays = _holidays(table.get("holidays", []), bad)
    for language, text in texts["consent"].items():
        try:
            text.format(**_PLACEHOLDERS)
        except (KeyError, IndexError, ValueError) as error:
            bad(f"privacy.consent.{language}: unknown placeholder {error} (known: "
                f"{', '.join('{' + name + '}' for name in _PLACEHOLDERS)})")
    return PrivacyPolicy(version.strip() if version else None, days, texts["controller"], texts["purpose"],
                         texts["consent"], holidays)


def _holidays(value: Any, bad: Callable[[str], None]) -> tuple[str, ...]:
    if not isinstance(value, list):
        bad("privacy.holidays: must be a list of dates, e.g. [2026-04-30, 2026-05-01]")
        return ()
    days = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, dt.datetime) or not isinstance(item, (dt.date, str)):
            bad(f"privacy.holidays[{number}]: {item!r} is not a date (YYYY-MM-DD)")
            continue
        try:
            days.append(item if isinstance(item, dt.date) else dt.date.fromisoformat(item.strip()))
        except ValueError:
            bad(f"privacy.holidays[{number}]: {item!r} is not a date (YYYY-MM-DD)")
    return tuple(sorted({day.isoformat() for day in days}))


_PLACEHOLDERS = dict.fromkeys(("title", "controller", "purpose", "retention_days", "law", "contact", "abroad"), "")


@dataclass(frozen=True)
class ShownText:
    """One exact text a respondent was shown: reproducible from (sha256 → text)."""

    version: str
    language: str
    channel: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PrivacyNotice:
    """The effective privacy texts of one survey (or of a questionnaire no survey uses)."""

    title: str
    policy: PrivacyPolicy = PrivacyPolicy()
    organiser_name: str | None = None
    contact: str | None = None

    @property
    def version(self) -> str:
        return self.policy.version or str(defaults()["version"])

    @property
    def retention_days(self) -> int:
        return self.policy.retention_days if self.policy.retention_days is not None \
            else int(defaults()["retention_days"])

    def _pick(self, own: dict[str, str], default_key: str, language: str) -> str:
        table = defaults()[default_key]
        return own.get(language) or own.get(DEFAULT_UI_LANGUAGE) or table.get(language) or table[DEFAULT_UI_LANGUAGE]

    def controller(self, language: str) -> str:
        if self.policy.controller:
            return self._pick(self.policy.controller, "controller", language)
        return self.organiser_name or self._pick({}, "controller", language)

    def consent(self, language: str, channel: str) -> ShownText:
        """The consent screen exactly as shown in ``language`` on ``channel``."""
        language = language if language in UI_LANGUAGES else "en"
        data = defaults()
        contact = self._pick({}, "contact", language).format(contact=self.contact) if self.contact else ""
        abroad = self._pick({}, "abroad", language) if channel in data["channels_abroad"] else ""
        template = self._pick(self.policy.consent, "consent", language)
        text = template.format(title=self.title, controller=self.controller(language),
                               purpose=self._pick(self.policy.purpose, "purpose", language),
                               retention_days=self.retention_days, law=self._pick({}, "law", language),
                               contact=contact, abroad=abroad)
        return ShownText(self.version, language, channel, text)

    def law(self, language: str) -> str:
        return self._pick({}, "law", language)


def notice_of(project: Any | None, title: str) -> PrivacyNotice:
    """The notice of a survey project (``surveys.project.SurveyProject``), or the defaults under
    ``title`` when no survey uses the questionnaire."""
    if project is None:
        return PrivacyNotice(title)
    organiser = project.organiser
    contact = ", ".join(part for part in (organiser.contact, organiser.phone, organiser.email) if part) or None
    return PrivacyNotice(project.title, project.privacy, organiser.name, contact)


# -- deadlines (Decree 356/2025/NĐ-CP; the day counts are data) ------------------------------------

def add_working_days(day: dt.date, count: int, holidays: Collection[dt.date] = ()) -> dt.date:
    """``count`` working days (Monday to Friday, not a public holiday of ``holidays``) after ``day``.
    Holidays are the survey's data (``[privacy] holidays``), not built in: the Tết days change
    every year and are announced by the government."""
    while count > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            count -= 1
    return day


@dataclass(frozen=True)
class Deadlines:
    acknowledge_by: dt.date
    handle_by: dt.date


def deadlines(opened: dt.date, holidays: Collection[dt.date] = ()) -> Deadlines:
    """When a request opened on ``opened`` (local date) must be acknowledged and handled."""
    table = defaults()["deadlines"]
    return Deadlines(add_working_days(opened, int(table["acknowledge_working_days"]), holidays),
                     opened + dt.timedelta(days=int(table["handle_days"])))


def purge_date(closes: dt.date, retention_days: int) -> dt.date:
    """The first day on which a survey's contact data is purged."""
    return closes + dt.timedelta(days=retention_days + 1)
