"""Time at the edges: the engine and storage take times as arguments, channels read the clock here."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: Respondents and coordinators read times in Vietnam's zone; stored times keep their offset.
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def now(zone: ZoneInfo = VIETNAM) -> dt.datetime:
    return dt.datetime.now(zone)
