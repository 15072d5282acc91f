"""Letters offer the web page beside the messengers; ``[web]`` in the configuration is checked."""

from __future__ import annotations

import asyncio
import csv
import re
import subprocess
import sys

import pytest

from bot.config import ConfigError, load_config
from tests.test_invite import ROOT, sample


def test_letters_carry_the_web_link_with_the_same_code_as_the_telegram_link(tmp_path):
    db = tmp_path / "survey.sqlite"
    asyncio.run(sample(db))
    config = tmp_path / "khaosat.toml"
    config.write_text('[web]\npublic_url = "https://khaosat.quangtri.gov.vn/"\n\n[[telegram]]\nname = "qt"\n'
                      'token = "1:x"\nforms = []\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "invite", "--db", str(db),
                             "--out", str(tmp_path / "letters"), "--telegram", "khaosat_qt_bot"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "letters" / "invitations.csv").open(encoding="utf-8-sig")))
    letters = (tmp_path / "letters" / "letters.html").read_text(encoding="utf-8")
    for row in rows:
        web = re.fullmatch(r"https://khaosat\.quangtri\.gov\.vn/s/([A-Za-z0-9_-]{22})", row["web_link"])
        assert web, row["web_link"]
        assert row["telegram_link"].endswith(f"start={web.group(1)}")  # one code, either way in
        assert row["web_link"] in letters
    assert "Trang web:" in letters


def test_letters_with_only_the_web_address(tmp_path):
    db = tmp_path / "survey.sqlite"
    asyncio.run(sample(db))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "invite", "--db", str(db), "--out",
                             str(tmp_path / "letters"), "--web", "https://ks.example.vn"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "letters" / "invitations.csv").open(encoding="utf-8-sig")))
    assert all(row["web_link"].startswith("https://ks.example.vn/s/") and not row["telegram_link"] for row in rows)
    assert all((tmp_path / "letters" / row["qr_image"]).read_bytes().startswith(b"\x89PNG") for row in rows)
    bad = subprocess.run([sys.executable, "-m", "bot.cli", "invite", "--db", str(db), "--out",
                          str(tmp_path / "other"), "--web", "ks.example.vn", "--reissue"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "https://" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("table, message", [
    ('public_url = "khaosat.vn"', "web.public_url"),
    ('public_url = "https://ks.vn"\nport = "80"', "web.port"),
    ('public_url = "https://ks.vn"\nbot = "hanoi"', "web.bot"),
    ('public_url = "https://ks.vn"\ncodes_per_hour = 0', "web.codes_per_hour"),
    ('public_url = "https://ks.vn"\nlisten_on = "0.0.0.0"', "listen_on"),
])
def test_a_wrong_web_section_names_the_key(tmp_path, table, message):
    path = tmp_path / "khaosat.toml"
    path.write_text(f'[web]\n{table}\n\n[[telegram]]\nname = "qt"\ntoken = "1:x"\nforms = []\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_the_web_section_read(tmp_path):
    path = tmp_path / "khaosat.toml"
    path.write_text('[web]\npublic_url = "https://ks.vn/"\nport = 8091\nbot = "qt"\n\n'
                    '[[telegram]]\nname = "qt"\ntoken = "1:x"\nforms = []\n', encoding="utf-8")
    web = load_config(path).web
    assert (web.public_url, web.port, web.bot, web.link("abc")) == ("https://ks.vn", 8091, "qt", "https://ks.vn/s/abc")


def test_an_open_mode_poster_offers_the_web_page():
    from fieldwork.invitations import channels, posters_for, posters_html

    posters = posters_for({"quay-mot-cua": "Bộ phận một cửa"}, channels(None, "Khảo sát QT", "https://ks.vn"))
    assert posters[0].web_link == "https://ks.vn/s/quay-mot-cua"
    page = posters_html(posters, "Khảo sát")
    assert "https://ks.vn/s/quay-mot-cua" in page and 'class="qr"' in page
