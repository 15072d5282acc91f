"""Media questions end to end, through `khaosat run` against the Telegram and Zalo emulators: a
photo, a voice note and a PDF sent on Telegram (getFile and the file download, as the Bot API
serves them), a photo on Zalo (fetched from the URL the platform gives), inside a repeat too; text,
a wrong kind of file, a too-big file and a failed download are refused politely and change
nothing; a re-delivered update stores one file and one answer."""

from __future__ import annotations

from pathlib import Path

from tests.test_chat_scenarios import arrive, emulators, has, running, settle

MEDIA = Path(__file__).parent / "forms" / "media.md"
PHOTO = b"\xff\xd8\xff\xe0" + b"front of the shop " * 200
ITEM = b"\xff\xd8\xff\xe0" + b"an item " * 100
VOICE = b"OggS" + b"\x00voice" * 300
PDF = b"%PDF-1.4 receipt " * 50


async def stored(storage, respondent_id: int) -> tuple[dict, dict]:
    (session_id,) = [row[0] for row in await storage._fetchall(  # noqa: SLF001
        "SELECT id FROM sessions WHERE respondent_id = ?", (respondent_id,))]
    answers = {name: record.value for name, record in (await storage.answers(session_id)).items()}
    files = {f.question: f for f in await storage.media.media_files([session_id])}
    return answers, files


async def test_photo_voice_and_file_on_telegram(tmp_path, database):
    async with emulators(tmp_path, database, (MEDIA,)) as bots:
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, "telegram", "M-tg", 8300, "media")
            await user.send_text("1")
            await user.wait_for(has("Tên cửa hàng?"))
            await user.send_photo(PHOTO)  # a photo to a text question: not text, nothing fetched
            await user.wait_for(has("Xin trả lời bằng chữ"))
            await user.send_text("Tạp hoá Minh")
            await user.wait_for(has("Ảnh mặt tiền cửa hàng? (một ảnh, gửi bằng nút đính kèm 📎)"))
            await user.send_text("đây")
            await user.wait_for(has("Xin gửi một ảnh bằng nút đính kèm 📎"))
            await user.send_document(PDF, "hoadon.pdf", "application/pdf")
            await user.wait_for(has("Tệp này không đúng loại câu hỏi cần"))
            await user.send_document(PHOTO, "big.jpg", "image/jpeg", declared_size=25 * 1024 * 1024)
            await user.wait_for(has("Tệp này quá lớn (tối đa 20 MB)"))
            bots.telegram.file_failures = 1
            await user.send_photo(PHOTO)
            await user.wait_for(has("chưa nhận được tệp này. Xin quý vị gửi lại"))
            answers, files = await stored(storage, respondent_id)
            assert "front" not in answers and files == {}
            await user.send_photo(PHOTO)
            await user.wait_for(has("Kể lại bằng tin nhắn thoại?"))
            await user.send_voice(VOICE)
            await user.wait_for(has("Hoá đơn (PDF hoặc ảnh)?"))
            await user.send_document(PDF, "Nguyen Van A hoa don.pdf", "application/pdf")
            await user.wait_for(has("Chữ ký?"))
            await user.press("Bỏ qua")  # an optional media question has the skip button
            await user.wait_for(has("Ảnh món hàng?"))
            await user.send_photo(ITEM)
            await user.wait_for(has("thêm một “Món hàng”"))
            await user.send_text("2")
            await user.wait_for(has("Còn gì nữa không?"))
            await user.send_text("không")
            await user.wait_for(has("hoàn thành khảo sát"))
            await settle(storage)
            answers, files = await stored(storage, respondent_id)
    assert set(files) == {"front", "story", "receipt", "items[1]/item_photo"}
    assert files["front"].content == PHOTO and files["front"].mime == "image/jpeg"
    assert files["story"].content == VOICE and files["story"].mime == "audio/ogg"
    assert files["receipt"].content == PDF and "Nguyen" not in files["receipt"].name
    assert files["items[1]/item_photo"].content == ITEM
    for key, media in files.items():
        assert answers[key] == f'"{media.name}"' or answers[key] == media.name
    assert answers["sign"] in (None, "null")


async def test_a_photo_on_zalo_and_a_recording_question_it_cannot_carry(tmp_path, database):
    async with emulators(tmp_path, database, (MEDIA,)) as bots:
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, "zalo", "M-zl", 8310, "media")
            await user.send_text("1")
            await user.wait_for(has("Tên cửa hàng?"))
            await user.send_text("Quán Lan")
            await user.wait_for(has("Ảnh mặt tiền cửa hàng? (gửi một ảnh bằng nút gửi ảnh của Zalo)"))
            message_id = await user.send_image(PHOTO, caption="mặt tiền")
            await user.wait_for(has("Zalo không chuyển được ghi âm hay video vào khảo sát; xin gõ “bỏ qua”"))
            await bots.zalo.redeliver(message_id)  # the platform may deliver it again: nothing changes
            await user.send_unsupported()  # a voice note: Zalo passes on no content
            await user.wait_for(has("Tin nhắn này không chuyển được vào khảo sát."))
            await user.send_text("bỏ qua")
            await user.wait_for(has("Zalo chỉ chuyển được ảnh: xin chụp và gửi ảnh của giấy tờ"))
            await user.send_image(PDF[:10] + PHOTO)  # a photo of the receipt answers a file question
            await user.wait_for(has("Chữ ký?"))
            await user.send_text("bỏ qua")
            await user.wait_for(has("Ảnh món hàng?"))
            await user.send_image(ITEM)
            await user.wait_for(has("thêm một “Món hàng”"))
            await user.send_text("2")
            await user.wait_for(has("Còn gì nữa không?"))
            await user.send_text("không")
            await user.wait_for(has("hoàn thành khảo sát"))
            await settle(storage)
            answers, files = await stored(storage, respondent_id)
            (count,) = (await storage._fetchall("SELECT count(*) FROM answer_media"))[0]  # noqa: SLF001
    assert set(files) == {"front", "receipt", "items[1]/item_photo"} and count == 3
    assert files["front"].content == PHOTO and files["items[1]/item_photo"].content == ITEM
    assert answers["story"] in (None, "null")
