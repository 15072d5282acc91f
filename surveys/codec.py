"""JSON for answers, session states and events, so storage keeps text and never engine objects.

Dates, tuples, infinities and NOT_APPLICABLE do not exist in JSON; each gets a one-key object so that
decoding gives back exactly the Python value the engine produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any, Mapping

import orjson

from surveys import engine
from surveys.expressions import NOT_APPLICABLE

STATE_FORMAT = 1

_EVENTS = {cls.__name__: cls for cls in (engine.Start, engine.Reply, engine.Locate, engine.Attach, engine.Choose, engine.Toggle,
                                          engine.Done, engine.Back, engine.SetLanguage, engine.Stop,
                                          engine.Resume)}
_EVENT_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _EVENTS.values()}
_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(engine.SessionState))

_NA_PLAIN = {"na": True}  # handed to the encoder and compared with, never given to callers
_STATUSES = {status.value: status for status in engine.Status}
_DECODER = json.JSONDecoder()


def value_to_plain(value: Any) -> Any:
    kind = value.__class__
    if kind is str or kind is int or value is None:  # most answers: JSON as they are
        return value
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
    if isinstance(value, float) and value in (math.inf, -math.inf):  # 1 div 0; JSON has no infinity
        return {"float": repr(value)}
    return value


def value_from_plain(plain: Any) -> Any:
    if plain.__class__ is str or plain is None:  # most answers
        return plain
    if isinstance(plain, dict):
        if plain.get("na"):
            return NOT_APPLICABLE
        if "datetime" in plain:
            return dt.datetime.fromisoformat(plain["datetime"])
        if "date" in plain:
            return dt.date.fromisoformat(plain["date"])
        if "float" in plain:
            return float(plain["float"])
        raise ValueError(f"unknown value object {plain!r}")
    if isinstance(plain, list):
        return tuple(plain)
    return plain


def _dumps(plain: Any, option: int = 0) -> str:
    """JSON text (UTF-8, not ASCII-escaped) by orjson, several times faster than ``json`` on
    every step; ``json`` writes what orjson refuses, i.e. integers beyond 64 bits."""
    try:
        return orjson.dumps(plain, option=option).decode()
    except TypeError:
        return json.dumps(plain, ensure_ascii=False, sort_keys=bool(option & orjson.OPT_SORT_KEYS))


def encode_value(value: Any) -> str:
    return _dumps(value_to_plain(value))


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
        "answers": _answers_to_plain(state.answers),
        "draft": list(state.draft),
        "furthest": state.furthest,
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "completed_at": state.completed_at.isoformat() if state.completed_at else None,
    }
    if state.instances or state.closed:  # forms with repeats only: other states keep their text
        plain["instances"] = dict(state.instances)
        plain["closed"] = list(state.closed)
    if state.preloads:  # forms that read the sampled person's frame row only
        plain["preloads"] = dict(state.preloads)
    if state.seed:  # sessions started with a seed; older ones derive it from their start time
        plain["seed"] = state.seed
    return _dumps(plain, orjson.OPT_SORT_KEYS)


def _answers_to_plain(answers: Mapping[str, Any]) -> dict[str, Any]:
    """`value_to_plain` of every answer, the common kinds inline (this runs at every step)."""
    plain = {}
    for name, value in answers.items():
        kind = value.__class__
        if kind is str or kind is int or value is None:
            plain[name] = value
        elif value is NOT_APPLICABLE:
            plain[name] = _NA_PLAIN
        else:
            plain[name] = value_to_plain(value)
    return plain


def as_decoded(state: engine.SessionState) -> engine.SessionState | None:
    """The state exactly as ``decode_state(encode_state(state))`` gives it, without the round
    trip: answers in name order (as the JSON keys are sorted), times with a fixed UTC offset (as
    ``fromisoformat`` reads them) instead of a zone. None for a state with a value whose round
    trip changes it (NaN is stored as empty, a tuple of anything but text) or that this does not
    know, so the caller decodes instead."""
    answers: dict[str, Any] = {}
    given = state.answers
    for name in sorted(given):
        value = given[name]
        kind = value.__class__
        if kind is str or kind is int or value is None or value is NOT_APPLICABLE or kind is dt.date:
            answers[name] = value
        elif kind is tuple:
            for item in value:
                if item.__class__ is not str:
                    return None
            answers[name] = value
        elif kind is dt.datetime:
            answers[name] = _fixed_offset(value)
        elif kind is float and value == value and value not in (math.inf, -math.inf):
            answers[name] = value
        else:
            return None
    fields = {name: getattr(state, name) for name in _STATE_FIELDS}  # dataclasses.replace, a third as dear
    fields.update(answers=answers, started_at=_fixed_offset(state.started_at),
                  completed_at=_fixed_offset(state.completed_at))
    return engine.SessionState(**fields)


def _fixed_offset(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None or (value.tzinfo.__class__ is dt.timezone and not value.fold):
        return value
    return value.replace(tzinfo=dt.timezone(value.utcoffset()), fold=0)


def decode_state(text: str) -> engine.SessionState:
    plain = _loads(text)
    if plain.get("format") != STATE_FORMAT:
        raise ValueError(f"session state format {plain.get('format')!r} is not {STATE_FORMAT}")
    return engine.SessionState(
        form_id=plain["form_id"],
        form_version=plain["form_version"],
        language=plain["language"],
        status=_status(plain["status"]),
        current=plain["current"],
        seq=plain["seq"],
        answers={name: v if v.__class__ is str else NOT_APPLICABLE if v == _NA_PLAIN else value_from_plain(v)
                 for name, v in plain["answers"].items()},
        draft=tuple(plain["draft"]),
        furthest=plain["furthest"],
        started_at=_datetime(plain["started_at"]),
        completed_at=_datetime(plain["completed_at"]),
        instances=plain.get("instances") or {},
        closed=tuple(plain.get("closed") or ()),
        preloads=plain.get("preloads") or {},
        seed=plain.get("seed") or "",
    )


def encode_event(event: engine.Event) -> str:
    names = _EVENT_FIELDS.get(type(event)) or tuple(f.name for f in dataclasses.fields(event))
    plain = {name: getattr(event, name) for name in names}
    plain["at"] = event.at.isoformat()
    plain["type"] = type(event).__name__  # sorted below: the same text as {"type": ..., **fields}
    return _dumps(plain, orjson.OPT_SORT_KEYS)


def decode_event(text: str) -> engine.Event:
    plain: Mapping[str, Any] = json.loads(text)
    fields = {k: v for k, v in plain.items() if k != "type"}
    fields["at"] = dt.datetime.fromisoformat(fields["at"])
    return _EVENTS[plain["type"]](**fields)


def _loads(text: str) -> Any:
    """json.loads(text), skipping its whitespace scans for text as this module writes it.

    Not orjson: it reads integers beyond 64 bits as floats, which would change an answer."""
    try:
        plain, end = _DECODER.raw_decode(text)
        if end == len(text):
            return plain
    except Exception:  # noqa: BLE001 - json.loads below raises what it always raised
        pass
    return json.loads(text)


def _status(value: Any) -> engine.Status:
    try:
        return _STATUSES[value]
    except (KeyError, TypeError):
        return engine.Status(value)  # the error it has always raised


def _datetime(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None
