"""Errors raised by every ``Storage`` implementation, independent of the database driver."""


class StorageError(Exception):
    """The storage could not do what was asked (driver errors are wrapped in this)."""


class QuestionnaireConflict(StorageError):
    """The same form_id and version were saved before with different content."""


class StaleRevision(StorageError):
    """The session changed since the caller read it; re-read and retry the step."""


class NotFound(StorageError):
    """The requested record does not exist."""


class AmbiguousPhone(StorageError):
    """Several respondents share the phone number looked up."""


class InvitationUsed(StorageError):
    """The invitation was already redeemed from another chat."""


class InvitationRevoked(StorageError):
    """The invitation was revoked before anyone redeemed it."""


class LinkConflict(StorageError):
    """The chat is linked to another respondent, or the respondent to another chat on that bot."""


class FrameConflict(StorageError):
    """The survey's sample was drawn from another frame; a different frame cannot replace it."""


class SampleConflict(StorageError):
    """The survey already has a different sample (or none, where one is needed)."""


class ReserveExhausted(StorageError):
    """The stratum's reserve list has nobody left to replace a nonrespondent with."""


class NotReplaceable(StorageError):
    """The respondent is not a fielded sample member in a disposition that may be replaced."""


# branch chaterrors: which failures may go away by themselves, so a caller may try once more.
def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (a ``StorageError`` wrapping its driver's error as ``__cause__``, or the
    driver's error itself) says the database was busy or out of reach rather than that what was
    asked is wrong: SQLite locked past its busy timeout, a PostgreSQL connection dropped or
    refused, a deadlock or serialization failure (PostgreSQL rolled the transaction back whole).
    A constraint, a trigger's RAISE, a read-only file or a bug is not: trying again does the same."""
    import sqlite3

    import asyncpg

    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, sqlite3.OperationalError):
            words = str(cause).lower()
            if "locked" in words or "busy" in words:
                return True
        if isinstance(cause, (asyncpg.PostgresConnectionError, asyncpg.TransactionRollbackError,
                              asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                              asyncpg.TooManyConnectionsError, ConnectionError)):
            return True
        if isinstance(cause, asyncpg.InterfaceError) and "closed" in str(cause).lower():
            return True  # "connection is closed"; its other InterfaceErrors are the caller's mistakes
        cause = cause.__cause__ or cause.__context__
    return False
