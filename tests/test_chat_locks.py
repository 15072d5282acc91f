"""One lock per chat: a chat's updates in order, different chats at once, no lock kept idle."""

from __future__ import annotations

import asyncio

from bot.chat.surveys import ChatLocks


async def test_a_chat_waits_for_its_own_updates_only_and_idle_locks_are_dropped():
    locks = ChatLocks()
    trace: list[tuple[str, int, str]] = []

    async def update(chat: str, n: int, seconds: float) -> None:
        async with locks[chat]:
            trace.append((chat, n, "in"))
            await asyncio.sleep(seconds)
            trace.append((chat, n, "out"))

    await asyncio.gather(update("a", 1, 0.05), update("a", 2, 0), update("b", 1, 0))
    assert trace.index(("a", 1, "out")) < trace.index(("a", 2, "in"))  # in order within a chat
    assert trace.index(("b", 1, "out")) < trace.index(("a", 1, "out"))  # b did not wait for a
    assert len(locks) == 0  # nobody holds or awaits a lock: none is kept

    held = locks["c"]
    async with held:
        assert locks["c"] is held and len(locks) == 1
