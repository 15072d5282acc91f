"""Errors raised by every ``Storage`` implementation, independent of the database driver."""


class StorageError(Exception):
    """The storage could not do what was asked (driver errors are wrapped in this)."""


class QuestionnaireConflict(StorageError):
    """The same form_id and version were saved before with different content."""


class StaleRevision(StorageError):
    """The session changed since the caller read it; re-read and retry the step."""


class NotFound(StorageError):
    """The requested record does not exist."""
