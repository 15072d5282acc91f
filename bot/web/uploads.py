"""A file sent from the web page for a media question (image, audio, video, file): a multipart POST.

The page's form puts the CSRF token and the prompt's sequence number before the file input, and
browsers send fields in the page's order, so both are checked before a byte of the file is read:
a post without the right token is refused at once, and a post for a prompt no longer on screen
(an old tab, a second submit) is answered "that question has passed" and stores nothing. The
file is read in chunks up to the chat's limit (`ChatCore.media_limit`); a bigger one is declared
too big to the core, which says so in the person's language and fetches nothing. What is kept,
checked against the question's kind and `accept`, and answered is the chat core's
(`bot/chat/media.py`): the page hands it a `Media` event as a messenger channel does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from aiohttp import BodyPartReader, web
from multidict import MultiDict

from bot.chat.events import Incoming, Media, NotText

#: The page's file input.
FILE_FIELD = "file"
#: A text field of the form is never longer than this (a code, a seq, an action).
_FIELD_LIMIT = 4096
#: At most this many text fields are kept (a page has a few per question).
_FIELDS_LIMIT = 1000
_CHUNK = 64 * 1024
#: A body this much over the limit is not read to its end: the connection is closed instead.
_DRAIN_FACTOR = 4


@dataclass
class Upload:
    """The posted form's text fields and its file (None: no file part, or an empty one)."""

    #: Repeated fields (a field-list page's `q` markers, its ticked boxes) are all kept.
    fields: MultiDict[str] = field(default_factory=MultiDict)
    data: bytes | None = None
    filename: str | None = None
    mime: str = "application/octet-stream"
    #: The file's size when it was over the limit (its bytes are not kept).
    too_big: int | None = None


class Refused(Exception):
    """The post is not read further: its CSRF token was missing or wrong when the file began."""


async def read_upload(request: web.Request, limit: int, csrf_ok) -> Upload:
    """The multipart body: text fields, then the file, read only once `csrf_ok(fields)` holds."""
    upload = Upload()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.filename is None:
            text = await _read_text(part)
            if len(upload.fields) < _FIELDS_LIMIT:
                upload.fields.add(part.name, text)
            continue
        if part.name != FILE_FIELD or upload.data is not None or upload.too_big is not None:
            await _drain(part, limit)
            continue
        if not csrf_ok(upload.fields):
            raise Refused()
        content, size = await _read_file(part, limit)
        if size == 0 and not part.filename:
            continue  # the input was left empty
        upload.filename = part.filename or None
        upload.mime = (part.headers.get("Content-Type") or upload.mime).split(";")[0].strip().lower()
        if content is None:
            upload.too_big = size
        else:
            upload.data = content
    return upload


async def _read_text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        if len(data) < _FIELD_LIMIT:
            data.extend(chunk[: _FIELD_LIMIT - len(data)])
    return data.decode(part.get_charset("utf-8"), errors="replace")


async def _read_file(part: BodyPartReader, limit: int) -> tuple[bytes | None, int]:
    """(the bytes, or None when over `limit`; the size read)."""
    data = bytearray()
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size <= limit:
            data.extend(chunk)
        elif size > _DRAIN_FACTOR * limit + _CHUNK:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    return (bytes(data) if size <= limit else None), size


async def _drain(part: BodyPartReader, limit: int) -> None:
    await _read_file(part, limit)


def media_event(upload: Upload, limit: int, seq: int | None = None) -> Incoming:
    """The chat core's event for the posted file: `Media` (declared too big when it was), or
    NotText when no file was chosen (the core asks the question again); `seq`: the prompt the page
    showed, which the core checks again under the chat's turn."""
    if upload.too_big is not None:
        return Media(_kind(upload.mime), upload.mime, upload.too_big, upload.filename, _nothing, seq)
    if upload.data is None:
        return NotText()
    content = upload.data

    async def fetch() -> bytes:
        return content

    return Media(_kind(upload.mime), upload.mime, len(content), upload.filename, fetch, seq)


async def _nothing() -> bytes:  # never called: the core refuses a file declared too big before fetching
    raise ValueError("the file was over the limit and was not kept")


def _kind(mime: str) -> str:
    """The messenger kind the core knows a file by (`events.Media.kind`)."""
    major = mime.split("/", 1)[0]
    return {"image": "photo", "audio": "audio", "video": "video"}.get(major, "document")


def getall_of(fields: MultiDict[str]):
    """`parse_form`'s reader of repeated fields, over the upload's fields."""
    return lambda name: fields.getall(name, [])
