"""The peer: the SIPAS questionnaire asked the way aiogram's documentation teaches.

    python bench/peer_aiogram_fsm.py [--respondents N] [--runs 3] [--appendfsync always|everysec]

A `StatesGroup` (consent, answering, done) with the current question's index kept in FSM data,
inline keyboards built with `InlineKeyboardBuilder`, button data parsed with aiogram's
`CallbackData` factories (which pack as `c:{seq}:{key}` — the same data khaosat's stream
carries), answers kept with `state.update_data(...)`, replies sent from the handler with
`message.answer` / `edit_reply_markup`, and a durable FSM storage: aiogram's `RedisStorage` on
a real redis-server (127.0.0.1, a free port, AOF on with `appendfsync always` by default, so
each write is on disk like khaosat's synchronous=FULL commits; `everysec` is Redis's own
default AOF policy).

It asks what the stream expects: the questions in form order, with SIPAS's three relevance
rules written by hand, as such a bot's author would (no XLSForm expressions, no calculations,
no answer history, no event log, no back button, no outbox). The stream is khaosat's (see
bench/_harness.py); the peer checks the prompt number in each button as khaosat does.

aiogram-forms (1.1.1, the published form library) declares aiogram>=3.0.0b5 and imports
on 3.31, but it only reads *messages* (choices are reply-keyboard labels matched as typed text,
no callback queries, no conditional fields), so it cannot take this stream; it is not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from aiogram import Bot, Dispatcher, F, Router  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.filters import CommandStart  # noqa: E402
from aiogram.filters.callback_data import CallbackData  # noqa: E402
from aiogram.fsm.context import FSMContext  # noqa: E402
from aiogram.fsm.state import State, StatesGroup  # noqa: E402
from aiogram.types import CallbackQuery, Message  # noqa: E402
from aiogram.utils.keyboard import InlineKeyboardBuilder  # noqa: E402

from surveys.model import Questionnaire  # noqa: E402


def ensure_redis() -> str:
    """The redis-server binary and the redis client package, installed if missing."""
    try:
        importlib.import_module("redis")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redis"], check=True)
    server = shutil.which("redis-server")
    if server is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-server"], check=False,
                       stdout=subprocess.DEVNULL)
        server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is needed for the peer: apt-get install -y redis-server (and pip install redis)")
    return server


class RedisServer:
    def __init__(self, directory: Path, appendfsync: str = "always"):
        self.directory = directory
        self.appendfsync = appendfsync

    def start(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [ensure_redis(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return f"redis://127.0.0.1:{self.port}/0"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


# -- the bot, as the documentation teaches --------------------------------------------------------


class Survey(StatesGroup):
    consent = State()
    answering = State()
    done = State()


class Choose(CallbackData, prefix="c"):
    seq: int
    key: str


class Toggle(CallbackData, prefix="+"):  # khaosat's tick button packs the same way
    seq: int
    key: str


class Done(CallbackData, prefix="d"):
    seq: int
    key: str = ""


# The questionnaire's skip logic, written by hand as a peer bot's author would.
RELEVANT = {
    "tc_cho_ngoi": lambda a: "mot_cua" in a.get("kenh", ()),
    "tc_trang_thiet_bi": lambda a: "mot_cua" in a.get("kenh", ()),
    "tc_truc_tuyen": lambda a: "truc_tuyen" in a.get("kenh", ()),
    "kq_dung_quy_dinh": lambda a: a.get("kq_dung_hen") != "chua_nhan",
    "kq_thong_tin": lambda a: a.get("kq_dung_hen") != "chua_nhan",
    "gy_hinh_thuc": lambda a: a.get("co_gop_y") == "co",
    "gy_de_dang": lambda a: a.get("co_gop_y") == "co",
    "gy_tich_cuc": lambda a: a.get("co_gop_y") == "co",
    "gy_kip_thoi": lambda a: a.get("co_gop_y") == "co",
}


class PeerSurveyBot:
    def __init__(self, form: Questionnaire):
        self.questions = [
            {"name": q.name, "type": q.type.value, "label": q.label.get("vi", "vi"),
             "choices": [(c.key, c.name, c.label.get("vi", "vi")) for c in q.choices]}
            for q in form.asked
        ]

    def router(self) -> Router:
        router = Router(name="peer-fsm")
        router.message.register(self.start, CommandStart())
        router.callback_query.register(self.consent, Survey.consent, Choose.filter())
        router.callback_query.register(self.choose, Survey.answering, Choose.filter())
        router.callback_query.register(self.toggle, Survey.answering, Toggle.filter())
        router.callback_query.register(self.done, Survey.answering, Done.filter())
        router.message.register(self.typed, Survey.answering, F.text)
        return router

    def keyboard(self, index: int, seq: int, marks: list[str] = ()):
        question = self.questions[index]
        builder = InlineKeyboardBuilder()
        if question["type"] == "select_multiple":
            for key, name, label in question["choices"]:
                builder.button(text=("✅ " if name in marks else "⬜ ") + label, callback_data=Toggle(seq=seq, key=key))
            builder.button(text="✔ Xong", callback_data=Done(seq=seq))
            builder.adjust(1)
        elif question["choices"]:
            for key, _, label in question["choices"]:
                builder.button(text=label, callback_data=Choose(seq=seq, key=key))
            builder.adjust(1)
        else:
            return None
        return builder.as_markup()

    def next_index(self, index: int, answers: dict[str, Any]) -> int | None:
        for position in range(index, len(self.questions)):
            rule = RELEVANT.get(self.questions[position]["name"])
            if rule is None or rule(answers):
                return position
        return None

    async def ask(self, message: Message, state: FSMContext, index: int | None, seq: int,
                  answers: dict[str, Any]) -> None:
        if index is None:
            await state.set_state(Survey.done)
            await state.update_data(answers=answers, q=None, draft=[])
            await message.answer("Xin chân thành cảm ơn quý vị đã hoàn thành khảo sát!")
            return
        await state.update_data(answers=answers, q=index, seq=seq, draft=[])
        question = self.questions[index]
        await message.answer(f"Câu {index + 1}/{len(self.questions)}\n{question['label']}",
                             reply_markup=self.keyboard(index, seq))

    async def start(self, message: Message, state: FSMContext) -> None:
        await state.set_state(Survey.consent)
        await state.set_data({"seq": 1, "answers": {}})
        builder = InlineKeyboardBuilder()
        builder.button(text="Đồng ý", callback_data=Choose(seq=1, key="yes"))
        builder.button(text="Không đồng ý", callback_data=Choose(seq=1, key="no"))
        await message.answer("Quý vị có đồng ý tham gia khảo sát không?", reply_markup=builder.as_markup())

    async def consent(self, callback: CallbackQuery, callback_data: Choose, state: FSMContext) -> None:
        data = await state.get_data()
        if callback_data.seq != data["seq"] or callback_data.key != "yes":
            await callback.answer("Câu hỏi đó đã qua.")
            return
        await state.set_state(Survey.answering)
        await self.ask(callback.message, state, self.next_index(0, {}), data["seq"] + 1, {})
        await callback.answer()

    async def choose(self, callback: CallbackQuery, callback_data: Choose, state: FSMContext) -> None:
        data = await state.get_data()
        question = self.questions[data["q"]]
        name = next((n for k, n, _ in question["choices"] if k == callback_data.key), None)
        if callback_data.seq != data["seq"] or name is None:
            await callback.answer("Câu hỏi đó đã qua.")
            return
        answers = {**data["answers"], question["name"]: name}
        await self.ask(callback.message, state, self.next_index(data["q"] + 1, answers), data["seq"] + 1, answers)
        await callback.answer()

    async def toggle(self, callback: CallbackQuery, callback_data: Toggle, state: FSMContext) -> None:
        data = await state.get_data()
        question = self.questions[data["q"]]
        name = next((n for k, n, _ in question["choices"] if k == callback_data.key), None)
        if callback_data.seq != data["seq"] or name is None:
            await callback.answer("Câu hỏi đó đã qua.")
            return
        draft = [m for m in data["draft"] if m != name] if name in data["draft"] else [*data["draft"], name]
        await state.update_data(draft=draft)
        await callback.message.edit_reply_markup(reply_markup=self.keyboard(data["q"], data["seq"], draft))
        await callback.answer()

    async def done(self, callback: CallbackQuery, callback_data: Done, state: FSMContext) -> None:
        data = await state.get_data()
        if callback_data.seq != data["seq"] or not data["draft"]:
            await callback.answer("Vui lòng chọn ít nhất một phương án.")
            return
        question = self.questions[data["q"]]
        answers = {**data["answers"], question["name"]: data["draft"]}
        await self.ask(callback.message, state, self.next_index(data["q"] + 1, answers), data["seq"] + 1, answers)
        await callback.answer()

    async def typed(self, message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        question = self.questions[data["q"]]
        text = (message.text or "").strip()
        try:
            if question["type"] == "integer":
                value: Any = int(text)
                if not 1920 <= value <= 2008:
                    raise ValueError
            elif question["type"] == "date":
                value = dt.datetime.strptime(text, "%d/%m/%Y").date().isoformat()
            elif question["type"] == "text":
                value = text[:1000]
            else:
                raise ValueError
        except ValueError:
            await message.answer("Câu trả lời chưa hợp lệ, xin nhập lại.")
            return
        answers = {**data["answers"], question["name"]: value}
        await self.ask(message, state, self.next_index(data["q"] + 1, answers), data["seq"] + 1, answers)


# -- measuring ----------------------------------------------------------------------------------


def expected(value: Any) -> Any:
    if isinstance(value, tuple):
        return sorted(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class PeerRunner:
    def __init__(self, db_dir: Path, form: Questionnaire, emulator: h.EmulatorProcess, appendfsync: str = "always"):
        self.form = form
        self.emulator = emulator
        self.redis = RedisServer(Path(tempfile.mkdtemp(prefix="peer-redis-", dir=db_dir)), appendfsync)

    async def start(self) -> None:
        self.url = self.redis.start()

    async def stop(self) -> None:
        self.redis.stop()

    async def measure(self, stream: h.Stream, mode: str, run: int, concurrency: int) -> dict:
        from aiogram.fsm.storage.redis import RedisStorage

        storage = RedisStorage.from_url(self.url)
        await storage.redis.flushdb()
        token = f"{800000 + run}:PEER-{mode}"
        chats = [p.chat_id for p in stream.respondents]
        if mode == "emulator":
            self.emulator.call("add_bot", token, "peer_bench_bot")
            self.emulator.call("users", token, chats)
            self.emulator.call("seed", token, [(p.chat_id, mid, text, markup) for p in stream.respondents
                                               for mid, text, markup in p.multi_prompts])
            session = AiohttpSession(api=TelegramAPIServer.from_base(self.emulator.base_url))
        else:
            session = h.InProcessSession()
        bot = Bot(token, session=session)
        dispatcher = Dispatcher(storage=storage)
        dispatcher.include_router(PeerSurveyBot(self.form).router())
        try:
            next_update = await h.feed_starts(dispatcher, bot, stream, 1)
            query_ids = self.emulator.call("queries", token, h.press_chat_ids(stream)) if mode == "emulator" else None
            result = await h.feed_stream(dispatcher, bot, stream, next_update, query_ids, concurrency)
            problems, stored = [], 0
            for person in stream.respondents:
                key = h_key(bot.id, person.chat_id)
                state = await storage.get_state(key)
                data = await storage.get_data(key)
                if state != Survey.done.state:
                    problems.append(f"chat {person.chat_id}: state {state}")
                    continue
                got = {k: sorted(v) if isinstance(v, list) else v for k, v in data["answers"].items()}
                want = {k: expected(v) for k, v in person.answers.items()}
                if got != want:
                    problems.append(f"chat {person.chat_id}: {got} != {want}")
                stored += len(got)
            extra = {}
            if mode == "emulator":
                stats = self.emulator.call("stats", token)
                extra = {"emulator": stats["stats"], "violations": stats["violations"]}
            else:
                extra = {"calls": dict(session.calls)}
            info = await storage.redis.info("persistence")
            return {"system": "peer aiogram FSM", "storage": f"Redis AOF {self.redis.appendfsync}", "mode": mode,
                    "run": run, "seconds": round(result.seconds, 3),
                    "updates_per_s": round(result.updates_per_second, 1),
                    "answers_per_s": round(result.answers_per_second, 1), "n_errors": len(result.errors),
                    "errors": result.errors[:5], "ok": not problems, "problems": problems[:5],
                    "answers_stored": stored, "aof_rewrites": info.get("aof_rewrites"), **extra}
        finally:
            await storage.close()
            await bot.session.close()


def h_key(bot_id: int, chat_id: int):
    from aiogram.fsm.storage.base import StorageKey

    return StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id)


async def main(args) -> int:
    form = h.load_sipas()
    stream = h.generate(form, args.respondents)
    args.db_dir.mkdir(parents=True, exist_ok=True)
    emulator = h.EmulatorProcess(callback_query_ttl=3600.0, per_bot_per_second=100_000,
                                 per_chat_per_second=100_000, per_chat_burst=100_000)
    runner = PeerRunner(args.db_dir, form, emulator, args.appendfsync)
    await runner.start()
    rows = []
    try:
        for run in range(1, args.runs + 1):
            for mode in ("in-process", "emulator"):
                row = await runner.measure(stream, mode, run, args.concurrency)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        await runner.stop()
        emulator.stop()
    for mode in ("in-process", "emulator"):
        values = [r["answers_per_s"] for r in rows if r["mode"] == mode]
        print(f"peer aiogram FSM + Redis (AOF {args.appendfsync}), {mode}: median {h.median(values):.0f} answers/s")
    return 0 if all(r["ok"] and not r["n_errors"] for r in rows) else 1


def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description="aiogram FSM + RedisStorage peer on khaosat's update stream")
    parser.add_argument("--respondents", type=int, default=300)
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--appendfsync", choices=("always", "everysec"), default="always")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
