"""A generated survey database for the analysts' benchmark and the reader's equality test.

`build(db, sessions)` writes, with bulk SQL (not through the engine, which would take hours at
national scale), the bundled SIPAS example questionnaire and ``sessions`` sessions of it: one
respondent each, a sample member with inclusion probability and weight in one of ``communes``
strata (the unit), a frame row with an attribute, ~37 answers per session (select_one on the
1–5 scale and with text codes, a select_multiple, an integer, a date, free text, calculations
and start/end/today metadata), some not applicable, some skipped, 20 % of sessions paused part of
the way, each with its events (a few finished on Zalo after starting on Telegram), the answers'
history (written by the schema's own triggers) and a few reminders. The same seed gives the same
database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import sqlite3
from pathlib import Path

import orjson

from storage import open_storage
from surveys.model import QuestionType
from surveys.templates import FOLDER as TEMPLATES
from surveys.xlsform import load_questionnaire

FORM = TEMPLATES / "sipas_citizen.md"
SURVEY = "bench-analysts"
ZONE = dt.timezone(dt.timedelta(hours=7))
COMMENTS = ["Thủ tục nhanh, cán bộ nhiệt tình.", "Cần rút ngắn thời gian chờ đợi ở bộ phận một cửa.",
            "Không có ý kiến.", "Trang dịch vụ công đôi khi bị lỗi khi nộp hồ sơ trực tuyến.",
            "=HYPERLINK(\"http://x\")", "+84 912 345 678"]


async def _schema(db: Path) -> None:
    async with await open_storage(db):
        pass


def build(db: Path, sessions: int = 100_000, communes: int = 300, seed: int = 2026) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    asyncio.run(_schema(db))  # the schema, through storage's migrations
    form = load_questionnaire(FORM)
    source = FORM.read_bytes()
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")
    t0 = dt.datetime(2026, 8, 1, 8, 0, tzinfo=ZONE)
    per_commune = max(1, sessions // communes)
    with con:
        con.execute("INSERT INTO questionnaires VALUES (?, ?, ?, ?, ?, ?)",
                    (form.form_id, form.version, FORM.name, source, hashlib.sha256(source).hexdigest(),
                     t0.isoformat()))
        con.execute("INSERT INTO survey_versions VALUES (?, 1, 'Bench', 2026, '2026-08-01', '2026-09-30',"
                    " 'bench.toml', '', '{}', 'x', ?)", (SURVEY, t0.isoformat()))
        con.execute("INSERT INTO samples VALUES (?, 'drawn', 1, 'x', '{}', ?)", (SURVEY, t0.isoformat()))
        respondents, members, frame, session_rows, events, answers, reminders = [], [], [], [], [], [], []
        for s in range(1, sessions + 1):
            commune = f"xa-{(s - 1) // per_commune % communes:03d}"
            stratum = f"citizen/{commune}"
            started = t0 + dt.timedelta(seconds=rng.randrange(30 * 86400))
            paused = rng.random() < 0.2
            stop_at = rng.randrange(5, 30) if paused else None
            at = started
            values: dict[str, object] = {}
            for k, question in enumerate(q for q in form.questions if q.type is not QuestionType.NOTE):
                if stop_at is not None and k >= stop_at:
                    break
                at += dt.timedelta(seconds=rng.randrange(3, 40))
                values[question.name] = _value(rng, question, started, at)
            completed = None if paused else at
            status = "paused" if paused else "completed"
            respondents.append((s, f"{SURVEY}:{s}", f"R{s:010d}", started.isoformat(), form.form_id, stratum,
                                status if not paused else "started", at.isoformat()))
            members.append((SURVEY, str(s), "citizen", form.form_id, stratum, 0.05, 20.0, "main", s))
            frame.append((SURVEY, str(s), "citizen", commune, stratum,
                          orjson.dumps({"khu_vuc": rng.choice(["thanh_thi", "nong_thon"])}).decode(),
                          t0.isoformat()))
            state = {"format": 1, "form_id": form.form_id, "form_version": form.version, "language":
                     "vi" if rng.random() < 0.95 else "en", "status": status, "current": None, "seq": len(values),
                     "answers": values, "draft": [], "furthest": None, "started_at": started.isoformat(),
                     "completed_at": completed.isoformat() if completed else None}
            session_rows.append((s, s, form.form_id, form.version, "telegram", status,
                                 orjson.dumps(state, option=orjson.OPT_SORT_KEYS).decode(), len(values) + 1,
                                 started.isoformat(), at.isoformat()))
            last = "zalo" if rng.random() < 0.1 else "tg"
            events.append((s, f"tg:bench:{s}", '{"type":"Start"}', 0, started.isoformat()))
            events.append((s, f"{last}:bench:{s}:1", '{"type":"Reply"}', 1, at.isoformat()))
            answers.extend((s, name, orjson.dumps(value).decode(), _status(value), at.isoformat())
                           for name, value in values.items())
            if paused and rng.random() < 0.5:
                reminders.append((s, SURVEY, 1, 0, at.isoformat(), at.isoformat(), at.isoformat(), "telegram",
                                  "bench"))
        con.executemany("INSERT INTO respondents (id, external_id, pseudonym, created_at, form_id, stratum,"
                        " disposition, disposition_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", respondents)
        con.executemany("INSERT INTO frame_units VALUES (?, ?, ?, ?, ?, ?, ?)", frame)
        con.executemany("INSERT INTO sample_members (survey_id, frame_id, grp, form_id, stratum, pi, weight, role,"
                        " respondent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", members)
        con.executemany("INSERT INTO sessions (id, respondent_id, form_id, form_version, channel, status, state,"
                        " revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", session_rows)
        con.executemany("INSERT INTO events (session_id, event_key, event, revision, at) VALUES (?, ?, ?, ?, ?)",
                        events)
        con.executemany("INSERT INTO answers (session_id, question, value, status, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)", answers)
        con.executemany("INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at,"
                        " enqueued_at, channel, bot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", reminders)
    con.execute("ANALYZE")
    con.close()


def _status(plain: object) -> str:
    if plain == {"na": True}:
        return "not_applicable"
    return "skipped" if plain is None or plain == [] else "answered"


def _value(rng: random.Random, question, started: dt.datetime, at: dt.datetime) -> object:
    """An answer as storage keeps it (codec's plain JSON form)."""
    kind = question.type
    if rng.random() < 0.08 and kind.is_asked:
        return {"na": True}
    if kind is QuestionType.SELECT_ONE:
        return rng.choice(question.choices).name
    if kind is QuestionType.SELECT_MULTIPLE:
        picked = [c.name for c in question.choices if rng.random() < 0.4]
        return picked or [question.choices[0].name]
    if kind is QuestionType.INTEGER:
        return rng.randrange(1940, 2008)
    if kind is QuestionType.DATE:
        return None if rng.random() < 0.2 else {"date": (started.date() - dt.timedelta(days=rng.randrange(60))).isoformat()}
    if kind is QuestionType.TEXT:
        return None if rng.random() < 0.5 else rng.choice(COMMENTS) + ("" if rng.random() < 0.7 else f" #{rng.randrange(10**6)}")
    if kind is QuestionType.CALCULATE:
        return rng.randrange(0, 17) if rng.random() < 0.7 else round(rng.random() * 100, 1)
    if kind is QuestionType.START:
        return {"datetime": started.isoformat()}
    if kind is QuestionType.END:
        return {"datetime": at.isoformat()}
    if kind is QuestionType.TODAY:
        return {"date": at.date().isoformat()}
    return None
