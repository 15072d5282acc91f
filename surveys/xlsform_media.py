"""Media in labels: the image, audio or video a question or a note shows with its text.

XLSForm names them in `media::image`, `image`, `media::audio`, `audio`, `media::video`, `video`
and `big-image` columns, optionally per language (`media::image::English (en)`); the files sit
beside the form (ODK's media folder). They are read when the form loads and kept with it, like
the CSV files it reads, so a restarted bot still has them. A file that is missing or too big is
a warning and the prompt goes without it: the text label is always shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from surveys.model import ANY_LANGUAGE, LABEL_MEDIA_KINDS, Language, Location, Text

#: The largest file sent with a prompt: Telegram's limit for a photo sent by upload (10 MB); a bigger
#: file would be refused at every send, and it is kept in the database with the form.
MEDIA_MAX_BYTES = 10 * 1024 * 1024


class LabelMediaReader:
    """The builder's reading of label media; mixed into it.

    Uses the builder's `read_file` (reads a file beside the form and keeps it with the form),
    `read_files`, `warnings`, `survey_rows`, `languages` and `_column_for`.
    """

    def _label_media(self, element: dict, row: int | None) -> dict[str, Text]:
        """kind (image, audio, video) → file name per language, for the files that could be read."""
        media = element.get("media") or {}
        found: dict[str, Text] = {}
        for key, value in media.items():
            kind = "image" if key == "big-image" else key
            if kind not in LABEL_MEDIA_KINDS or (key == "big-image" and "image" in media):
                continue  # an image wins over a big-image: a chat has one size
            by_language = value if isinstance(value, Mapping) else {"default": value}
            files: dict[str, str] = {}
            for column_language, name in by_language.items():
                name = str(name or "").strip()
                if not name:
                    continue
                language = ANY_LANGUAGE if column_language == "default" else \
                    Language.from_column(column_language).code
                if self._media_file_readable(name, row, key, column_language):
                    files[language] = name
            if files:
                found[kind] = Text(files)
        return found

    def _media_file_readable(self, name: str, row: int | None, key: str, column_language: str) -> bool:
        content = self._read_media(name)
        if content is not None and len(content) <= MEDIA_MAX_BYTES:
            return True
        suffix = "" if column_language == "default" else f"::{column_language}"
        column = self._media_column(row, key, suffix)
        where = Location("survey", None if row is None else row + 2, column)
        if content is None:
            self.warnings.append(f"{where}: the file '{name}' is not beside the form; "
                                 "the prompt is sent without it")
        else:
            self.read_files.pop(name, None)
            self.warnings.append(f"{where}: the file '{name}' is {len(content) / 1024 / 1024:.1f} MB, over the "
                                 f"{MEDIA_MAX_BYTES // 1024 // 1024} MB a chat sends; the prompt is sent without it")
        return False

    def _read_media(self, name: str) -> bytes | None:
        if name in self.read_files:
            return self.read_files[name]
        return self.read_file(name)

    def _media_column(self, row: int | None, key: str, suffix: str) -> str:
        """The header as written (`media::image::English (en)` or `image`) of one media cell."""
        if row is not None and 0 <= row < len(self.survey_rows):
            for header in self.survey_rows[row]:
                words = [w.strip().lower() for w in str(header).split("::")]
                if words and words[0] == "media":
                    words = words[1:]
                if words and words[0] == key and ("::".join(words[1:]) == suffix.removeprefix("::").lower()):
                    return str(header)
        return f"media::{key}{suffix}"

