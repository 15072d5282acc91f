"""The media files aggregate on real SQLite and PostgreSQL: a file is kept once per session,
question and content (a re-delivered update stores nothing new), sealed with the data key when
one is set, and deleted by an erasure and by the retention purge."""

from __future__ import annotations

import hashlib

import pytest

from storage import open_storage
from storage.personal_crypto import ENV, generate_key
from tests.test_storage import T0, T1, new_session

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def test_a_file_is_kept_once_and_read_back_with_its_bytes(database) -> None:
    digest = hashlib.sha256(PNG).hexdigest()
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        kept = await storage.media.store_media(session.id, "household[2]/photo", "photo.png", "image/png", PNG,
                                               digest, "tg:7", T0)
        again = await storage.media.store_media(session.id, "household[2]/photo", "other.png", "image/png", PNG,
                                                digest, "tg:8", T1)
        assert again == kept and kept.size == len(PNG) and kept.name == "photo.png"
        assert (await storage.media.media_of_event(session.id, "tg:7")) == kept
        assert await storage.media.media_of_event(session.id, "tg:8") is None
        (read,) = await storage.media.media_files([session.id])
        assert read.content == PNG and read.question == "household[2]/photo" and read.mime == "image/png"
        (listed,) = await storage.media.media_files([session.id], content=False)
        assert listed.content == b"" and listed.sha256 == digest
        assert await storage.media.media_files([]) == []


async def test_with_a_data_key_the_bytes_are_sealed_at_rest(database, monkeypatch) -> None:
    monkeypatch.setenv(ENV, generate_key())
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        await storage.media.store_media(session.id, "photo", "p.png", "image/png", PNG,
                                        hashlib.sha256(PNG).hexdigest(), "k", T0)
        (row,) = await storage._fetchall("SELECT content, sealed_with FROM answer_media")  # noqa: SLF001
        assert bytes(row[0]) != PNG and PNG[:64] not in bytes(row[0]) and row[1] is not None
        (read,) = await storage.media.media_files([session.id])
        assert read.content == PNG


async def test_erasure_and_the_retention_purge_delete_a_persons_files(database) -> None:
    async with await open_storage(database) as storage:
        first = await new_session(storage, "tg:1")
        second = await new_session(storage, "tg:2")
        for session in (first, second):
            await storage.media.store_media(session.id, "photo", "p.png", "image/png", PNG,
                                            hashlib.sha256(PNG).hexdigest(), "k", T0)
        request, _ = await storage.open_rights_request(first.respondent_id, kind="withdraw_delete", channel="telegram",
                                                       bot="t", language="vi", at=T0, acknowledge_by="2026-08-04",
                                                       handle_by="2026-08-17")
        counts = await storage.erase_respondent(request.id, "cli", T1)
        assert counts["media"] == 1
        assert await storage.media.media_files([first.id]) == []
        dry = await storage.purge_contact_data("any", [second.respondent_id], T1, dry_run=True)
        assert dry["media"] == 1 and len(await storage.media.media_files([second.id])) == 1
        purged = await storage.purge_contact_data("any", [second.respondent_id], T1, dry_run=False)
        assert purged["media"] == 1 and await storage.media.media_files([second.id]) == []


async def test_reseal_moves_every_file_to_the_current_key_in_batches_and_is_idempotent(database, monkeypatch) -> None:
    """A rotation (``khaosat rekey``): files sealed with the old key, and files kept in plaintext
    before a key was set, are sealed with the new key; the old key alone then opens none."""
    from storage.personal_crypto import PersonalKeyError

    old, new = generate_key(), generate_key()
    contents = {f"q{n}": PNG + bytes([n]) for n in range(5)}
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        for number, (question, content) in enumerate(contents.items()):
            if number == 3:
                monkeypatch.setenv(ENV, old)  # the first three were kept before any key was set
            await storage.media.store_media(session.id, question, f"{question}.png", "image/png", content,
                                            hashlib.sha256(content).hexdigest(), f"k{number}", T0)
        monkeypatch.setenv(ENV, f"{new},{old}")
        assert await storage.media.reseal_media(batch=2) == 5  # three batches of at most two
        assert await storage.media.reseal_media(batch=2) == 0  # again: nothing left to do
        rows = await storage._fetchall("SELECT question, content, sealed_with FROM answer_media")  # noqa: SLF001
        assert len({row[2] for row in rows}) == 1 and rows[0][2] is not None
        assert all(contents[row[0]][:64] not in bytes(row[1]) for row in rows)
        monkeypatch.setenv(ENV, new)  # the old key dropped: every file still opens
        assert {f.question: f.content for f in await storage.media.media_files([session.id])} == contents
        monkeypatch.setenv(ENV, old)
        with pytest.raises(PersonalKeyError, match="not in"):
            await storage.media.media_files([session.id])
        monkeypatch.delenv(ENV)
        assert await storage.media.reseal_media() == 0  # no key: nothing to seal with, nothing touched
