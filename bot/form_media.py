"""The files forms show with their labels (images, audio, video), read from the stored forms.

Prompts name such a file by form, version and file name (`surveys.model.LabelMedia`); the
Telegram transport uploads it, the web server serves it at `media_path` (for the web page and
for Zalo, whose sendPhoto takes a URL). Only files a label of that form names are given out:
a form's other attachments (a CSV of preloads, say) stay private.
"""

from __future__ import annotations

import mimetypes
from typing import Awaitable, Callable, NamedTuple
from urllib.parse import quote

from storage import NotFound
from surveys.xlsform import FormError
from surveys.model import LabelMedia, Questionnaire


class MediaKey(NamedTuple):
    form_id: str
    version: str
    name: str


def media_names(form: Questionnaire) -> frozenset[str]:
    """Every file a label of the form shows, in any language."""
    return form.derived("label_media_names", lambda f: frozenset(
        name for q in f.questions for files in q.media.values() for name in files.by_language.values()))


def media_path(media: LabelMedia | MediaKey) -> str:
    """The web server's stable path of a form's media file."""
    return "/media/" + "/".join(quote(part, safe="") for part in (media.form_id, media.version, media.name))


def media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class FormMedia:
    """Reads label media from the forms `questionnaire(form_id, version)` loads (fieldwork.conversations)."""

    def __init__(self, questionnaire: Callable[[str, str], Awaitable[Questionnaire]]):
        self._questionnaire = questionnaire

    async def read(self, key: MediaKey) -> bytes | None:
        """The file's bytes; None when the form or the file is unknown or no label names it."""
        try:
            form = await self._questionnaire(key.form_id, key.version)
        except (NotFound, FormError):
            return None
        if key.name not in media_names(form):
            return None
        return form.attachments.get(key.name)
