"""Check Bot API calls and objects against the machine-readable spec (``api.json``).

The spec lives outside the repository (``../shared/telegram-bot-api/api.json``) and must not be
copied into it, so everything here takes the path as data and callers cope with its absence.
The checker is deliberately stricter than Telegram, which silently ignores unknown parameters:
in tests an ignored parameter is almost always a typo or a field that does nothing, i.e. a bug.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "telegram-bot-api" / "api.json"

_PRIMITIVES = {"Integer", "Float", "Boolean", "String", "InputFile"}
_ARRAY = "Array of "
_INTEGER_TEXT = re.compile(r"-?\d+")
_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class Upload:
    """A file sent with multipart/form-data: the only value an ``InputFile`` parameter accepts."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


class BotApiSpec:
    """The methods and types of one Bot API version, with a value checker.

    Top-level parameters may arrive as text (form fields, query strings), so a string is accepted
    wherever it *parses* as the declared type — exactly what Telegram does. Inside decoded JSON
    (``reply_markup``, ``entities``...) values must have their real JSON types and objects may not
    carry unknown fields.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.version: str = data.get("version", "?")
        self.methods: dict[str, dict[str, Any]] = data["methods"]
        self.types: dict[str, dict[str, Any]] = data["types"]
        self._method_by_lower = {name.lower(): name for name in self.methods}

    @classmethod
    def load(cls, path: Path | None = None) -> BotApiSpec | None:
        """Load the spec from ``path`` (default: the shared copy); ``None`` when it is absent."""
        path = (path or DEFAULT_SPEC_PATH).resolve()
        if not path.is_file():
            return None
        return cls(_read_spec(path))

    def method_name(self, name: str) -> str | None:
        """The canonical spelling of a method (Bot API method names are case-insensitive)."""
        return self._method_by_lower.get(name.lower())

    def check_call(self, method: str, params: dict[str, Any]) -> list[str]:
        """Problems with calling ``method`` with ``params``; empty when the call is valid."""
        fields = {f["name"]: f for f in self.methods[method].get("fields", [])}
        problems = [f"unknown parameter '{name}'" for name in params if name not in fields]
        for name, field in fields.items():
            if name not in params:
                if field["required"]:
                    problems.append(f"missing required parameter '{name}'")
                continue
            problems += self._check_value(field["types"], params[name], name, textual=True)
        return problems

    def check_object(self, type_name: str, value: Any, path: str = "") -> list[str]:
        """Problems with ``value`` as a JSON object of ``type_name`` (e.g. an ``Update``)."""
        return self._check_value([type_name], value, path or type_name, textual=False)

    def _check_value(self, types: list[str], value: Any, path: str, *, textual: bool) -> list[str]:
        """Accept ``value`` if any of ``types`` fits; otherwise report the closest alternative."""
        attempts = [self._check_type(t, value, path, textual=textual) for t in types]
        best = min(attempts, key=len)
        if not best:
            return []
        if len(types) > 1 and len(best) == 1 and best[0].startswith(f"{path}: expected"):
            return [f"{path}: expected {' or '.join(types)}, got {_describe(value)}"]
        return best

    def _check_type(self, type_name: str, value: Any, path: str, *, textual: bool) -> list[str]:
        if textual and isinstance(value, str) and type_name != "String":
            return self._check_text(type_name, value, path)
        if type_name.startswith(_ARRAY):
            if not isinstance(value, list):
                return [f"{path}: expected {type_name}, got {_describe(value)}"]
            item_type = type_name[len(_ARRAY):]
            return [
                problem
                for index, item in enumerate(value)
                for problem in self._check_value([item_type], item, f"{path}[{index}]", textual=False)
            ]
        if type_name in _PRIMITIVES:
            if _is_primitive(type_name, value):
                return []
            return [f"{path}: expected {type_name}, got {_describe(value)}"]
        return self._check_object_type(type_name, value, path)

    def _check_text(self, type_name: str, text: str, path: str) -> list[str]:
        """A form field: numbers and booleans as text, arrays and objects as JSON text."""
        if type_name == "Integer":
            ok = bool(_INTEGER_TEXT.fullmatch(text))
        elif type_name == "Float":
            ok = _is_float_text(text)
        elif type_name == "Boolean":
            ok = text.lower() in _BOOLEAN_TEXT
        elif type_name == "InputFile":
            ok = False
        else:
            try:
                decoded = json.loads(text)
            except ValueError:
                return [f"{path}: expected JSON-serialized {type_name}, got {_describe(text)}"]
            return self._check_type(type_name, decoded, path, textual=False)
        return [] if ok else [f"{path}: expected {type_name}, got {_describe(text)}"]

    def _check_object_type(self, type_name: str, value: Any, path: str) -> list[str]:
        spec = self.types.get(type_name)
        if spec is None:
            return [f"{path}: the spec has no type {type_name}"]
        if "subtypes" in spec:
            return self._check_value(spec["subtypes"], value, path, textual=False)
        if not isinstance(value, dict):
            return [f"{path}: expected {type_name}, got {_describe(value)}"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        if not fields:  # placeholder types such as CallbackGame accept any object
            return []
        problems = [f"{path}.{name}: unknown field of {type_name}" for name in value if name not in fields]
        for name, field in fields.items():
            if name in value:
                problems += self._check_value(field["types"], value[name], f"{path}.{name}", textual=False)
            elif field["required"]:
                problems.append(f"{path}.{name}: missing required field of {type_name}")
        return problems


@functools.cache
def _read_spec(path: Path) -> dict[str, Any]:
    """The parsed file, read once per process: it is large and read-only, and every test's
    emulator wants it."""
    return json.loads(path.read_text(encoding="utf-8"))


def parse_boolean_text(text: str) -> bool | None:
    """``True``/``False`` for the spellings Telegram accepts in form fields, else ``None``."""
    return _BOOLEAN_TEXT.get(text.lower())


def _is_primitive(type_name: str, value: Any) -> bool:
    if type_name == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "Float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "Boolean":
        return isinstance(value, bool)
    if type_name == "String":
        return isinstance(value, str)
    return isinstance(value, Upload)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(value: Any) -> str:
    if isinstance(value, Upload):
        return f"uploaded file {value.filename!r}"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
