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
