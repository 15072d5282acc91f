"""The console channel: a questionnaire in the terminal, through the same engine and storage.

Typed lines become engine events: `<` goes back, `/stop` pauses, `/refuse` declines,
`/lang en` switches language; everything else is a reply to the prompt on screen. End of
input pauses the session, so the next run resumes where this one stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import mimetypes
import uuid
from pathlib import Path
from typing import Callable, Mapping

from rich.console import Console

from bot.chat.media import DEFAULT_MEDIA_LIMIT, MEDIA_PROMPTS, stored_name
from bot.text import render
from fieldwork.conversations import Conversations
from surveys import codec, engine
from surveys.engine import Ask, Say, Status, Tone
from surveys.messages import say, ui_language
from surveys.model import Questionnaire

CHANNEL = "console"
_STYLES = {Tone.ERROR: "bold red", Tone.STALE: "yellow", Tone.NOTE: "italic", Tone.THANKS: "bold green",
           Tone.INFO: "cyan"}


class ConsoleChannel:
    def __init__(self, conversations: Conversations, console: Console,
                 read_line: Callable[[Ask | None], str | None], clock: Callable[[], dt.datetime],
                 *, echo_input: bool = False, show_names: bool = True):
        self.conversations = conversations
        self.console = console
        self.read_line = read_line
        self.clock = clock
        self.echo_input = echo_input
        self.show_names = show_names
        self.last_prompt: Ask | None = None

    async def take(self, form: Questionnaire, external_id: str, language: str | None = None,
                   preloads: Mapping[str, str] | None = None) -> Status:
        """Run one respondent's session until it completes, is refused, or input ends."""
        session, _ = await self.conversations.open(external_id, form, CHANNEL, language, self.clock(), preloads)
        state = codec.decode_state(session.state)
        if language and language != state.language:
            state = await self._send(session.id, engine.SetLanguage(language, self.clock()), state)
        first = engine.Start if state.status is Status.NEW else engine.Resume
        state = await self._send(session.id, first(at=self.clock()), state)
        while state.status not in (Status.COMPLETED, Status.REFUSED):
            line = self.read_line(self.last_prompt)
            if line is None:
                state = await self._send(session.id, engine.Stop(at=self.clock()), state)
                break
            if self.echo_input:
                self.console.print(f"› {line}", style="dim", markup=False, highlight=False)
            key = f"{CHANNEL}:{uuid.uuid4().hex}"
            event = await self._attach(session.id, line, key, state) or self._event(line, state)
            state = await self._send(session.id, event, state, key)
        return state.status

    def _event(self, line: str, state: engine.SessionState) -> engine.Event:
        at = self.clock()
        text = line.strip()
        if text == "<":
            return engine.Back(at=at, seq=state.seq)
        if text == "/stop":
            return engine.Stop(at=at)
        if text == "/refuse":
            return engine.Stop(at=at, refuse=True)
        if text.startswith("/lang"):
            return engine.SetLanguage(text.removeprefix("/lang").strip(), at=at)
        return engine.Reply(line.rstrip("\r\n"), at=at, seq=state.seq)

    async def _attach(self, session_id: int, line: str, key: str, state: engine.SessionState) -> engine.Event | None:
        """On a media question, a typed path names the file to send: it is read, stored as a chat's
        file is (`storage/media.py`), and attached. None: not a media question, or no such file
        (then the typed text goes to the engine, which asks for a file again)."""
        prompt, text = self.last_prompt, line.strip()
        if prompt is None or prompt.kind not in MEDIA_PROMPTS or not text or text in ("<", "/stop", "/refuse") \
                or text.startswith("/lang"):
            return None
        path = Path(text.strip("'\"")).expanduser()
        try:
            if path.stat().st_size > DEFAULT_MEDIA_LIMIT:
                self.console.print(say("media_too_big", ui_language(state.language),
                                       limit=DEFAULT_MEDIA_LIMIT // 1024 // 1024), style="bold red", markup=False)
                return None
            content = path.read_bytes()
        except OSError as error:
            self.console.print(f"✗ {path}: {error.strerror or error}", style="bold red", markup=False,
                               highlight=False)
            return None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        digest = hashlib.sha256(content).hexdigest()
        kept = await self.conversations.storage.media.store_media(
            session_id, prompt.question, stored_name(prompt.question, digest, mime, path.name), mime, content, digest,
            key, self.clock().isoformat())
        return engine.Attach(kept.name, kept.mime, kept.size, self.clock(), seq=state.seq)

    async def _send(self, session_id: int, event: engine.Event, state: engine.SessionState,
                    key: str | None = None) -> engine.SessionState:
        handled = await self.conversations.handle(session_id, event, key or f"{CHANNEL}:{uuid.uuid4().hex}")
        new_state = handled.step.state
        for output in handled.step.say:
            self._show(output, new_state.language)
        return new_state

    def _show(self, output: engine.Output, language: str) -> None:
        if isinstance(output, Ask) and output.kind in MEDIA_PROMPTS:  # a terminal sends a file by its path
            output = dataclasses.replace(output, expected=say("console_file_path", ui_language(language),
                                                              expected=output.expected))
        text = render(output, language, show_names=self.show_names)
        if isinstance(output, Ask):
            self.last_prompt = output
            if output.can_go_back:
                text += "\n" + say("back_hint", ui_language(language))
            self.console.print(text, markup=False, highlight=False)
        elif isinstance(output, Say):
            self.console.print(text, style=_STYLES.get(output.tone), markup=False, highlight=False)
        self.console.file.flush()
