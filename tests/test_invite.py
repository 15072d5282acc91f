"""`khaosat invite`: personal codes issued once, stored as hashes, printed as letters."""

import asyncio
import csv
import re
import subprocess
import sys
from pathlib import Path

from bot.invitations import TYPED_ALPHABET, code_hash, normalise_phone, normalise_typed_code
from storage import open_storage

ROOT = Path(__file__).resolve().parents[1]


async def sample(db: Path) -> list[int]:
    async with await open_storage(db) as storage:
        ids = []
        for number, (name, phone) in enumerate([("Nguyễn Thị Lan", "+84912345678"), ("Trần Văn Bình", None)]):
            respondent = await storage.add_respondent(f"S-{number}", form_id="sipas_citizen_example", stratum="xa-a",
                                                      name=name, phone=phone, at="2026-11-01T08:00:00+07:00")
            ids.append(respondent.id)
        return ids


def invite(db: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "invite", "--db", str(db), "--out", str(out),
                           "--telegram", "@khaosat_qt_bot", "--zalo", "Khảo sát Quảng Trị", *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_letters_carry_working_codes_that_are_stored_only_as_hashes(tmp_path):
    db = tmp_path / "survey.sqlite"
    ids = asyncio.run(sample(db))
    result = invite(db, tmp_path / "letters")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "letters" / "invitations.csv").open(encoding="utf-8-sig")))
    assert [row["name"] for row in rows] == ["Nguyễn Thị Lan", "Trần Văn Bình"]
    link_codes = []
    for row in rows:
        match = re.fullmatch(r"https://t\.me/khaosat_qt_bot\?start=([A-Za-z0-9_-]{22})", row["telegram_link"])
        assert match, row["telegram_link"]
        link_codes.append(match.group(1))
        assert set(normalise_typed_code(row["typed_code"])) <= set(TYPED_ALPHABET)
        png = (tmp_path / "letters" / row["qr_image"]).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 200
    letters = (tmp_path / "letters" / "letters.html").read_text(encoding="utf-8")
    assert letters.count("THƯ MỜI THAM GIA KHẢO SÁT") == 2 and "Khảo sát Quảng Trị" in letters
    assert rows[0]["typed_code"] in letters

    async def check():
        async with await open_storage(db) as storage:
            raw = (await storage._fetchall("SELECT code_hash FROM invitations"))  # noqa: SLF001 - checking the schema
            stored = {row[0] for row in raw}
            for respondent_id, code, row in zip(ids, link_codes, rows):
                invitation = await storage.find_invitation(code_hash(code))
                assert invitation.respondent_id == respondent_id
                typed = await storage.find_invitation(code_hash(normalise_typed_code(row["typed_code"])))
                assert typed.respondent_id == respondent_id
                assert code not in stored, "the code itself is never stored"
                assert (await storage.get_respondent(respondent_id)).disposition == "invited"
    asyncio.run(check())

    again = invite(db, tmp_path / "again")
    assert "Issued 0 invitation(s)" in again.stdout  # nobody is sent a second code by accident
    reissued = invite(db, tmp_path / "reissued", "--reissue")
    assert "Issued 2 invitation(s)" in reissued.stdout

    async def old_codes_revoked():
        async with await open_storage(db) as storage:
            for code in link_codes:
                assert (await storage.find_invitation(code_hash(code))).revoked_at is not None
    asyncio.run(old_codes_revoked())


def test_vietnamese_phone_numbers_are_normalised():
    for raw in ("0912345678", "0912 345 678", "+84 912-345-678", "84912345678", "(+84) 912.345.678"):
        assert normalise_phone(raw) == "+84912345678"
    assert normalise_phone("02333 852 123") == "+842333852123"  # a landline with its area code
    for bad in ("12345", "0912abc678", "+84 12", "0912³45678", "+1²34567890"):
        try:
            normalise_phone(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_typed_codes_forgive_case_spaces_and_look_alike_letters():
    assert normalise_typed_code("ab3d-ef9h") == "AB3DEF9H"
    assert normalise_typed_code("O1IL 2345") == "01112345"


def test_a_second_run_into_the_same_folder_keeps_the_earlier_letters(tmp_path):
    db = tmp_path / "survey.sqlite"
    asyncio.run(sample(db))
    letters = tmp_path / "letters"
    assert invite(db, letters).returncode == 0
    first = {p.relative_to(letters): p.read_bytes() for p in letters.rglob("*") if p.is_file()}

    async def add_one():  # e.g. a reserve brought in by `khaosat sample replace`
        async with await open_storage(db) as storage:
            await storage.add_respondent("S-9", form_id="sipas_citizen_example", stratum="xa-a", name="Lê Thị Hoa",
                                         phone=None, at="2026-11-02T08:00:00+07:00")
    asyncio.run(add_one())

    second = invite(db, letters)
    assert second.returncode == 0, second.stderr
    assert "invitations-2.csv" in second.stdout and "earlier letters" in second.stdout
    for path, content in first.items():  # nothing of the first run is overwritten
        assert (letters / path).read_bytes() == content, path
    rows = list(csv.DictReader((letters / "invitations-2.csv").open(encoding="utf-8-sig")))
    assert [row["name"] for row in rows] == ["Lê Thị Hoa"]
    assert rows[0]["qr_image"].startswith("qr-2/")
    assert (letters / rows[0]["qr_image"]).read_bytes().startswith(b"\x89PNG")
    assert "Lê Thị Hoa" in (letters / "letters-2.html").read_text(encoding="utf-8")

    nobody = invite(db, letters)  # nothing to issue: no third file, no leftovers
    assert nobody.returncode == 1 and "nobody to invite" in nobody.stderr
    reissued = invite(db, letters, "--reissue")
    assert reissued.returncode == 0, reissued.stderr
    assert len(list(csv.DictReader((letters / "invitations-3.csv").open(encoding="utf-8-sig")))) == 3
    assert sorted(p.name for p in letters.iterdir()) == [
        "invitations-2.csv", "invitations-3.csv", "invitations.csv", "letters-2.html", "letters-3.html",
        "letters.html", "qr", "qr-2", "qr-3"]
    for path, content in first.items():
        assert (letters / path).read_bytes() == content, path

    helped = subprocess.run([sys.executable, "-m", "bot.cli", "invite", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert "invitations-2.csv" in helped.stdout
