"""The storage interface the bot depends on: the union of the aggregates' Protocols.

Each aggregate's methods and their contract are in its own module (``storage/README.md``);
``Storage`` gathers them until callers take the repository they need.

Kept narrow and free of SQLite specifics so that a PostgreSQL implementation
can follow. Contract shared by all implementations:

* Timestamps are ISO-8601 strings supplied by the caller (``at``); storage
  never reads the clock, so behaviour is deterministic and testable.
* JSON payloads are opaque text; storage does not import the engine.
* Every method that writes does so in one transaction: after a crash a
  write is either fully present or absent.
* Driver errors surface as ``StorageError`` (or a subclass).
* Idempotency keys (``event_key``, ``key``, ``dedupe_key``) make re-delivered
  platform updates and retried jobs harmless: a key seen before writes
  nothing and the method says so in its return value.
* Chat ids are text (Telegram's integers and Zalo's strings alike).
* Timestamps are compared as strings (``since``, ``now``, ``not_before``),
  so callers must use one ISO format and one UTC offset throughout.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Protocol, Self

from .fieldwork import Fieldwork
from .links import Links
from .outbox import Outbox
from .privacy import Privacy
from .questionnaires import Questionnaires
from .quotas import Quotas
from .reminders_store import Reminders
from .sessions import Sessions
from .surveys import Surveys


class Storage(Questionnaires, Links, Outbox, Sessions, Surveys, Fieldwork, Quotas, Reminders, Privacy, Protocol):
    """Durable, idempotent persistence for questionnaires, respondents and sessions."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection; safe to call more than once."""
