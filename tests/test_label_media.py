"""Media in labels (issue #17): a question's or a note's image is read beside the form, kept with it,
and sent with the prompt — on Telegram as sendPhoto, uploaded once and then sent by its file_id."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.config import BotConfig, Config
from fieldwork.conversations import Conversations
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.run import run
from bot.telegram.botapi_spec import Upload
from bot.telegram.emulator import BotApiEmulator
from bot.web.settings import WebConfig
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from storage import NotFound, open_storage
from surveys import engine as E
from surveys.xlsform import load_questionnaire
from tests.test_telegram_bot import FAST, FAST_PACE, LINK_CODE, TOKEN, Harness, now
from tests.test_telegram_bot import harness as telegram_harness
from tests.test_zalo_bot import ZALO_TOKEN
from tests.web_helpers import free_port

FOLDER = Path(__file__).parent / "forms" / "label_media"
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


@pytest.fixture
def form_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "form"
    shutil.copytree(FOLDER, folder)
    return folder


def test_the_files_labels_name_are_kept_with_the_form_and_a_missing_one_is_a_warning(form_dir: Path) -> None:
    form = load_questionnaire(form_dir / "pictures.md")
    assert form.attachments == {"map.png": (form_dir / "map.png").read_bytes(),
                                "tree.png": (form_dir / "tree.png").read_bytes()}
    assert form.question("trees").media["image"].get("vi") == "tree.png"
    assert form.question("lost").media == {}
    assert ("sheet 'survey', row 5, column 'media::image': the file 'lost.png' is not beside the form; "
            "the prompt is sent without it") in form.warnings
    assert not any("kept as metadata" in w or "are not sent in a chat" in w for w in form.warnings)


def test_a_file_over_the_cap_is_a_warning_and_is_not_kept(form_dir: Path) -> None:
    (form_dir / "tree.png").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    form = load_questionnaire(form_dir / "pictures.md")
    assert sorted(form.attachments) == ["map.png"] and form.question("trees").media == {}
    assert any(w.startswith("sheet 'survey', row 3, column 'media::image': the file 'tree.png' is 10.0 MB")
               for w in form.warnings), form.warnings


def test_media_per_language_fall_back_to_the_default_language(tmp_path: Path) -> None:
    (tmp_path / "f.md").write_text(
        "| survey |\n"
        "| | type | name | label::English (en) | label::Tiếng Việt (vi) | media::image::Tiếng Việt (vi) "
        "| media::image::English (en) | media::audio::Tiếng Việt (vi) |\n"
        "| | integer | n | How many? | Bao nhiêu? | vi.png | en.png | vi.mp3 |\n"
        "| settings |\n| | version | default_language |\n| | 1 | Tiếng Việt (vi) |\n", encoding="utf-8")
    for name in ("vi.png", "en.png", "vi.mp3"):
        (tmp_path / name).write_bytes(name.encode())
    form = load_questionnaire(tmp_path / "f.md")
    for language, expected in (("en", [("image", "en.png"), ("audio", "vi.mp3")]),
                               ("vi", [("image", "vi.png"), ("audio", "vi.mp3")])):
        state = E.new_session(form, language)
        state = E.step(form, state, E.Start(AT)).state
        ask = E.step(form, state, E.Choose("yes", state.seq, AT)).say[-1]
        assert [(m.kind, m.name) for m in ask.media] == expected
        assert {m.form_id for m in ask.media} == {form.form_id}


async def test_a_restarted_bot_still_has_the_images(form_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite"
    path = form_dir / "pictures.md"
    async with await open_storage(db) as storage:
        await Conversations(storage).register(load_questionnaire(path), path.read_bytes(), path.name, AT)
    for image in form_dir.glob("*.png"):
        image.unlink()
    async with await open_storage(db) as storage:
        form = await Conversations(storage).questionnaire("pictures", "1")
        assert form.attachments["tree.png"] == (FOLDER / "tree.png").read_bytes()
        assert form.question("trees").media["image"].get("vi") == "tree.png"




async def test_telegram_sends_the_question_with_its_photo_and_reuses_the_file_id(tmp_path, form_dir, database):
    async with telegram_harness(tmp_path, database, forms=(form_dir / "pictures.md",)) as h:
        await invite(h, "p2")
        user = h.telegram.user(5001)
        await user.start(LINK_CODE)
        consent = await user.wait_for(lambda m: bool(m.inline_keyboard))
        await user.press(next(d for _, d in user.inline_buttons(consent) if d.endswith(":yes")), consent)
        note = await user.wait_for(lambda m: m.photo is not None)
        assert note.caption == "Xin chào, đây là bản đồ xã" and note.file_data == (form_dir / "map.png").read_bytes()
        question = await user.wait_for(lambda m: m.photo is not None)
        assert "Quý vị trồng bao nhiêu cây như trong ảnh?" in question.caption
        assert question.file_data == (form_dir / "tree.png").read_bytes()
        await user.send_text("12")
        remark = await user.wait_for(lambda m: bool(m.text) and "Ý kiến khác?" in m.text)
        back = next(d for _, d in user.inline_buttons(remark) if d.startswith("b:"))
        await user.press(back, remark)
        again = await user.wait_for(lambda m: m.photo is not None and m.edits == 0)
        assert "Quý vị trồng bao nhiêu cây" in again.caption and again.photo["file_id"] == question.photo["file_id"]
        await h.settle()
        photos = [r for r in h.emulator.requests if r.method.lower() == "sendphoto" and r.status == 200]
        uploads = [r.params["photo"] for r in photos if isinstance(r.params["photo"], Upload)]
        assert sorted(u.filename for u in uploads) == ["map.png", "tree.png"]  # each uploaded once
        assert photos[-1].params["photo"] == question.photo["file_id"]  # then sent by its file_id
        await user.send_text("11")
        await user.wait_for(lambda m: bool(m.text) and "Ý kiến khác?" in m.text)
        await user.send_text("không")
        closing = await user.wait_for(lambda m: bool(m.text) and "Ảnh này không có" in m.text)
        assert closing.photo is None  # its file was missing: the note goes as text


async def invite(h: Harness, external_id: str) -> int:
    respondent = await h.storage.add_respondent(external_id, form_id="pictures", stratum="a", at=now().isoformat())
    await h.storage.issue_invitation(respondent.id, "link", code_hash(LINK_CODE), now().isoformat())
    return respondent.id


@contextlib.asynccontextmanager
async def zalo_and_web(tmp_path: Path, form: Path):
    """``khaosat run`` with a Zalo bot (emulated) and [web] on 127.0.0.1 serving the pages and media."""
    emulator = ZaloBotApiEmulator(limits=ZaloLimits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                    per_chat_burst=1000))
    base = await emulator.start()
    zalo = emulator.add_bot(ZALO_TOKEN, "Bot Khảo sát")
    bots = (BotConfig(channel="zalo", name="zl", token=ZALO_TOKEN, api_base=base, forms=(form,), pace=FAST_PACE),)
    port = free_port()
    web = WebConfig(public_url="https://khaosat.example.vn/", port=port)
    config = Config(database=tmp_path / "survey.sqlite", bots=bots, source=tmp_path / "c.toml", web=web)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(config, stop, started=lambda b: ready.set()))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    storage = await open_storage(config.database)
    try:
        yield zalo, storage, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await task
        await storage.close()
        await emulator.stop()
    assert emulator.violations == []


async def invite_codes(storage, external_id: str) -> tuple[str, str]:
    respondent = await storage.add_respondent(external_id, form_id="pictures", stratum="a", at=now().isoformat())
    typed, link = new_typed_code(), new_link_code()
    await storage.issue_invitation(respondent.id, "typed", code_hash(typed), now().isoformat())
    await storage.issue_invitation(respondent.id, "link", code_hash(link), now().isoformat())
    return typed, link


async def test_zalo_sends_the_photo_by_the_url_the_web_server_serves(tmp_path, form_dir):
    async with zalo_and_web(tmp_path, form_dir / "pictures.md") as (zalo, storage, web_url):
        typed, _ = await invite_codes(storage, "Z-1")
        user = zalo.user(display_name="Lan")
        await user.send_text(typed)
        await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await user.send_text("1")
        note = await user.wait_for(lambda m: m.kind == "photo")
        assert note.caption == "Xin chào, đây là bản đồ xã"
        question = await user.wait_for(lambda m: m.kind == "photo")
        assert "Quý vị trồng bao nhiêu cây như trong ảnh?" in question.caption
        assert question.photo == "https://khaosat.example.vn/media/pictures/1/tree.png"
        async with aiohttp.ClientSession() as http:
            async with http.get(web_url + urlsplit(question.photo).path) as response:
                assert response.status == 200 and response.content_type == "image/png"
                assert await response.read() == (form_dir / "tree.png").read_bytes()
            # Only the files labels name are served: not a form's other files, not another form's.
            for path in ("/media/pictures/1/pictures.md", "/media/pictures/2/tree.png", "/media/x/1/tree.png",
                         "/media/pictures/1/lost.png"):
                async with http.get(web_url + path) as response:
                    assert response.status == 404, path


async def test_the_web_page_shows_the_images_of_the_note_and_the_question(tmp_path, form_dir):
    async with zalo_and_web(tmp_path, form_dir / "pictures.md") as (_, storage, web_url):
        _, link = await invite_codes(storage, "W-1")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{web_url}/s/{link}") as response:
                consent = await response.text()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', consent).group(1)
            seq = re.search(r'name="seq" value="(\d+)"', consent).group(1)
            async with browser.post(f"{web_url}/s/", data={"csrf_token": csrf, "seq": seq, "action": "answer",
                                                           "choice": "yes"}) as response:
                page = await response.text()
            assert '<img src="/media/pictures/1/map.png" alt="">' in page
            assert '<img src="/media/pictures/1/tree.png" alt="">' in page
            assert page.index("map.png") < page.index("Quý vị trồng") and "lost.png" not in page
            async with browser.get(f"{web_url}/media/pictures/1/map.png") as response:
                assert await response.read() == (form_dir / "map.png").read_bytes()
                assert "immutable" in response.headers["Cache-Control"]
                assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_paper_form_prints_the_images_inline(form_dir: Path) -> None:
    from fieldwork.paper_form import Copy, FormPrinter

    page = FormPrinter(load_questionnaire(form_dir / "pictures.md")).copy(Copy("AAAA BBBB", "t"))
    encoded = base64.b64encode((form_dir / "tree.png").read_bytes()).decode()
    assert f'<img class="media" alt="" src="data:image/png;base64,{encoded}">' in page
    assert page.index("bản đồ") < page.index("data:image/png") < page.index("Quý vị trồng")
    # print_forms writes each file once beside the HTML (every copy repeats the body) and points to it.
    written = {}
    page = FormPrinter(load_questionnaire(form_dir / "pictures.md"),
                       image_src=lambda name, data: written.setdefault(name, f"paper-media/{name}")).copy(
        Copy("AAAA BBBB", "t"))
    assert '<img class="media" alt="" src="paper-media/tree.png">' in page and sorted(written) == ["map.png", "tree.png"]


async def test_telegram_audio_video_and_a_long_caption_through_the_transport(tmp_path, form_dir):
    """sendAudio and sendVideo as the emulator checks them against the Bot API spec; a prompt too long
    for a caption goes after its file, with its keyboard; a file no longer readable leaves the text."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.form_media import FormMedia
    from bot.outbox import Sent
    from bot.telegram.render import with_media
    from bot.telegram.transport import TelegramTransport
    from surveys.model import LabelMedia

    (form_dir / "song.mp3").write_bytes(b"ID3 not really a song")
    (form_dir / "clip.mp4").write_bytes(b"\0\0\0\x18ftypmp42 not really a clip")
    (form_dir / "av.md").write_text(
        "| survey |\n| | type | name | label | media::audio | media::video |\n"
        "| | integer | n | Bao nhiêu? | song.mp3 | clip.mp4 |\n"
        "| settings |\n| | form_id | version |\n| | av | 1 |\n", encoding="utf-8")
    form = load_questionnaire(form_dir / "av.md")
    assert sorted(form.attachments) == ["clip.mp4", "song.mp3"]

    async def questionnaire(form_id: str, version: str):
        if (form_id, version) != ("av", "1"):
            raise NotFound(form_id)
        return form

    emulator = BotApiEmulator(limits=FAST)
    base = await emulator.start()
    user = emulator.add_bot(TOKEN, "khaosat_test_bot").user(7001)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    transport = TelegramTransport(bot, FormMedia(questionnaire))
    try:
        await user.start()
        audio, video = (LabelMedia(kind, name, "av", "1") for kind, name in (("audio", "song.mp3"),
                                                                             ("video", "clip.mp4")))
        keyboard = {"inline_keyboard": [[{"text": "OK", "callback_data": "c:1:ok"}]]}
        calls = with_media(7001, (audio, video), "x" * 1500, keyboard)
        assert [c.method for c in calls] == ["sendAudio", "sendVideo", "sendMessage"]
        assert calls[-1].payload["reply_markup"] == keyboard and "caption" not in calls[1].payload
        for call in calls:
            assert isinstance(await transport.send(call.method, call.payload), Sent)
        received = user.received[-3:]
        assert received[0].audio["file_name"] == "song.mp3" and received[0].file_data == b"ID3 not really a song"
        assert received[1].video is not None and received[2].text == "x" * 1500
        short = with_media(7001, (video,), "<b>Bao nhiêu?</b>", keyboard)
        assert [c.method for c in short] == ["sendVideo"] and short[0].payload["caption"] == "<b>Bao nhiêu?</b>"
        assert isinstance(await transport.send(short[0].method, short[0].payload), Sent)
        assert user.received[-1].video["file_id"] == received[1].video["file_id"]  # sent again by its file_id
        gone = with_media(7001, (LabelMedia("image", "gone.png", "av", "1"),), "Vẫn thấy câu hỏi", keyboard)
        assert isinstance(await transport.send(gone[0].method, gone[0].payload), Sent)
        assert user.received[-1].text == "Vẫn thấy câu hỏi" and user.received[-1].inline_keyboard
    finally:
        await bot.session.close()
        await emulator.stop()
    assert emulator.violations == []


