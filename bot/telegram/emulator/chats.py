"""Bot API methods for callback queries, chats (actions, leaving) and the bot's command lists."""

from __future__ import annotations

import json
from typing import Any

from bot.telegram.emulator.model import _BOT_COMMAND, _CHAT_ACTIONS, _Params, _bad
from bot.telegram.emulator.bots import EmulatedBot
from bot.telegram.emulator.people import SimulatedGroup


class ChatMethods:
    """Mixin of :class:`BotApiEmulator` (its state is there)."""

    # --- everything else ------------------------------------------------------------------------

    async def _answer_callback_query(self, bot: EmulatedBot, p: _Params) -> bool:
        query_id = p.required("callback_query_id", p.text)
        text = p.text("text")
        if text is not None and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query = bot.take_callback_query(query_id, self.limits.callback_query_ttl)
        answer: dict[str, Any] = {"callback_query_id": query_id, "text": text,
                                  "show_alert": p.boolean("show_alert"), "url": p.text("url"),
                                  "cache_time": p.integer("cache_time")}
        query.user.callback_answers.append({k: v for k, v in answer.items() if v is not None})
        bot.stats.callback_answers += 1
        return True

    async def _leave_chat(self, bot: EmulatedBot, p: _Params) -> bool:
        chat = self._recipient(bot, p)
        if not isinstance(chat, SimulatedGroup):
            raise _bad("chat member status can't be changed in private chats")
        chat.bot_left()
        return True

    async def _send_chat_action(self, bot: EmulatedBot, p: _Params) -> bool:
        user = self._recipient(bot, p)
        action = p.required("action", p.text)
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        user.chat_actions.append(action)
        return True

    async def _set_my_commands(self, bot: EmulatedBot, p: _Params) -> bool:
        commands = p.json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND.fullmatch(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[_commands_key(p)] = commands
        return True

    async def _get_my_commands(self, bot: EmulatedBot, p: _Params) -> list[dict[str, Any]]:
        return bot.commands.get(_commands_key(p), [])

    async def _delete_my_commands(self, bot: EmulatedBot, p: _Params) -> bool:
        bot.commands.pop(_commands_key(p), None)
        return True


def _commands_key(p: _Params) -> tuple[str, str]:
    scope = p.json("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), p.text("language_code") or ""
