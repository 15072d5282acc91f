"""The XLSForm vocabulary the loader understands: types, columns, settings, appearances.

Split out of `surveys/xlsform.py` so the tables of what a chat honours can be read (and grown)
apart from the code that walks a form. Everything here is data, or a small lookup into pyxform's
own type dictionary; `FormError` lives here because both the entry points (`surveys.xlsform`)
and the builder (`surveys.xlsform_build`) raise it.
"""

from __future__ import annotations

import re

from pyxform.question_type_dictionary import QUESTION_TYPE_DICT

from surveys.pyxform_places import Problem
from surveys.xlsform_extras import UNASKABLE_TYPES
from surveys.model import QuestionType, Text

_TYPES = {
    "note": QuestionType.NOTE,
    "select one": QuestionType.SELECT_ONE,
    "select all that apply": QuestionType.SELECT_MULTIPLE,
    "integer": QuestionType.INTEGER,
    "decimal": QuestionType.DECIMAL,
    "text": QuestionType.TEXT,
    "date": QuestionType.DATE,
    "geopoint": QuestionType.GEOPOINT,
    "time": QuestionType.TIME,
    "dateTime": QuestionType.DATETIME,
    "image": QuestionType.IMAGE,
    "audio": QuestionType.AUDIO,
    "video": QuestionType.VIDEO,
    "file": QuestionType.FILE,
    "acknowledge": QuestionType.ACKNOWLEDGE,
    "rank": QuestionType.RANK,
    "trigger": QuestionType.ACKNOWLEDGE,
    "calculate": QuestionType.CALCULATE,
    "start": QuestionType.START,
    "end": QuestionType.END,
    "today": QuestionType.TODAY,
}
# Device metadata an ODK form may carry: a chat has no device to read it from. pyxform's
# other names for them (`imei`, `uri:deviceid`, ...) are found by `_device_metadata`.
_EMPTY_METADATA = {
    "deviceid", "subscriberid", "simserial", "phonenumber", "username", "email", "audit",
}


def _type_aliases() -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
    """pyxform's other names for the types above, read from its own type dictionary.

    Old forms write `string`, `int`, `gps`, `phone number`, `percentage`... pyxform defines
    each as one of the types above, sometimes plus a constraint (`phone number` is text
    that must be digits). A supported alias keeps that constraint, so it is honoured and
    not silently dropped; its English default hint is left out, as a chat speaks the form's
    languages. Types named in `UNASKABLE_TYPES` are matched first, because some of them
    (`hidden`, `select one external`) have the same definition as a supported type.
    """
    supported: dict[str, tuple[str, str | None]] = {}
    unsupported: dict[str, str] = {}
    for alias, definition in QUESTION_TYPE_DICT.items():
        if alias in _TYPES or alias in UNASKABLE_TYPES:
            continue
        bind = dict(definition.get("bind", {}))
        constraint = bind.pop("constraint", None)
        bare = {**{k: v for k, v in definition.items() if k != "hint"}, "bind": bind}
        if not bind:
            del bare["bind"]
        target = next((name for name in _TYPES if QUESTION_TYPE_DICT.get(name) == bare), None)
        if target is not None:
            supported[alias] = (target, constraint)
            continue
        reason = next((why for name, why in UNASKABLE_TYPES.items()
                       if QUESTION_TYPE_DICT.get(name) == definition), None)
        if reason is not None:
            unsupported[alias] = reason
    return supported, unsupported


_TYPE_ALIASES, _UNSUPPORTED_ALIASES = _type_aliases()


def _device_metadata(kind: str) -> bool:
    """Whether pyxform fills `kind` from a device property (`imei`, `uri:email`, ...)."""
    bind = QUESTION_TYPE_DICT.get(kind, {}).get("bind", {})
    return kind in _EMPTY_METADATA or bind.get("jr:preload") == "property"


def _why_unaskable(kind: str) -> str | None:
    """Why a chat cannot ask a question of type `kind`."""
    return UNASKABLE_TYPES.get(kind) or _UNSUPPORTED_ALIASES.get(kind)


_SUPPORTED_KEYS = {
    "type", "name", "label", "hint", "bind", "control", "choice_filter", "default",
    "parameters", "itemset", "list_name", "choices", "children",
}
_SUPPORTED_BIND = {"required", "relevant", "constraint", "calculate", "jr:constraintMsg", "jr:requiredMsg",
                  "readonly"}
# Keys pyxform adds that the loader reads where they matter (`media` is reported as unused).
_HANDLED_KEYS = {"query"}


# Settings headers are matched case-insensitively (pyxform does), after pyxform's aliases.
_SUPPORTED_SETTINGS = {"id_string", "version", "title", "default_language"}
# Settings that only concern ODK servers, the XML of the submission or web rendering:
# nothing to do in a chat, and nothing is lost by not doing it, so they are reported as
# warnings rather than errors. (`name` is the XML root element's name.)
_SERVER_SETTINGS = {"style", "instance_name", "submission_url", "public_key", "auto_send", "auto_delete",
                    "name", "omit_instanceid"}
_GROUP_TYPES = ("group", "repeat", "loop")
_CHOICE_MEDIA = {"image", "big-image", "audio", "video", "media"}
# Sheets pyxform reads that describe features a chat does not have.
_UNSUPPORTED_SHEETS = {"entities": "entities (ODK Central datasets)"}
# Appearances that change how a chat renders a question; others are reported as warnings.
CHAT_APPEARANCES = {"minimal", "likert", "horizontal", "horizontal-compact", "compact", "quick",
                    "field-list", "multiline", "label", "list", "list-nolabel", "autocomplete"}

_NO = {"no", "false", "false()", ""}
#: Media types, and the appearances of an image that ODK draws on screen (asked as a photo of it).
_MEDIA_TYPES = {"image", "photo", "audio", "video", "file"}
_DRAWN = {"signature", "draw", "annotate"}
_UNNAMED_NOTE = re.compile(r"generated_note_name_(\d+)")
_OTHER_LABEL = Text({"vi": "Khác", "en": "Other"})
_OTHER_PROMPT = Text({"vi": "Vui lòng ghi rõ:", "en": "Please specify:"})


class FormError(ValueError):
    """The form cannot be used; every problem found is listed with its place."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
        )