def test_zalo_without_a_public_web_address_sends_the_text_alone(form_dir: Path) -> None:
    from bot.zalo.channel import ZaloRenderer

    form = load_questionnaire(form_dir / "pictures.md")
    state = E.new_session(form, "vi")
    state = E.step(form, state, E.Start(AT)).state
    outputs = E.step(form, state, E.Choose("yes", state.seq, AT)).say
    assert [len(o.media) for o in outputs] == [1, 1]
    calls, _ = ZaloRenderer().render(outputs, "z1", "vi")
    assert [c.method for c in calls] == ["sendMessage", "sendMessage"]
    calls, _ = ZaloRenderer("https://k.example.vn/").render(outputs, "z1", "vi")
    assert [(c.method, c.payload.get("photo")) for c in calls] == [
        ("sendPhoto", "https://k.example.vn/media/pictures/1/map.png"),
        ("sendPhoto", "https://k.example.vn/media/pictures/1/tree.png")]


def test_form_check_counts_the_media_and_says_what_zalo_needs() -> None:
    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, ["form", "check", str(FOLDER / "pictures.md")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "media in labels    image 2 (sent with the question; Zalo shows images only, and only where [web] public_url serves them)" \
        in result.output
    assert "the file 'lost.png' is not beside the form" in result.output


async def test_a_file_telegram_refuses_leaves_the_prompt_as_text(tmp_path, form_dir):
    """A label's file Telegram cannot take (over its photo limit here) is not a lost question."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.form_media import FormMedia
    from bot.outbox import Sent
    from bot.telegram.render import with_media
    from bot.telegram.transport import TelegramTransport
    from bot.telegram.emulator import Limits
    from surveys.model import LabelMedia

    form = load_questionnaire(form_dir / "pictures.md")

    async def questionnaire(form_id: str, version: str):
        return form

    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000,
                                            photo_max_bytes=10))
    base = await emulator.start()
    user = emulator.add_bot(TOKEN, "khaosat_test_bot").user(7002)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    try:
        await user.start()
        keyboard = {"inline_keyboard": [[{"text": "OK", "callback_data": "c:1:ok"}]]}
        call, = with_media(7002, (LabelMedia("image", "tree.png", "pictures", "1"),), "<b>Mấy cây?</b>", keyboard)
        assert isinstance(await TelegramTransport(bot, FormMedia(questionnaire)).send(call.method, call.payload), Sent)
        assert user.received[-1].text == "Mấy cây?" and user.received[-1].inline_keyboard
    finally:
        await bot.session.close()
        await emulator.stop()
