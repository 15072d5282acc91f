"""The Telegram channel on aiogram 3: updates in, queued Bot API calls out.

Handlers stay thin: they find out which chat and which person, turn the update into an engine
event and render the engine's answer. Nothing is sent from here except the answer to a
callback query (which must come within seconds and is no message); everything else goes
through the durable outbox, queued in the same transaction as the answer it replies to.
"""

from __future__ import annotations

import datetime as dt
from typing import Awaitable, Callable

from aiogram import Dispatcher, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, Update

from bot.chats import LINK_MESSAGES, Call, Chat, ChatLocks, ChatSurveys, Link
from bot.invitations import PhoneError, is_link_code, is_typed_code, normalise_phone, normalise_typed_code
from bot.telegram.render import (
    BACK,
    CHOOSE,
    CONFIRM_STOP,
    DONE,
    SKIP,
    TICK,
    TOGGLE,
    UNTICK,
    button_data,
    parse_button,
    render_outputs,
)
from storage import Respondent, SessionRecord
from surveys import engine
from surveys.messages import say, ui_language

CHANNEL = "telegram"

#: Coordinator commands: given the chat, return the calls that answer them.
CoordinatorCommand = Callable[[Chat, str], Awaitable[list[Call]]]


# Filters are coroutines on purpose: aiogram runs a synchronous filter (a magic ``F`` one
# included) in a worker thread, a thread hop for every message.
async def _has_contact(message: Message) -> bool:
    return message.contact is not None


async def _has_text(message: Message) -> bool:
    return message.text is not None


