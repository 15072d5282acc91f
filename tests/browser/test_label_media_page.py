"""A label's image on the respondents' web page, in headless Chromium on a phone's screen: it loads
under the pages' Content-Security-Policy (same origin) and fits the screen."""

from __future__ import annotations

from tests.browser.test_web_pages import invite, no_sideways_scroll, submit
from tests.test_label_media import FOLDER

PICTURES = FOLDER / "pictures.md"


def test_the_note_and_the_question_show_their_images_on_a_phone(web_server, phone):
    server = web_server(forms=(PICTURES,))
    _, _, link = invite(server, "B-M", "pictures")
    page = phone()
    page.goto(f"{server.url}/s/{link}")
    page.get_by_label("Đồng ý", exact=True).check()
    submit(page, "button[value=answer]")
    images = page.locator("figure.media img")
    assert images.count() == 2
    page.wait_for_function("() => [...document.querySelectorAll('figure.media img')]"
                           ".every(image => image.complete && image.naturalWidth === 2)")
    assert no_sideways_scroll(page)
    page.get_by_label("Quý vị trồng bao nhiêu cây như trong ảnh?").fill("7")
    submit(page, "button[value=answer]")
    assert page.locator("figure.media").count() == 0 and "Ý kiến khác?" in page.locator("main").inner_text()


def test_a_photo_is_chosen_and_sent_from_the_page_with_and_without_javascript(web_server, phone, tmp_path):
    from tests.test_web_uploads import MEDIA, PNG

    photo = tmp_path / "shop.png"
    photo.write_bytes(PNG)
    server = web_server(forms=(MEDIA,))
    for javascript, external_id in ((True, "B-U1"), (False, "B-U2")):
        rid, _, link = invite(server, external_id, "media")
        page = phone(javascript)
        page.goto(f"{server.url}/s/{link}")
        page.get_by_label("Đồng ý", exact=True).check()
        submit(page, "button[value=answer]")
        page.get_by_label("Tên cửa hàng?").fill("Tạp hoá Lan")
        submit(page, "button[value=answer]")
        page.get_by_label("Ảnh mặt tiền cửa hàng?", exact=False).set_input_files(str(photo))
        submit(page, "button[value=answer]")
        assert "Kể lại bằng tin nhắn thoại?" in page.locator("main").inner_text()

        async def files(h, rid=rid):
            session = await h.storage.latest_session(rid, "media")
            return [(f.question, f.content) for f in await h.storage.media.media_files([session.id])]

        assert server.call(files) == [("front", PNG)]
