"""Which files a media question takes: its kind (image/*, audio/*, video/*, any for a file),
narrowed by ODK's `accept` attribute when the form has one.

Pure functions shared by the engine (which refuses a file of the wrong kind) and the channels
(which say what to send). A media answer's value is the stored file's name, as ODK stores it.
"""

from __future__ import annotations

import mimetypes

from surveys.model import Question, QuestionType

#: The MIME family each media kind takes (a `file` takes any).
FAMILY = {QuestionType.IMAGE: "image/", QuestionType.AUDIO: "audio/", QuestionType.VIDEO: "video/",
          QuestionType.FILE: ""}


def accepts(question: Question, mime: str, name: str) -> bool:
    """Whether a file of this MIME type and name answers the question."""
    mime = (mime or "").split(";")[0].strip().lower()
    if not mime or mime == "application/octet-stream":
        mime = (mimetypes.guess_type(name)[0] or mime).lower()
    if not mime.startswith(FAMILY.get(question.type, "")):
        return False
    if not question.accept:
        return True
    lowered = name.lower()
    for pattern in (part.strip().lower() for part in question.accept.split(",")):
        if not pattern:
            continue
        if pattern.startswith("."):
            if lowered.endswith(pattern):
                return True
        elif pattern.endswith("/*"):
            if mime.startswith(pattern[:-1]):
                return True
        elif mime == pattern:
            return True
    return False


def extension(mime: str, filename: str | None) -> str:
    """The file name's extension to store it under: the sent name's, else one for its MIME type."""
    if filename and "." in filename:
        suffix = filename.rsplit(".", 1)[1].lower()
        if suffix.isalnum() and len(suffix) <= 8:
            return "." + suffix
    guessed = {"image/jpeg": ".jpg", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "video/mp4": ".mp4"}.get(
        (mime or "").split(";")[0].strip().lower()) or mimetypes.guess_extension((mime or "").split(";")[0].strip())
    return guessed or ".bin"
