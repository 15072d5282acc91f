"""The Telegram channel on aiogram 3: updates parsed into the chat core's events.

Nothing is sent from here except the answer to a callback query (which must come within
seconds and is no message); everything else is rendered by ``bot/telegram/render.py`` and goes
through the durable outbox, queued in the same transaction as the answer it replies to.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command as CommandFilter, CommandObject
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, Update
from aiogram.types import Chat as TelegramChat

from bot.chat.core import ChatCore
from bot.chat.events import Blocked, Command, Contact, Incoming, Joined, Location, Media, typed
from bot.chat.surveys import Chat, ChatSurveys
from bot.telegram.render import Pressed, TelegramRenderer, parse_button

CHANNEL = "telegram"
COMMANDS = ("start", "help", "privacy", "lang", "resume", "stop", "back", "progress", "export")


class TelegramSurveyBot:
    def __init__(self, name: str, surveys: ChatSurveys, clock: Callable[[], dt.datetime], *,
                 core: ChatCore | None = None):
        self.name = name
        self.core = core or ChatCore(surveys, clock)
        self.renderer = TelegramRenderer()

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
        router.message.register(self.on_command, CommandFilter(*COMMANDS))
        router.message.register(self.on_message)
        router.callback_query.register(self.on_press)
        router.my_chat_member.register(self.on_membership)
        return router

    def _key(self, update: Update) -> str:
        return f"tg:{self.name}:{update.update_id}"

    def _chat(self, chat: TelegramChat, user_id: int | None) -> Chat:
        return Chat(CHANNEL, self.name, str(chat.id), str(user_id if user_id is not None else chat.id),
                    private=chat.type == "private")

    async def _handle(self, message: Message, update: Update, incoming: Incoming) -> None:
        chat = self._chat(message.chat, message.from_user.id if message.from_user else None)
        await self.core.handle(chat, self._key(update), incoming, self.renderer)

    async def on_command(self, message: Message, command: CommandObject, event_update: Update) -> None:
        await self._handle(message, event_update, Command(command.command.lower(), command.args or ""))

    async def on_message(self, message: Message, event_update: Update, bot: Bot) -> None:
        media = media_of(message, bot)
        if media is not None:
            incoming: Incoming = media
        elif message.contact is not None:
            own = message.from_user is not None and message.contact.user_id == message.from_user.id
            incoming = Contact(message.contact.phone_number, own)
        elif message.location is not None:
            incoming = Location(message.location.latitude, message.location.longitude,
                                message.location.horizontal_accuracy)
        else:
            incoming = typed(message.text or "")
        await self._handle(message, event_update, incoming)

    async def on_press(self, callback: CallbackQuery, event_update: Update) -> None:
        press = parse_button(callback.data)
        message = callback.message if isinstance(callback.message, Message) else None
        if press is None or message is None:
            await callback.answer()
            return
        markup = message.reply_markup.model_dump(exclude_none=True) if message.reply_markup else None
        pressed = Pressed(message.message_id, markup, callback.data or "")
        notice = await self.core.handle(self._chat(message.chat, callback.from_user.id), self._key(event_update),
                                        press, self.renderer, pressed)
        await callback.answer(notice or None)

    async def on_membership(self, change: ChatMemberUpdated, event_update: Update) -> None:
        """The bot's own membership: blocked by a person (kicked from a private chat), or added to a
        group or channel (which it leaves: see ``ChatCore``)."""
        status = change.new_chat_member.status
        incoming = Blocked() if status == "kicked" else Joined() if status in ("member", "administrator") else None
        if incoming is not None:
            await self.core.handle(self._chat(change.chat, change.from_user.id), self._key(event_update),
                                   incoming, self.renderer)


def media_of(message: Message, bot: Bot) -> Media | None:
    """A photo (its largest size), voice note, audio, video, round video or document, as the chat
    core's `Media`; its bytes are fetched only if the core asks (getFile, then the file's URL)."""
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.file_size or 0, size.width * size.height))
        return Media("photo", "image/jpeg", largest.file_size, None, _fetcher(bot, largest.file_id))
    for kind, mime in (("voice", "audio/ogg"), ("audio", "audio/mpeg"), ("video", "video/mp4"),
                       ("video_note", "video/mp4"), ("document", "application/octet-stream")):
        item = getattr(message, kind, None)
        if item is not None:
            return Media("video" if kind == "video_note" else kind, getattr(item, "mime_type", None) or mime,
                         item.file_size, getattr(item, "file_name", None), _fetcher(bot, item.file_id))
    return None


def _fetcher(bot: Bot, file_id: str):
    async def fetch() -> bytes:
        found = await bot.get_file(file_id)
        if not found.file_path:
            raise ValueError(f"Telegram gave no path for file {file_id}")
        downloaded = await bot.download_file(found.file_path)
        return downloaded.read()
    return fetch