class TelegramSurveyBot:
    def __init__(self, name: str, surveys: ChatSurveys, clock: Callable[[], dt.datetime], *,
                 coordinators: tuple[int, ...] = (), coordinator_commands: dict[str, CoordinatorCommand] | None = None):
        self.name = name
        self.surveys = surveys
        self.clock = clock
        self.coordinators = set(coordinators)
        self.coordinator_commands = coordinator_commands or {}
        self._locks = ChatLocks()

    def dispatcher(self) -> Dispatcher:
        """The aiogram dispatcher that runs this bot.

        Sessions live in khaosat's storage, so aiogram's FSM is off: its middleware would
        otherwise build a state context for every update that nothing reads.
        """
        dispatcher = Dispatcher(disable_fsm=True, name=f"khaosat-{self.name}")
        self.register(dispatcher)
        return dispatcher

    def register(self, router: Router) -> Router:
        """Put this bot's handlers on ``router``; the dispatcher itself, so an update is routed
        through one router instead of two (each level wraps its middlewares again)."""
        router.message.register(self.on_start, CommandStart())
        router.message.register(self.on_command, Command("help", "privacy", "lang", "resume", "stop",
                                                         *self.coordinator_commands))
        router.message.register(self.on_contact, _has_contact)
        router.message.register(self.on_text, _has_text)
        router.message.register(self.on_other)
        router.callback_query.register(self.on_press)
        router.my_chat_member.register(self.on_membership)
        return router

    # -- helpers -----------------------------------------------------------------------------------

    def _chat(self, message: Message) -> Chat:
        user = message.from_user.id if message.from_user else message.chat.id
        return Chat(CHANNEL, self.name, str(message.chat.id), str(user))

    def _key(self, update: Update) -> str:
        return f"tg:{self.name}:{update.update_id}"

    async def _language(self, chat: Chat, respondent: Respondent | None) -> str:
        if respondent is None:
            return "vi"
        state = await self.surveys.state(chat, respondent, self.clock())
        return ui_language(state.language) if state else "vi"

    async def _say(self, chat: Chat, key: str, text: str, markup: dict | None = None,
                   respondent: Respondent | None = None) -> None:
        payload = {"chat_id": int(chat.chat_id), "text": text}
        if markup is not None:
            payload["reply_markup"] = markup
        await self.surveys.send(chat, [Call("sendMessage", payload)], key, self.clock(),
                                respondent.id if respondent else None)

    async def _drive(self, chat: Chat, respondent: Respondent, event: engine.Event, key: str,
                     pressed_message_id: int | None = None, session: SessionRecord | None = None) -> str | None:
        """Run the event; returns the notice for a pressed button, if any."""
        notice: str | None = None

        def render(step: engine.Step) -> list[Call]:
            nonlocal notice
            calls, notice = render_outputs(step.say, int(chat.chat_id), step.state.language, pressed_message_id)
            return calls

        handled = await self.surveys.drive(chat, respondent, event, key, render, session)
        if handled is None:
            await self._say(chat, f"{key}:none", say("no_survey", "vi"), respondent=respondent)
        return notice

    async def _welcome(self, chat: Chat, key: str, language: str = "vi") -> None:
        contact = {"keyboard": [[{"text": say("share_phone", language), "request_contact": True}]],
                   "resize_keyboard": True, "one_time_keyboard": True}
        await self._say(chat, f"{key}:welcome", say("welcome_unlinked", language), contact)

    # -- linking -----------------------------------------------------------------------------------

    async def _link_code(self, chat: Chat, code: str, key: str) -> Respondent | None:
        kind = "link" if is_link_code(code) else "typed"
        normalised = code if kind == "link" else normalise_typed_code(code)
        outcome, respondent = await self.surveys.link_code(chat, normalised, kind, key, self.clock())
        return await self._after_link(chat, outcome, respondent, key)

    async def _after_link(self, chat: Chat, outcome: Link, respondent: Respondent | None, key: str,
                          remove_keyboard: bool = False) -> Respondent | None:
        if outcome is Link.LINKED:
            markup = {"remove_keyboard": True} if remove_keyboard else None
            await self._say(chat, f"{key}:linked", say(LINK_MESSAGES[outcome], "vi"), markup, respondent)
        elif outcome is not Link.ALREADY:
            await self._say(chat, f"{key}:refused", say(LINK_MESSAGES[outcome], "vi"),
                            {"remove_keyboard": True} if remove_keyboard else None)
        return respondent

    # -- handlers ----------------------------------------------------------------------------------

    async def on_start(self, message: Message, command: CommandObject, event_update: Update) -> None:
        chat, key = self._chat(message), self._key(event_update)
        async with self._locks[chat.chat_id]:
            payload = (command.args or "").strip()
            respondent = await self.surveys.respondent(chat)
            if payload and payload in self.surveys.open_codes:
                respondent = await self.surveys.open_respondent(chat, payload, key, self.clock())
                if respondent is not None and await self.surveys.already_answered(respondent):
                    await self._say(chat, f"{key}:done", say("open_already_answered", "vi"), respondent=respondent)
                    return
            elif payload and (is_link_code(payload) or is_typed_code(payload)):
                respondent = await self._link_code(chat, payload, key)
            elif payload:
                await self.surveys.link_code(chat, payload, "link", key, self.clock())  # logged as a wrong code
                await self._say(chat, f"{key}:refused", say("code_invalid", "vi"))
                return
            if respondent is None:
                await self._welcome(chat, key)
                return
            await self._drive(chat, respondent, engine.Start(at=self.clock()), key)

    async def on_contact(self, message: Message, event_update: Update) -> None:
        chat, key = self._chat(message), self._key(event_update)
        async with self._locks[chat.chat_id]:
            contact = message.contact
            if message.from_user is None or contact.user_id != message.from_user.id:
                await self._say(chat, f"{key}:refused", say("contact_not_own", "vi"))
                return
            try:
                phone = normalise_phone(contact.phone_number)
            except PhoneError:
                await self._say(chat, f"{key}:refused", say("phone_not_found", "vi"), {"remove_keyboard": True})
                return
            outcome, respondent = await self.surveys.link_phone(chat, phone, key, self.clock())
            respondent = await self._after_link(chat, outcome, respondent, key, remove_keyboard=True)
            if respondent is not None:
                await self._drive(chat, respondent, engine.Start(at=self.clock()), key)

    async def on_text(self, message: Message, event_update: Update) -> None:
        chat, key = self._chat(message), self._key(event_update)
        async with self._locks[chat.chat_id]:
            respondent, session = await self.surveys.linked(chat)
            text = message.text or ""
            if respondent is None:
                if is_typed_code(text) or is_link_code(text.strip()):
                    respondent = await self._link_code(chat, text.strip(), key)
                    if respondent is not None:
                        await self._drive(chat, respondent, engine.Start(at=self.clock()), key)
                    return
                await self._welcome(chat, key)
                return
            if text.startswith("/"):
                await self._say(chat, key, say("unknown_command", await self._language(chat, respondent)))
                return
            await self._drive(chat, respondent, engine.Reply(text, at=self.clock()), key, session=session)

    async def on_other(self, message: Message, event_update: Update) -> None:
        chat, key = self._chat(message), self._key(event_update)
        respondent = await self.surveys.respondent(chat)
        await self._say(chat, key, say("not_text", await self._language(chat, respondent)))

    async def on_command(self, message: Message, command: CommandObject, event_update: Update) -> None:
        chat, key = self._chat(message), self._key(event_update)
        name = command.command.lower()
        async with self._locks[chat.chat_id]:
            user = message.from_user.id if message.from_user else None
            if name in self.coordinator_commands and user in self.coordinators:
                calls = await self.coordinator_commands[name](chat, key)
                await self.surveys.send(chat, calls, key, self.clock())
                return
            respondent = await self.surveys.respondent(chat)
            language = await self._language(chat, respondent)
            if name in ("help", "privacy"):
                await self._say(chat, key, say(name, language))
                return
            if respondent is None:
                await self._welcome(chat, key, language)
                return
            at = self.clock()
            if name == "lang":
                await self._drive(chat, respondent, engine.SetLanguage((command.args or "").strip().lower(), at), key)
            elif name == "resume":
                await self._drive(chat, respondent, engine.Resume(at=at), key)
            elif name == "stop":
                buttons = [[{"text": say("stop_yes", language), "callback_data": button_data(CONFIRM_STOP, 0, "yes")},
                            {"text": say("stop_no", language), "callback_data": button_data(CONFIRM_STOP, 0, "no")}]]
                await self._say(chat, key, say("stop_confirm", language), {"inline_keyboard": buttons}, respondent)
            else:
                await self._say(chat, key, say("unknown_command", language))

    async def on_membership(self, change: ChatMemberUpdated, event_update: Update) -> None:
        """A person who blocks the bot is unreachable now, before any reminder bounces."""
        if change.new_chat_member.status != "kicked":
            return
        chat = Chat(CHANNEL, self.name, str(change.chat.id), str(change.from_user.id))
        respondent = await self.surveys.respondent(chat)
        if respondent is not None and respondent.disposition not in ("completed", "refused"):
            await self.surveys.storage.set_disposition(respondent.id, "unreachable", self.clock().isoformat(),
                                                       reason="telegram: bot blocked", key=self._key(event_update))

    async def on_press(self, callback: CallbackQuery, event_update: Update) -> None:
        key = self._key(event_update)
        press = parse_button(callback.data)
        message = callback.message if isinstance(callback.message, Message) else None
        if press is None or message is None:
            await callback.answer()
            return
        chat = Chat(CHANNEL, self.name, str(message.chat.id), str(callback.from_user.id))
        async with self._locks[chat.chat_id]:
            respondent, session = await self.surveys.linked(chat)
            if respondent is None:
                await callback.answer(say("welcome_unlinked", "vi")[:200])
                return
            at = self.clock()
            events = {
                CHOOSE: lambda: engine.Choose(press.key, press.seq, at),
                TOGGLE: lambda: engine.Toggle(press.key, press.seq, at),
                TICK: lambda: engine.Toggle(press.key, press.seq, at, on=True),
                UNTICK: lambda: engine.Toggle(press.key, press.seq, at, on=False),
                DONE: lambda: engine.Done(press.seq, at),
                BACK: lambda: engine.Back(at, press.seq),
                SKIP: lambda: engine.Reply("", at, press.seq),
                CONFIRM_STOP: lambda: engine.Stop(at, refuse=True) if press.key == "yes" else engine.Resume(at),
            }
            if press.op not in events:
                await callback.answer()
                return
            notice = await self._drive(chat, respondent, events[press.op](), key, message.message_id, session)
        await callback.answer(notice or None)
