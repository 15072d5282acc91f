"""When a reminder is due: a pure policy (no database, no clock; every time is an argument).

The rules, for one respondent of a survey with a ``ReminderPolicy``:

* **Last activity** is the latest of the person's session ``updated_at`` and the time their
  chat was linked. Anything the person does starts the count again: the ``after_days``
  offsets are counted from it, and only reminders sent *since* it count towards the offsets.
* Reminder number ``k`` (0-based, counted since the last activity) is due at
  ``activity + after_days[k]``, and — so that a pass after a long outage never sends two
  reminders in a row — never earlier than the previous one's send time plus the gap between
  the offsets, ``after_days[k] - after_days[k-1]`` days.
* No more once ``k = len(after_days)``, or once ``max_count`` reminders were sent to the
  person in all (across activities).
* **Quiet hours** (``quiet_start``–``quiet_end``, local time of the project's time zone; the
  window may cross midnight; equal times mean no quiet hours): a reminder due inside the
  window waits for its end. Nothing is sent while the window is open.

``bot/reminders.py`` applies the same rules in SQL (``Storage.enqueue_due_reminders``);
tests check that the two agree.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

from surveys.project import ReminderPolicy


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time

    @classmethod
    def of(cls, policy: ReminderPolicy) -> QuietHours:
        return cls(dt.time.fromisoformat(policy.quiet_start), dt.time.fromisoformat(policy.quiet_end))

    @property
    def none(self) -> bool:
        return self.start == self.end

    def contains(self, local: dt.datetime) -> bool:
        """Whether the local wall-clock time ``local`` is inside the window [start, end)."""
        if self.none:
            return False
        t = local.timetz().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # crosses midnight

    def end_after(self, local: dt.datetime) -> dt.datetime:
        """The end of the window containing ``local`` (``local`` itself when outside it)."""
        if not self.contains(local):
            return local
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end = _next_day(end)
        return end

    def next_start(self, local: dt.datetime) -> dt.datetime | None:
        """When the window next opens at or after ``local``; None without quiet hours."""
        if self.none:
            return None
        start = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if start < local:
            start = _next_day(start)
        return start


def _next_day(local: dt.datetime) -> dt.datetime:
    # Wall-clock arithmetic in the local zone (Vietnam has no DST; other zones stay correct too).
    naive = local.replace(tzinfo=None) + dt.timedelta(days=1)
    return naive.replace(tzinfo=local.tzinfo)


@dataclass(frozen=True)
class Decision:
    #: Send reminder ``number`` now.
    due: bool
    #: 0-based index into ``after_days`` of the next reminder (None: no more reminders).
    number: int | None
    #: When it is (or was) due, moved out of quiet hours; None when no more reminders.
    due_at: dt.datetime | None


def raw_due_at(policy: ReminderPolicy, activity: dt.datetime, sent_since: Sequence[dt.datetime],
               sent_total: int) -> tuple[int | None, dt.datetime | None]:
    """(k, due time before quiet hours) of the next reminder, or (None, None) if none is left."""
    k = len(sent_since)
    if k >= len(policy.after_days) or sent_total >= policy.max_count:
        return None, None
    due = activity + dt.timedelta(days=policy.after_days[k])
    if k > 0:
        due = max(due, max(sent_since) + dt.timedelta(days=policy.after_days[k] - policy.after_days[k - 1]))
    return k, due


def decide(policy: ReminderPolicy, activity: dt.datetime, sent_since: Sequence[dt.datetime], sent_total: int,
           now: dt.datetime, zone: ZoneInfo | str) -> Decision:
    """Whether a reminder is due at ``now`` (aware) and when the next one is.

    ``sent_since``: send times of the reminders sent since ``activity``; ``sent_total``: all
    reminders the person ever got in this survey.
    """
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    quiet = QuietHours.of(policy)
    k, due = raw_due_at(policy, activity, sent_since, sent_total)
    if k is None or due is None:
        return Decision(False, None, None)
    due_local = quiet.end_after(due.astimezone(zone))
    now_local = now.astimezone(zone)
    return Decision(due_local <= now_local and not quiet.contains(now_local), k, due_local)


def sendable_before_quiet(policy: ReminderPolicy, now: dt.datetime, zone: ZoneInfo | str, per_second: float,
                          share: float = 0.5) -> int | None:
    """How many reminders one bot may enqueue at ``now`` so that they all leave before quiet hours.

    The bot sends ``per_second`` messages a second at most; replies to people answering go
    first, so reminders are given only ``share`` of that rate. 0 inside quiet hours; None
    (no limit) when the policy has no quiet hours. What is not enqueued stays due and is
    taken by the next pass (or after the quiet hours).
    """
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    quiet = QuietHours.of(policy)
    local = now.astimezone(zone)
    if quiet.none:
        return None
    if quiet.contains(local):
        return 0
    start = quiet.next_start(local)
    seconds = (start.astimezone(dt.timezone.utc) - local.astimezone(dt.timezone.utc)).total_seconds()
    return max(0, math.floor(seconds * per_second * share))
