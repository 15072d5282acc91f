"""Files sent for media questions (image, audio, video, file): the chat core's one path for them.

A channel parses a photo, voice note, video or document into `events.Media` with a lazy `fetch`.
Here, and only when the prompt on screen is a media question: the declared size is checked
against the limit (a polite "too big" otherwise), the bytes are fetched (a failed download gets
"please send it again" and changes nothing), stored (`storage/media.py`, keyed by session,
question key and SHA-256), and the engine is driven with `engine.Attach` naming the stored file.
A re-delivered update is recognised by its key before anything is fetched, so it stores one file
and one answer. On any other prompt a media message is "not text", and nothing is fetched.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING

from bot.chat.events import Media, Notice
from storage import Respondent, SessionRecord
from surveys import engine
from surveys.media import accepts, extension
from surveys.repeats import split_key
from surveys.messages import say

if TYPE_CHECKING:
    from bot.chat.core import ChatCore, Turn

log = logging.getLogger(__name__)

#: Telegram's Bot API serves files up to 20 MB through getFile: the default limit everywhere.
DEFAULT_MEDIA_LIMIT = 20 * 1024 * 1024
MEDIA_PROMPTS = frozenset({engine.PromptKind.IMAGE, engine.PromptKind.AUDIO, engine.PromptKind.VIDEO,
                           engine.PromptKind.FILE})
#: What a channel's media kind is, when the platform gives no MIME type.
_KIND_MIME = {"photo": "image/jpeg", "voice": "audio/ogg", "audio": "audio/mpeg", "video": "video/mp4",
              "document": "application/octet-stream"}


def media_prompt(core: "ChatCore", respondent: Respondent, state: engine.SessionState | None) -> engine.Ask | None:
    """The prompt on screen when it asks for a file, else None."""
    if state is None or state.current is None or state.status not in (engine.Status.ACTIVE, engine.Status.PAUSED):
        return None
    form = core.surveys.form_of(respondent)
    if form is None or form.form_id != state.form_id:
        return None
    prompt = engine.current_prompt(form, state)
    return prompt if prompt is not None and prompt.kind in MEDIA_PROMPTS else None


def stored_name(question_key: str, sha256: str, mime: str, filename: str | None) -> str:
    """The stored file's name: the question key made safe for a file name, a short digest (two
    files for one question differ), the extension. Never the sender's own file name, which may
    carry a person's name."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", question_key).strip("-") or "file"
    return f"{safe}-{sha256[:12]}{extension(mime, filename)}"


async def receive(core: "ChatCore", turn: "Turn", respondent: Respondent, session: SessionRecord | None,
                  state: engine.SessionState, prompt: engine.Ask, media: Media, language: str) -> str | None:
    at = core.clock()
    record = session if session is not None else await core.surveys.session(turn.chat, respondent, at)
    if record is None:
        return None
    storage = core.surveys.storage
    mime = (media.mime or _KIND_MIME.get(media.kind, "application/octet-stream")).lower()
    if media.seq is not None and media.seq != prompt.seq:
        # Sent from a page of an earlier prompt: the engine's stale answer, nothing fetched or kept.
        return await core._drive(turn, respondent, engine.Attach(media.filename or "", mime, media.size or 0,
                                                                 at, seq=media.seq), session)
    kept = await storage.media.media_of_event(record.id, turn.key)
    form = core.surveys.form_of(respondent)
    question = form.question(split_key(prompt.question)[2])
    if kept is None and not accepts(question, mime, media.filename or "file" + extension(mime, None)):
        # The wrong kind of file (a PDF for a photo): the engine's refusal, and nothing fetched or kept.
        return await core._drive(turn, respondent, engine.Attach(media.filename or "", mime, media.size or 0,
                                                                 at, seq=prompt.seq), session)
    if kept is None:
        limit = core.media_limit
        too_big = Notice(say("media_too_big", language, limit=round(limit / 1024 / 1024)))
        if media.size is not None and media.size > limit:
            return await core._send(turn, [too_big], language, respondent.id, "too-big", error=True)
        try:
            content = await media.fetch()
        except Exception as error:  # any failed download: the person sends it again, nothing changed
            log.warning("%s/%s: a %s from chat %s could not be fetched: %s", turn.chat.channel, turn.chat.bot,
                        media.kind, turn.chat.chat_id, error)
            return await core._send(turn, [Notice(say("media_failed", language))], language, respondent.id,
                                    "fetch-failed", error=True)
        if len(content) > limit:
            return await core._send(turn, [too_big], language, respondent.id, "too-big", error=True)
        digest = hashlib.sha256(content).hexdigest()
        name = stored_name(prompt.question, digest, mime, media.filename)
        kept = await storage.media.store_media(record.id, prompt.question, name, mime, content, digest, turn.key,
                                               at.isoformat())
    event = engine.Attach(kept.name, kept.mime, kept.size, at, seq=prompt.seq)
    return await core._drive(turn, respondent, event, session)
