"""A chat turn that fails inside khaosat: the database locked past its busy timeout or out of
reach, or a bug. The person gets a short polite line, never a traceback; the log gets the
traceback, once; the update is tried once more first where the failure may pass by itself.

Why trying the whole turn again is safe: every write of a turn is keyed by its update key (the
step by its event key, ``storage/sessions.py`` ``_apply_steps``; a link attempt, a disposition, the
outbox's rows by keys made of it), so a second run is what a platform's re-delivery of the update
already is, and a write that had landed before the failure is not made twice. Only storage errors
that say "busy" or "unreachable" are tried again (``storage.errors.is_transient``); a constraint,
a read-only file or a bug would fail the same way, and is answered at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from bot.chat.events import Notice
from storage.errors import is_transient
from surveys.messages import say

if TYPE_CHECKING:
    from bot.chat.core import ChatCore, Turn

log = logging.getLogger(__name__)

#: A chat is told "the system is busy" at most this often: while the database is down every
#: message would otherwise get one (and each try to queue it knocks on the database again).
ANSWER_EVERY = dt.timedelta(minutes=1)
#: Chats remembered as told; past this many, those told longer ago than ``ANSWER_EVERY`` are forgotten.
_CHATS_REMEMBERED = 10_000

T = TypeVar("T")


class TurnFailures:
    """When each chat was last told that its message could not be handled."""

    def __init__(self) -> None:
        self._told: dict[tuple[str, str, str], dt.datetime] = {}

    def may_tell(self, channel: str, bot: str, chat_id: str, at: dt.datetime) -> bool:
        """True (and remembered) when the chat was not told within ``ANSWER_EVERY`` before ``at``."""
        key = (channel, bot, chat_id)
        last = self._told.get(key)
        if last is not None and at - last < ANSWER_EVERY:
            return False
        if len(self._told) >= _CHATS_REMEMBERED:
            self._told = {k: t for k, t in self._told.items() if at - t < ANSWER_EVERY}
        self._told[key] = at
        return True


def rendered_mark(renderer: Any) -> Any:
    """Where a renderer that keeps what it rendered (the web's ``WebReplies``, which answers in its
    HTTP response) stands before a turn; None for one that only returns calls (a messenger's: its
    calls are queued in the step's own transaction, so a failed step leaves none behind)."""
    mark = getattr(renderer, "mark", None)
    return mark() if mark is not None else None


def rewind(renderer: Any, mark: Any) -> None:
    """Forget what a failed try rendered (a step's prompt that was never stored), back to ``mark``."""
    if mark is not None:
        renderer.rewind(mark)


async def tried_twice_if_transient(turn: "Turn", attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, and once more if it failed with a transient storage error."""
    mark = rendered_mark(turn.renderer)
    try:
        return await attempt()
    except Exception as error:  # noqa: BLE001 - sorted just below; anything else goes up as it came
        if not is_transient(error):
            raise
        chat = turn.chat
        log.warning("%s/%s: chat %s: update %s met a busy or unreachable database (%s); trying it once more",
                    chat.channel, chat.bot, chat.chat_id, turn.key, error)
    rewind(turn.renderer, mark)
    return await attempt()


async def answer_failed(core: "ChatCore", turn: "Turn", error: Exception, mark: Any = None) -> str | None:
    """Log ``error`` with its traceback and tell the person, politely, to send it again.

    The reply goes the one way every reply goes: queued in the outbox (a channel that answers in
    its HTTP response, the web page, gets it in its page). When the outbox cannot be written
    either (the database itself is what failed), nothing is sent: the outbox is the only sender,
    and a reply sent around it would be sent again, or never, by a transport that does not know
    of it. The log says so, and the person's next message is handled as usual.
    ``mark``: where the renderer stood before the turn (``rendered_mark``), so the person sees the
    apology and nothing the failed turn had rendered. Returns the short notice for a pressed
    button, as ``ChatCore.handle`` does."""
    chat = turn.chat
    rewind(turn.renderer, mark)
    log.error("%s/%s: chat %s: update %s failed; the person is asked to send it again",
              chat.channel, chat.bot, chat.chat_id, turn.key, exc_info=error)
    if not chat.private:
        return None  # a group hears nothing from the bot (ChatCore._not_private)
    language = turn.spoken or turn.language
    at = core.clock()
    try:
        # Not accepted: a pressed button is not marked as chosen, since nothing was.
        calls, notice = turn.renderer.render([Notice(say("system_busy", language))], chat.chat_id, language,
                                             accepted=False, pressed=turn.pressed)
        if calls and not core.failures.may_tell(chat.channel, chat.bot, chat.chat_id, at):
            return notice  # told within the minute: no reply storm while the database is down
        await core.surveys.send(chat, calls, f"{turn.key}:failed", at)
        return notice
    except Exception as again:  # noqa: BLE001 - the turn has failed already; nothing is left to try
        log.error("%s/%s: chat %s: update %s: the apology could not be queued either (%s); nobody is told",
                  chat.channel, chat.bot, chat.chat_id, turn.key, again)
        return None
