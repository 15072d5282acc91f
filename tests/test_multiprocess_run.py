"""Three real `khaosat run` processes on one database behind a load balancer (webhooks), one of
them killed with SIGKILL every few seconds and started again, while 50 people answer on the
Telegram emulator: every answer is stored once, every message reached its person at most once
(exactly once when the outbox says "sent"; "unknown" only for a send a killed process left in
flight), every person finishes; and each process answers /healthz and /readyz.

The harness (``Cluster``) is also what bench/processes.py measures answers/s with.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import socket
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.telegram.emulator import BotApiEmulator, Limits
from storage import open_storage

ROOT = Path(__file__).resolve().parent.parent


def token(bot: int) -> str:
    return f"{1000 + bot}:procs-run"


QUESTIONS = 5
FORM = """\
| survey |
|        | type    | name | label::Tiếng Việt (vi) | label::English (en) | required |
""" + "".join(f"|        | integer | q{k} | Câu số {k}             | Question {k}        | yes      |\n"
              for k in range(1, QUESTIONS + 1)) + """\
| settings |
|          | form_id    | version | form_title | default_language |
|          | procs_form | t1      | Thử        | Tiếng Việt (vi)  |
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The emulator, a round-robin load balancer and ``size`` `khaosat run` processes.

    ``webhook``: every process runs every bot, updates reach them through the load balancer
    (``shared_chats``). ``polling``: the bots are split between the processes, each polls its own.
    """

    def __init__(self, workdir: Path, database: Path | str, size: int, *, per_second: int = 100, bots: int = 1,
                 mode: str = "webhook", per_chat: int = 1):
        self.workdir = workdir
        self.database = database
        self.size = size
        self.per_second = per_second
        self.bots = bots
        self.mode = mode
        self.per_chat = per_chat
        self.processes: list[asyncio.subprocess.Process | None] = [None] * size
        self.ports = [free_port() for _ in range(size)]
        self.health_ports = [free_port() for _ in range(size)]
        self.starts = 0
        self._next = 0

    async def __aenter__(self) -> Cluster:
        self.emulator = BotApiEmulator(limits=Limits(per_bot_per_second=self.per_second, per_chat_burst=5,
                                                     per_chat_per_second=self.per_chat))
        await self.emulator.start()
        self.emulated = [self.emulator.add_bot(token(bot), f"procs_run_bot{bot}") for bot in range(self.bots)]
        self.bot = self.emulated[0]
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/hook/{bot}", self._forward)
        self.balancer = web.AppRunner(app, access_log=None)
        await self.balancer.setup()
        await web.TCPSite(self.balancer, "127.0.0.1", 0).start()
        self.hook = f"http://127.0.0.1:{self.balancer.addresses[0][1]}/hook/"
        form = self.workdir / "form.md"
        form.write_text(FORM, encoding="utf-8")
        async with await open_storage(self.database):
            pass  # created and migrated: `khaosat run` refuses a database that does not exist
        for index in range(self.size):
            (self.workdir / f"p{index}.toml").write_text(self._config(index, form), encoding="utf-8")
        await asyncio.gather(*(self.start(index) for index in range(self.size)))
        try:
            await self.wait_ready()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for index in range(self.size):
            await self.stop(index)
        await self.session.close()
        await self.balancer.cleanup()
        await self.emulator.stop()

    def _config(self, index: int, form: Path) -> str:
        db = self.database if isinstance(self.database, str) else str(self.database)
        mine = range(self.bots) if self.mode == "webhook" else range(index, self.bots, self.size)
        return self._process_config(index, db) + "".join(self._bot_config(index, bot, form) for bot in mine)

    def _process_config(self, index: int, db: str) -> str:
        return f"""
[storage]
path = {json.dumps(db)}
[process]
name = "p{index}"
health = "127.0.0.1:{self.health_ports[index]}"
log_format = "json"
shared_chats = {"true" if self.mode == "webhook" else "false"}
[coordinators]
daily_summary = false
"""

    def _bot_config(self, index: int, bot: int, form: Path) -> str:
        webhook = f"""
