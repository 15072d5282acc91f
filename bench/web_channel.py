"""The web channel: bytes of HTML per question, and answers per second beside the Telegram channel.

    python bench/web_channel.py [--respondents N] [--runs 3] [--concurrency 64] [--db-dir DIR]

One stream of answers to the SIPAS example (``_harness.generate``: the engine run ahead of time,
so every choice, typed value and ``seq`` is what the bot will expect) goes through, alternating
in the same run:

  telegram   the real Telegram channel as ``bench/telegram_answers.py`` measures it (aiogram
             Dispatcher over a fresh SQLite file, replies queued in the outbox), in process, and
             with its callback answers over HTTP to the Bot API emulator in a child process;
  web        the real web pages (``bot/web``: aiohttp app, chat core, a fresh SQLite file) on
             127.0.0.1, driven by browsers simulated in a child process (so their work is not
             the server's): each answer is what a phone without JavaScript does — a form POST,
             the 303, the GET of the next page (two HTTP requests, the page fully rendered).

Before the clock starts, every respondent is linked (Telegram: /start; web: GET /s/<code>). The
web stream is the Telegram one regrouped into form posts: a multi-select's ticks and its "done"
are one post with the ticked boxes, so both channels store the same answers from the same events.
Each run checks that every session completed with exactly the generated answers.

Transfer size: the bytes of HTML of each page the browser receives after an answer (the next
question), and of the stylesheet (cached after the first page); no JavaScript is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import telegram_answers as tg  # noqa: E402

from bot.chat.core import ChatCore  # noqa: E402
from bot.chat.surveys import ChatSurveys  # noqa: E402
from bot.invitations import code_hash  # noqa: E402
from bot.run import load_forms, tune_garbage_collector  # noqa: E402
from bot.web.channel import GuessLimit, WebChannel  # noqa: E402
from bot.web.pages import make_web_app  # noqa: E402
from fieldwork.conversations import Conversations  # noqa: E402
from storage import open_storage  # noqa: E402
from surveys import codec, engine  # noqa: E402

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def web_posts(stream: h.Stream) -> list[list[list[tuple[str, str]]]]:
    """Each respondent's form posts (without the CSRF token), from the Telegram stream; the
    engine is run along to know the prompt number a typed answer belongs to."""
    at = h.now()
    everyone = []
    for person in stream.respondents:
        state = engine.step(stream.form, engine.new_session(stream.form), engine.Start(at=at)).state
        posts, ticked = [], []
        for action in person.actions:
            seq = state.seq
            if action.kind == "text":
                posts.append([("action", "answer"), ("seq", str(seq)), ("text", action.value)])
                event: engine.Event = engine.Reply(action.value, at)
            else:
                op, seq_text, key = action.value.split(":", 2)
                assert int(seq_text) == seq
                if op == "+":
                    ticked.append(key)
                    event = engine.Toggle(key, seq, at, on=True)
                elif op == "d":
                    posts.append([("action", "answer"), ("seq", str(seq)), ("multi", "1"), ("was", "")]
                                 + [("ticked", k) for k in ticked])
                    ticked = []
                    event = engine.Done(seq, at)
                else:
                    posts.append([("action", "answer"), ("seq", str(seq)), ("choice", key)])
                    event = engine.Choose(key, seq, at)
            state = engine.step(stream.form, state, event).state
        everyone.append(posts)
    return everyone


# -- the browsers, in a child process ----------------------------------------------------------------


def browsers(connection) -> None:
    """Simulated phones: commands from the pipe, answers back (runs in a child process)."""
    asyncio.run(_browsers(connection))


async def _browsers(connection) -> None:
    import aiohttp

    sessions: list = []
    csrf: list[str] = []
    connector = aiohttp.TCPConnector(limit=0)
    while True:
        command, *arguments = connection.recv()
        if command == "stop":
            break
        if command == "link":
            base, codes = arguments
            for session in sessions:
                await session.close()
            sessions = [aiohttp.ClientSession(connector=connector, connector_owner=False,
                                              cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in codes]
            csrf = []
            for session, code in zip(sessions, codes):
                async with session.get(f"{base}/s/{code}") as response:
                    csrf.append(_CSRF.search(await response.text()).group(1))
                async with session.get(f"{base}/s/static/web.css") as response:
                    css = len(await response.read())
            connection.send({"linked": len(codes), "css_bytes": css})
        elif command == "answer":
            base, posts, concurrency = arguments
            slots = asyncio.Semaphore(concurrency)
            sizes: list[int] = []
            errors: list[str] = []

            async def one(index: int) -> None:
                async with slots:
                    for fields in posts[index]:
                        async with sessions[index].post(f"{base}/s/", data=[("csrf_token", csrf[index])] + fields) as r:
                            body = await r.read()
                            if r.status != 200 or b'class="say error"' in body or b'class="say stale"' in body:
                                errors.append(f"{index}: {r.status} {body[:300]!r}")
                            sizes.append(len(body))

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(len(posts))))
            connection.send({"seconds": time.perf_counter() - started, "sizes": sizes, "errors": errors[:5],
                             "n_errors": len(errors)})
    for session in sessions:
        await session.close()
    await connector.close()


# -- the server, here ----------------------------------------------------------------------------------


class WebBench:
    """The web pages over one fresh SQLite file, every respondent invited."""

    def __init__(self, db_dir: Path, stream: h.Stream):
        self.db_dir, self.stream = db_dir, stream

    async def setup(self) -> str:
        from aiohttp import web

        self.path = Path(tempfile.mkdtemp(prefix="khaosat-web-bench-", dir=self.db_dir)) / "survey.sqlite"
        self.storage = await open_storage(self.path)
        conversations = Conversations(self.storage)
        at = h.now()
        forms = await load_forms(conversations, (h.SIPAS,), at)
        core = ChatCore(ChatSurveys(self.storage, conversations, forms), h.now)
        self.respondent_ids = []
        for index, _ in enumerate(self.stream.respondents):
            respondent = await self.storage.add_respondent(f"W-{index:06d}", form_id=forms[0].form_id,
                                                           stratum="xa-a", at=at.isoformat())
            await self.storage.issue_invitation(respondent.id, "link", code_hash(tg.link_code(index)), at.isoformat())
            self.respondent_ids.append(respondent.id)
        channel = WebChannel(core, GuessLimit(self.storage, 10**9, 10**9, h.now))
        self.runner = web.AppRunner(make_web_app(channel), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def verify(self) -> dict:
        problems, stored = [], 0
        for person, respondent_id in zip(self.stream.respondents, self.respondent_ids):
            session = await self.storage.latest_session(respondent_id, self.stream.form.form_id)
            if session is None or session.status != "completed":
                problems.append(f"respondent {respondent_id}: session {session and session.status}")
                continue
            answers = await self.storage.answers(session.id)
            for name, value in person.answers.items():
                if name not in answers or codec.decode_value(answers[name].value) != value:
                    problems.append(f"respondent {respondent_id}: {name} stored {answers.get(name)} expected {value!r}")
            stored += sum(1 for name in answers if name in person.answers)
        queued = (await self.storage.outbox_counts())["pending"]
        if queued:
            problems.append(f"outbox: {queued} messages queued by the web channel (expected none)")
        return {"ok": not problems, "problems": problems[:10], "answers_stored": stored}

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.storage.close()


async def run_web(stream: h.Stream, posts, pipe, args, run: int) -> dict:
    bench = WebBench(args.db_dir, stream)
    try:
        base = await bench.setup()
        codes = [tg.link_code(i) for i in range(len(stream.respondents))]
        pipe.send(("link", base, codes))
        linked = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        tune_garbage_collector()
        profiler = __import__("cProfile").Profile() if args.profile else None
        if profiler:
            profiler.enable()
        pipe.send(("answer", base, posts, args.concurrency))
        result = await _wait(pipe)
        if profiler:
            profiler.disable()
            import io
            import pstats
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
            (args.db_dir / "web.prof.txt").write_text(out.getvalue())
        check = await bench.verify()
        answers = sum(len(p) for p in posts)
        sizes = result["sizes"]
        return {"system": "khaosat web", "mode": "HTTP 127.0.0.1", "run": run, "seconds": round(result["seconds"], 3),
                "answers_per_s": round(answers / result["seconds"], 1), "n_errors": result["n_errors"],
                "errors": result["errors"], "page_bytes_median": statistics.median(sizes),
                "page_bytes_mean": round(statistics.fmean(sizes)), "page_bytes_max": max(sizes),
                "css_bytes": linked["css_bytes"], **check}
    finally:
        await bench.close()


async def _wait(pipe):
    """The child's answer, while this loop keeps serving its requests."""
    while not pipe.poll():
        await asyncio.sleep(0.01)
    return pipe.recv()


