"""The simulated people's side: a person in a private chat with a bot, and a group chat."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.emulation import Inbox
from bot.telegram.emulator.model import ReceivedMessage

if TYPE_CHECKING:
    from bot.telegram.emulator.bots import EmulatedBot


class SimulatedUser:
    """A person in a private chat with one bot (chat id == user id)."""

    def __init__(self, bot: EmulatedBot, user_id: int, first_name: str, language_code: str,
                 username: str | None) -> None:
        self.bot = bot
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.received: list[ReceivedMessage] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.chat_actions: list[str] = []
        self.blocked = False
        self.started = False  # a bot cannot write first: the person must message it once
        self.reply_keyboard: dict[str, Any] | None = None
        self.chat_instance = str(random.Random(f"{bot.id}:{user_id}").getrandbits(62))
        self._message_ids = itertools.count(1)
        self._own_message_ids: set[int] = set()
        self._inbox: Inbox[tuple[str, ReceivedMessage]] = Inbox()  # ("new" | "edit", message)

    @property
    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name,
                                "language_code": self.language_code}
        if self.username:
            user["username"] = self.username
        return user

    @property
    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            chat["username"] = self.username
        return chat

    async def start(self, payload: str | None = None) -> int:
        """Open the chat (``/start`` or a deep link's ``/start payload``); unblocks a blocked bot."""
        self.unblock()
        return self._send({"text": "/start" if payload is None else f"/start {payload}"})

    async def send_text(self, text: str) -> int:
        return self._send({"text": text})

    async def share_contact(self, phone: str) -> int:
        """Share this person's own phone number, as the request_contact button does."""
        return self._send({"contact": {"phone_number": phone, "first_name": self.first_name,
                                       "user_id": self.id}})

    async def share_location(self, latitude: float, longitude: float, accuracy: float | None = None) -> int:
        """Send a location, as the request_location button or the attachment menu does."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if accuracy is not None:
            location["horizontal_accuracy"] = accuracy
        return self._send({"location": location})

    async def send_photo(self, data: bytes, caption: str | None = None) -> int:
        """Send a photo from the attachment menu: Telegram gives the bot several sizes (a small
        thumbnail first, the largest last); here a thumbnail of the first bytes and the file itself."""
        small = self.bot.keep_user_file("photo", data[: max(1, len(data) // 8)], ".jpg")
        large = self.bot.keep_user_file("photo", data, ".jpg")
        sizes = [{**small, "width": 90, "height": 90, "file_size": max(1, len(data) // 8)},
                 {**large, "width": 1280, "height": 960, "file_size": len(data)}]
        return self._send({"photo": sizes, **({"caption": caption} if caption else {})})

    async def send_voice(self, data: bytes, duration: int = 3) -> int:
        """Record and send a voice note (Telegram's are OGG/Opus)."""
        voice = {**self.bot.keep_user_file("voice", data, ".oga"), "duration": duration, "mime_type": "audio/ogg",
                 "file_size": len(data)}
        return self._send({"voice": voice})

    async def send_document(self, data: bytes, file_name: str, mime_type: str, *, declared_size: int | None = None
                            ) -> int:
        """Send a file from the attachment menu; `declared_size`: the size Telegram says (a too-big file)."""
        extension = "." + file_name.rsplit(".", 1)[1] if "." in file_name else ""
        document = {**self.bot.keep_user_file("document", data, extension), "file_name": file_name,
                    "mime_type": mime_type, "file_size": declared_size if declared_size is not None else len(data)}
        return self._send({"document": document})

    async def send_video(self, data: bytes, duration: int = 2) -> int:
        video = {**self.bot.keep_user_file("video", data, ".mp4"), "width": 640, "height": 480,
                 "duration": duration, "mime_type": "video/mp4", "file_size": len(data)}
        return self._send({"video": video})

    async def press(self, button: str, message: ReceivedMessage | None = None) -> int:
        """Press an inline button (by label or callback_data); old messages' buttons work too."""
        message = message or self._latest_with_keyboard()
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        pressed = next((b for row in message.inline_keyboard for b in row
                        if button in (b.get("text"), b.get("callback_data"))), None)
        if pressed is None:
            raise LookupError(f"no button {button!r} on message {message.message_id}; "
                              f"buttons: {self.inline_buttons(message)}")
        if "callback_data" not in pressed:
            raise ValueError(f"button {button!r} has no callback_data")
        self._ensure_not_blocked()
        query_id = self.bot.register_callback_query(self)
        return self.bot.push_update("callback_query", {
            "id": query_id, "from": self.as_user, "message": self.bot.message_json(message),
            "chat_instance": self.chat_instance, "data": pressed["callback_data"],
        })

    def block(self) -> None:
        """Block the bot: sends to this chat now fail with 403, and the bot is told."""
        if not self.blocked:
            self.blocked = True
            self._push_membership("member", "kicked")

    def unblock(self) -> None:
        if self.blocked:
            self.blocked = False
            self._push_membership("kicked", "member")

    def inline_buttons(self, message: ReceivedMessage | None = None) -> list[tuple[str, str]]:
        """(label, callback_data) of the given message's or the latest inline keyboard."""
        message = message or self._latest_with_keyboard()
        return [(b["text"], b["callback_data"]) for row in message.inline_keyboard for b in row
                if "callback_data" in b]

    async def wait_for(self, predicate: Callable[[ReceivedMessage], bool] | None = None,
                       timeout: float = 10) -> ReceivedMessage:
        """The next message event (new, or an edit) that satisfies ``predicate``.

        Events are consumed in order from where the previous ``wait_for`` stopped, so a reply
        that arrived before the call is not missed; ``predicate=None`` takes the next new message.
        """
        _, message = await self._inbox.wait_for(
            lambda event: predicate(event[1]) if predicate else event[0] == "new", timeout, self.id,
            lambda: [m.text or m.caption for m in self.received[-3:]])
        return message

    def deliver(self, message: ReceivedMessage) -> None:
        """Called by the emulator when the bot sends a message to this chat."""
        self.received.append(message)
        self._record("new", message)

    def edited(self, message: ReceivedMessage) -> None:
        self._record("edit", message)

    def new_message_id(self) -> int:
        """Message ids count per chat, shared by both sides, as in Telegram private chats."""
        return next(self._message_ids)

    def owns_message(self, message_id: int) -> bool:
        return message_id in self._own_message_ids

    def find_received(self, message_id: int) -> ReceivedMessage | None:
        return next((m for m in self.received if m.message_id == message_id and not m.deleted), None)

    def _record(self, kind: str, message: ReceivedMessage) -> None:
        self._inbox.record((kind, message))

    def _send(self, content: dict[str, Any]) -> int:
        self._ensure_not_blocked()
        self.started = True
        message_id = self.new_message_id()
        self._own_message_ids.add(message_id)
        message = {"message_id": message_id, "from": self.as_user, "chat": self.as_chat,
                   "date": int(time.time()), **content}
        text = content.get("text", "")
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self.bot.push_update("message", message)

    def _push_membership(self, old_status: str, new_status: str) -> None:
        def member(status: str) -> dict[str, Any]:
            member = {"status": status, "user": self.bot.as_user}
            if status == "kicked":
                member["until_date"] = 0  # 0 = banned forever, i.e. blocked until unblocked
            return member

        self.bot.push_update("my_chat_member", {
            "chat": self.as_chat, "from": self.as_user, "date": int(time.time()),
            "old_chat_member": member(old_status), "new_chat_member": member(new_status),
        })

    def _ensure_not_blocked(self) -> None:
        if self.blocked:
            raise RuntimeError(f"user {self.id} blocked the bot; call start() or unblock() first")

    def _latest_with_keyboard(self) -> ReceivedMessage:
        for message in reversed(self.received):
            if message.inline_keyboard and not message.deleted:
                return message
        raise LookupError(f"user {self.id} has no message with an inline keyboard")


class SimulatedGroup(SimulatedUser):
    """A group, supergroup or channel the bot can be added to: what the bot sends there lands in
    ``received`` (as in a private chat), and members write to it with :meth:`say`.

    Telegram tells the bot it was added or removed with a ``my_chat_member`` update; ``leaveChat``
    takes it out again, after which sends to the chat fail with 403 and members' messages no
    longer reach it.
    """

    def __init__(self, bot: EmulatedBot, chat_id: int, title: str, kind: str) -> None:
        if kind not in ("group", "supergroup", "channel"):
            raise ValueError(f"a group chat is a group, a supergroup or a channel, not {kind!r}")
        super().__init__(bot, chat_id, title, "vi", None)
        self.title = title
        self.kind = kind
        self.started = True  # the bot may write in a group it was added to
        self.bot_present = False

    @property
    def as_chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind, "title": self.title}

    def add_bot(self, by: SimulatedUser) -> int:
        """``by`` adds the bot (as an administrator to a channel, as a member elsewhere)."""
        self.bot_present = True
        return self._push_bot_membership(by.as_user, "left", "administrator" if self.kind == "channel" else "member")

    def bot_left(self) -> None:
        """Called by the emulator when the bot calls leaveChat."""
        status = "administrator" if self.kind == "channel" else "member"
        self.bot_present = False
        self._push_bot_membership(self.bot.as_user, status, "left")

    async def say(self, member: SimulatedUser, text: str) -> int:
        """``member`` writes ``text`` in the group (commands as typed, e.g. ``/start CODE``)."""
        if self.kind == "channel":
            raise ValueError("members do not write in a channel")
        if not self.bot_present:
            raise RuntimeError(f"the bot is not in group {self.id}: add_bot() first")
        message_id = self.new_message_id()
        message = {"message_id": message_id, "from": member.as_user, "chat": self.as_chat,
                   "date": int(time.time()), "text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self.bot.push_update("message", message)

    def _push_bot_membership(self, sender: dict[str, Any], old_status: str, new_status: str) -> int:
        def member(status: str) -> dict[str, Any]:
            member: dict[str, Any] = {"status": status, "user": self.bot.as_user}
            if status == "administrator":
                member.update(dict.fromkeys(_ADMIN_RIGHTS, False), can_manage_chat=True, can_post_messages=True)
            return member

        return self.bot.push_update("my_chat_member", {
            "chat": self.as_chat, "from": sender, "date": int(time.time()),
            "old_chat_member": member(old_status), "new_chat_member": member(new_status),
        })


#: ChatMemberAdministrator's required rights (api.json), and can_send_welcome_messages, which the
#: installed aiogram requires too.
_ADMIN_RIGHTS = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                 "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                 "can_post_stories", "can_edit_stories", "can_delete_stories", "can_send_welcome_messages")


def _utf16_len(text: str) -> int:
    """Entity offsets and lengths are measured in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
