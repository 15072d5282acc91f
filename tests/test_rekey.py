"""``rekey_personal`` (khaosat rekey's names and phones) on both databases: a rotation, then a rekey
in small batches, then only the new key reads everything; a second run re-encrypts nothing."""

from __future__ import annotations

import pytest

from storage import open_storage
from storage.personal_crypto import ENV, PersonalKeyError, generate_key
from storage.personal_rekey import Rekeyed
from storage.records import FrameRow

T0 = "2026-08-02T09:00:00+07:00"
SURVEY = "rekey-2026"
# 7 frame rows and 7 respondents: batches of 3 end on a partial batch, batches of 7 on a full one.
PEOPLE = [(f"F{n:03}", f"Người thứ {n}", f"+8491200{n:04}" if n % 3 else None) for n in range(1, 8)]


async def written_under(database, key: str, monkeypatch) -> None:
    monkeypatch.setenv(ENV, key)
    async with await open_storage(database) as storage:
        await storage.import_frame(SURVEY, [FrameRow(fid, "citizen", "u1", "s1", "{}", name, phone)
                                            for fid, name, phone in PEOPLE], T0)
        for fid, name, phone in PEOPLE:
            await storage.add_respondent(f"frame:{fid}", name=name, phone=phone, at=T0)


async def everything_read(database) -> tuple[list, list, list]:
    async with await open_storage(database) as storage:
        respondents = await storage.list_respondents()
        personal = [((p := await storage.personal(r.id)).name, p.phone) for r in respondents]
        by_phone = [(await storage.respondent_by_phone(phone)).external_id for _, _, phone in PEOPLE if phone]
        frame = [(row.frame_id, row.name, row.phone) for row in await storage.frame_rows(SURVEY, personal=True)]
    return personal, by_phone, frame


@pytest.mark.parametrize("batch", [3, 7])
async def test_a_rotation_then_rekey_in_batches_leaves_only_the_new_key_needed(database, monkeypatch, batch):
    old, new = generate_key(), generate_key()
    await written_under(database, old, monkeypatch)
    monkeypatch.setenv(ENV, f"{new},{old}")
    before = await everything_read(database)
    assert before[0] == [(name, phone) for _, name, phone in PEOPLE]
    assert before[1] == [f"frame:{fid}" for fid, _, phone in PEOPLE if phone]
    assert before[2] == PEOPLE
    async with await open_storage(database) as storage:
        assert await storage.personal_rekey.rekey_personal(batch=batch) == Rekeyed(len(PEOPLE), len(PEOPLE))
        assert await storage.personal_rekey.rekey_personal(batch=batch) == Rekeyed(0, 0)  # idempotent
    monkeypatch.setenv(ENV, new)  # the old key dropped: everything still read, phones still found
    assert await everything_read(database) == before
    monkeypatch.setenv(ENV, old)  # the old key alone reads nothing any more
    async with await open_storage(database) as storage:
        with pytest.raises(PersonalKeyError, match="encrypted with a key that is not in"):
            await storage.personal((await storage.list_respondents())[0].id)


async def test_plaintext_written_without_a_key_is_encrypted_and_without_a_key_rekey_refuses(database, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    async with await open_storage(database) as storage:
        await storage.import_frame(SURVEY, [FrameRow("F001", "citizen", "u1", "s1", "{}", "An", "+84912000001")], T0)
        with pytest.raises(PersonalKeyError, match=f"{ENV} is not set: there is no key to encrypt with"):
            await storage.personal_rekey.rekey_personal()
    key = generate_key()
    monkeypatch.setenv(ENV, key)
    async with await open_storage(database) as storage:
        assert await storage.personal_rekey.rekey_personal() == Rekeyed(0, 1)
        assert await storage.personal_rekey.rekey_personal() == Rekeyed(0, 0)
        assert [(r.name, r.phone) for r in await storage.frame_rows(SURVEY, personal=True)] == [
            ("An", "+84912000001")]


async def test_an_old_key_dropped_too_early_is_a_clear_error_and_the_old_key_still_reads(database, monkeypatch):
    old, new = generate_key(), generate_key()
    await written_under(database, old, monkeypatch)
    monkeypatch.setenv(ENV, new)  # OLD dropped before rekey ran: what it sealed cannot be opened
    async with await open_storage(database) as storage:
        with pytest.raises(PersonalKeyError, match="encrypted with a key that is not in"):
            await storage.personal_rekey.rekey_personal()
    monkeypatch.setenv(ENV, f"{new},{old}")  # put back: nothing was lost, the rekey then completes
    async with await open_storage(database) as storage:
        assert await storage.personal_rekey.rekey_personal() == Rekeyed(len(PEOPLE), len(PEOPLE))
