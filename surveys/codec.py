"""JSON for answers, session states and events, so storage keeps text and never engine objects.

Dates, tuples and NOT_APPLICABLE do not exist in JSON; each gets a one-key object so that
decoding gives back exactly the Python value the engine produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Mapping

from surveys import engine
from surveys.expressions import NOT_APPLICABLE

STATE_FORMAT = 1

_EVENTS = {cls.__name__: cls for cls in (engine.Start, engine.Reply, engine.Choose, engine.Toggle,
                                          engine.Done, engine.Back, engine.SetLanguage, engine.Stop,
                                          engine.Resume)}


def value_to_plain(value: Any) -> Any:
    if value is NOT_APPLICABLE:
        return {"na": True}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def value_from_plain(plain: Any) -> Any:
    if isinstance(plain, dict):
        if plain.get("na"):
            return NOT_APPLICABLE
        if "datetime" in plain:
            return dt.datetime.fromisoformat(plain["datetime"])
        if "date" in plain:
            return dt.date.fromisoformat(plain["date"])
        raise ValueError(f"unknown value object {plain!r}")
    if isinstance(plain, list):
        return tuple(plain)
    return plain


def encode_value(value: Any) -> str:
    return json.dumps(value_to_plain(value), ensure_ascii=False)


def decode_value(text: str) -> Any:
    return value_from_plain(json.loads(text))


def answer_status(value: Any) -> str:
    """The storage status of an answer value."""
    if value is NOT_APPLICABLE:
        return "not_applicable"
    if value is None or value == ():
        return "skipped"
    return "answered"


def encode_state(state: engine.SessionState) -> str:
    plain = {
        "format": STATE_FORMAT,
        "form_id": state.form_id,
        "form_version": state.form_version,
        "language": state.language,
        "status": state.status.value,
        "current": state.current,
        "seq": state.seq,
        "answers": {name: value_to_plain(v) for name, v in state.answers.items()},
        "draft": list(state.draft),
        "furthest": state.furthest,
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "completed_at": state.completed_at.isoformat() if state.completed_at else None,
    }
    return json.dumps(plain, ensure_ascii=False, sort_keys=True)


def decode_state(text: str) -> engine.SessionState:
    plain = json.loads(text)
    if plain.get("format") != STATE_FORMAT:
        raise ValueError(f"session state format {plain.get('format')!r} is not {STATE_FORMAT}")
    return engine.SessionState(
        form_id=plain["form_id"],
        form_version=plain["form_version"],
        language=plain["language"],
        status=engine.Status(plain["status"]),
        current=plain["current"],
        seq=plain["seq"],
        answers={name: value_from_plain(v) for name, v in plain["answers"].items()},
        draft=tuple(plain["draft"]),
        furthest=plain["furthest"],
        started_at=_datetime(plain["started_at"]),
        completed_at=_datetime(plain["completed_at"]),
    )


def encode_event(event: engine.Event) -> str:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    fields["at"] = event.at.isoformat()
    return json.dumps({"type": type(event).__name__, **fields}, ensure_ascii=False, sort_keys=True)


def decode_event(text: str) -> engine.Event:
    plain: Mapping[str, Any] = json.loads(text)
    fields = {k: v for k, v in plain.items() if k != "type"}
    fields["at"] = dt.datetime.fromisoformat(fields["at"])
    return _EVENTS[plain["type"]](**fields)


def _datetime(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