async def main(args) -> int:
    form = h.load_sipas()
    stream = h.generate(form, args.respondents)
    posts = web_posts(stream)
    print(f"stream: {args.respondents} respondents, {stream.answers} answers ({stream.updates} Telegram updates, "
          f"{sum(len(p) for p in posts)} web posts)", flush=True)
    args.db_dir.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=browsers, args=(child,), daemon=True)
    process.start()
    emulator = h.EmulatorProcess(**tg.FAST_LIMITS)
    tune_garbage_collector()
    results = []
    try:
        for run in range(1, args.runs + 1):
            # Alternating, so a slower moment of the machine falls on both channels.
            order = ("web", "telegram") if run % 2 else ("telegram", "web")
            for channel in order:
                if channel == "web":
                    rows = [await run_web(stream, posts, parent, args, run)]
                else:
                    rows = [await tg.run_khaosat(stream, mode, args, emulator, run) for mode in ("in-process", "emulator")]
                for row in rows:
                    row = {k: v for k, v in row.items() if k not in ("problems", "calls") or (k == "problems" and v)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        parent.send(("stop",))
        process.join(timeout=30)
        emulator.stop()
    summarise(results, stream, args)
    return 0 if all(r.get("ok", True) and not r.get("n_errors") for r in results) else 1


def summarise(results: list[dict], stream: h.Stream, args) -> None:
    print()
    print(f"machine: {platform.python_implementation()} {platform.python_version()}, "
          f"{__import__('os').cpu_count()} cores; {args.respondents} respondents, {stream.answers} answers, "
          f"concurrency {args.concurrency}, median of {args.runs} runs")
    medians = {}
    for key in dict.fromkeys((r["system"], r["mode"]) for r in results):
        rows = [r for r in results if (r["system"], r["mode"]) == key]
        medians[key] = statistics.median(r["answers_per_s"] for r in rows)
        ok = all(r.get("ok", True) and not r.get("n_errors") for r in rows)
        print(f"{key[0]:<14} {key[1]:<15} {medians[key]:>8.0f} answers/s  {'ok' if ok else 'NOT OK'}")
    web_rows = [r for r in results if r["system"] == "khaosat web"]
    if web_rows:
        print(f"web page per question: median {statistics.median(r['page_bytes_median'] for r in web_rows):.0f} B, "
              f"mean {statistics.median(r['page_bytes_mean'] for r in web_rows):.0f} B, "
              f"max {max(r['page_bytes_max'] for r in web_rows)} B of HTML; stylesheet {web_rows[0]['css_bytes']} B "
              "(once, cached); no script needed")
        web = medians[("khaosat web", "HTTP 127.0.0.1")]
        for mode in ("in-process", "emulator"):
            if ("khaosat", mode) in medians:
                print(f"ratio web / telegram ({mode}): {web / medians[('khaosat', mode)]:.2f}")


def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--respondents", type=int, default=200)
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="the web runs under cProfile (DB_DIR/web.prof.txt)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