[telegram.webhook]
url = "{self.hook}{bot}"
listen = "127.0.0.1:{self.ports[index]}"
secret_token = "procs-secret"
""" if self.mode == "webhook" else ""
        return f"""
[[telegram]]
name = "procs{bot}"
token = "{token(bot)}"
api_base = "{self.emulator.base_url}"
mode = "{self.mode}"
forms = [{json.dumps(str(form))}]
open_codes = {{ "mo" = "procs_form" }}{webhook}
[telegram.pace]
per_second = {self.per_second}
per_chat_per_second = {self.per_chat}
per_chat_burst = 5
"""

    async def _forward(self, request: web.Request) -> web.Response:
        """Round robin over the processes; one that does not answer is skipped (the update goes to
        the next), and if none answers the emulator is told 502 and delivers it again later."""
        body = await request.read()
        for _ in range(self.size):
            index, self._next = self._next, (self._next + 1) % self.size
            try:
                async with self.session.post(f"http://127.0.0.1:{self.ports[index]}/hook/{request.match_info['bot']}",
                                             data=body,
                                             headers={k: v for k, v in request.headers.items()
                                                      if k.lower().startswith(("x-telegram", "content-type"))},
                                             timeout=aiohttp.ClientTimeout(total=10)) as answer:
                    return web.Response(status=answer.status, body=await answer.read(),
                                        content_type=answer.content_type)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                continue
        return web.Response(status=502)

    async def start(self, index: int) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        log = (self.workdir / f"p{index}.log").open("ab")
        self.processes[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "--config", str(self.workdir / f"p{index}.toml"), "run",
            env=env, stdout=log, stderr=log)
        self.starts += 1

    async def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()

    async def stop(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except asyncio.TimeoutError:
                await self.kill(index)

    async def health(self, index: int, path: str) -> tuple[int, dict]:
        async with self.session.get(f"http://127.0.0.1:{self.health_ports[index]}{path}") as answer:
            return answer.status, await answer.json()

    async def wait_ready(self, indices: list[int] | None = None) -> None:
        for index in indices if indices is not None else range(self.size):
            for _ in range(1200):  # two minutes: on a loaded machine, importing aiogram alone takes seconds
                with contextlib.suppress(aiohttp.ClientError):
                    if (await self.health(index, "/readyz"))[0] == 200:
                        break
                if self.processes[index].returncode is not None:
                    raise AssertionError((self.workdir / f"p{index}.log").read_text()[-3000:])
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"process {index} never ready")

    def delivered(self) -> dict[int, list[str]]:
        return {user_id: [m.text or "" for m in user.received] for bot in self.emulated
                for user_id, user in bot.users.items()}


def answer_for(person: int, question: int) -> str:
    return str(1000 * person + question)


async def take_part(cluster: Cluster, person: int, timeout: float = 60, *, pause: bool = True) -> int | None:
    """Open the survey with the public code, agree, and answer each question once as it is asked
    (a question shown again after a lost reply is not answered twice). People are spread over
    the bots; ``pause``: a person reads a little before answering. Returns the person when their
    thank-you never came (lost in a kill), else None."""
    user = cluster.emulated[person % cluster.bots].user(7000 + person)
    await user.start("mo")
    consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""), timeout)
    await user.press("Đồng ý", consent)
    answered: set[int] = set()
    while len(answered) < QUESTIONS:
        message = await user.wait_for(lambda m: m.edits == 0 and "Câu số" in (m.text or ""), timeout)
        question = int((message.text or "").split("Câu số", 1)[1].split()[0])
        if question in answered:
            continue
        answered.add(question)
        if pause:
            await asyncio.sleep(random.uniform(0.05, 0.3))
        await user.send_text(answer_for(person, question))
    try:
        await user.wait_for(lambda m: "hoàn thành" in (m.text or ""), timeout)
    except TimeoutError:
        # The thank-you was in flight in a process that was killed: its row is "unknown", never
        # sent twice, and after the last question nothing is asked again. The caller checks that.
        return person
    return None


async def test_killing_processes_loses_and_doubles_nothing(tmp_path, database):
    people = 50
    async with Cluster(tmp_path, database, 3) as cluster:
        status, body = await cluster.health(0, "/healthz")
        assert status == 200 and body["process"] == "p0"
        status, body = await cluster.health(1, "/readyz")
        assert status == 200 and body["live_processes"] == 3 and body["problems"] == []
        answering = asyncio.gather(*(take_part(cluster, person) for person in range(people)))
        kills = 0
        rng = random.Random(15)
        while not answering.done() and kills < 6:
            await asyncio.wait({answering}, timeout=3)
            if answering.done():
                break
            victim = rng.randrange(cluster.size)
            await cluster.kill(victim)
            kills += 1
            await cluster.start(victim)
        unthanked = {7000 + person for person in await answering if person is not None}  # everyone finished
        assert kills >= 2, "the people finished before the processes were killed"
        async with await open_storage(database) as storage:
            for _ in range(300):  # a killed process's in-flight rows: unknown once their lease lapses
                counts = await storage.outbox_counts()
                if counts["sending"] == 0 and counts["pending"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert counts["sending"] == 0 and counts["pending"] == 0 and counts["failed"] == 0, counts
            answers = await storage._fetchall(  # noqa: SLF001
                "SELECT l.chat_id, a.question, a.value FROM answers a JOIN sessions s ON s.id = a.session_id"
                " JOIN chat_links l ON l.respondent_id = s.respondent_id")
            history = await storage._fetchall(  # noqa: SLF001
                "SELECT session_id, question, count(*) FROM answer_history GROUP BY 1, 2")
            rows = await storage._fetchall(  # noqa: SLF001
                "SELECT chat_id, payload, state FROM outbox WHERE method = 'sendMessage'")
        delivered = cluster.delivered()
    stored = {(int(chat), question): json.loads(value) for chat, question, value in answers}
    assert stored == {(7000 + p, f"q{k}"): 1000 * p + k for p in range(people) for k in range(1, QUESTIONS + 1)}
    assert {n for _, _, n in history} == {1}  # each answer written once
    # At the emulator: a "sent" row reached its person exactly once, an "unknown" one at most once,
    # and nothing else reached anyone.
    expected: dict[str, collections.Counter] = {"sent": collections.Counter(), "unknown": collections.Counter()}
    for chat, payload, state in rows:
        expected[state][(int(chat), json.loads(payload)["text"])] += 1
    got = collections.Counter((chat, text) for chat, texts in delivered.items() for text in texts)
    assert not expected["sent"] - got, "a sent message did not arrive"
    assert not got - (expected["sent"] + expected["unknown"]), "a message arrived more often than it was sent"
    # Someone not thanked: their thank-you is a row the kill left unknown (sent at most once, never twice).
    for chat in unthanked:
        assert any(c == chat and "hoàn thành" in t for (c, t) in expected["unknown"]), chat


def test_the_process_section_is_checked_and_names_the_key(tmp_path):
    import pytest

    from bot.config import ConfigError, ProcessConfig, load_config

    path = tmp_path / "c.toml"
    path.write_text('[process]\nname = "bot-1"\nhealth = "127.0.0.1:8091"\nlog_format = "json"\n', encoding="utf-8")
    assert load_config(path).process == ProcessConfig(name="bot-1", health="127.0.0.1:8091", log_format="json")
    for line, key in (('health = "8091"', r"\[process\] health"), ('log_format = "xml"', r"\[process\] log_format"),
                      ('shared_chats = "yes"', r"\[process\] shared_chats"), ('name = "a b"', r"\[process\] name"),
                      ('port = 1', r"\[process\] port")):
        path.write_text(f"[process]\n{line}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            load_config(path)


def test_json_logs_are_one_object_per_line_with_the_process_name(capsys):
    import logging

    from bot import logs

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("json", "bot-7")
    try:
        logging.getLogger("khaosat.test").warning("chat %s: nothing sent twice", "42")
    finally:
        root.handlers[:], root.level = handlers, level
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["process"], line["pid"], line["level"], line["message"]) == (
        "bot-7", os.getpid(), "WARNING", "chat 42: nothing sent twice")
