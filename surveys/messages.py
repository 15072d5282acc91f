"""What the software itself says to respondents, in Vietnamese first and English second.

Questionnaire texts come from the form; these are the words around them (consent, errors,
progress). One table, so a translator finds every sentence in one place.
"""

from __future__ import annotations

UI_LANGUAGES = ("vi", "en")
DEFAULT_UI_LANGUAGE = "vi"

_MESSAGES: dict[str, dict[str, str]] = {
    "consent": {
        "vi": "Chúng tôi xin ý kiến của quý vị cho cuộc khảo sát «{title}». Câu trả lời chỉ dùng để "
              "thống kê, được bảo vệ theo Nghị định 13/2023/NĐ-CP và không công bố kèm danh tính. "
              "Quý vị có thể dừng lúc nào và tiếp tục sau. Quý vị đồng ý tham gia chứ?",
        "en": "We would like your views for the survey “{title}”. Answers are used only for statistics, "
              "protected under Decree 13/2023/ND-CP and never published with your identity. You can stop "
              "at any time and continue later. Do you agree to take part?",
    },
    "consent_yes": {"vi": "Đồng ý", "en": "I agree"},
    "consent_no": {"vi": "Không đồng ý", "en": "I decline"},
    "consent_unclear": {"vi": "Xin trả lời «có» để bắt đầu hoặc «không» để từ chối.",
                        "en": "Please answer “yes” to begin or “no” to decline."},
    "declined": {"vi": "Cảm ơn quý vị. Chúng tôi sẽ không hỏi thêm. Nếu đổi ý, hãy gửi /resume.",
                 "en": "Thank you. We will not ask anything more. If you change your mind, send /resume."},
    "thanks": {"vi": "Quý vị đã hoàn thành khảo sát. Xin chân thành cảm ơn!",
               "en": "You have completed the survey. Thank you very much!"},
    "already_completed": {"vi": "Quý vị đã hoàn thành khảo sát này rồi. Cảm ơn quý vị!",
                          "en": "You have already completed this survey. Thank you!"},
    "refused_state": {"vi": "Quý vị đã từ chối tham gia. Gửi /resume nếu muốn tiếp tục.",
                      "en": "You declined to take part. Send /resume if you want to continue."},
    "paused": {"vi": "Đã lưu câu trả lời. Quý vị có thể tiếp tục bất cứ lúc nào bằng /resume.",
               "en": "Your answers are saved. You can continue at any time with /resume."},
    "resumed": {"vi": "Tiếp tục từ câu quý vị đang trả lời.",
                "en": "Continuing from the question you were answering."},
    "stale": {"vi": "Câu hỏi đó đã qua; xin trả lời câu hỏi hiện tại.",
              "en": "That question has passed; please answer the current one."},
    "cannot_go_back": {"vi": "Đây là câu hỏi đầu tiên, không thể quay lại.",
                       "en": "This is the first question; there is nothing to go back to."},
    "progress": {"vi": "Câu {position}/{total}", "en": "Question {position}/{total}"},
    "required": {"vi": "Câu hỏi này bắt buộc trả lời.", "en": "This question requires an answer."},
    "invalid": {"vi": "Câu trả lời không hợp lệ.", "en": "That answer is not valid."},
    "not_integer": {"vi": "Xin nhập một số nguyên, ví dụ 12.", "en": "Please enter a whole number, e.g. 12."},
    "not_decimal": {"vi": "Xin nhập một số, ví dụ 3,5.", "en": "Please enter a number, e.g. 3.5."},
    "not_date": {"vi": "Xin nhập ngày theo dạng ngày/tháng/năm (ví dụ 25/12/2025) hoặc 2025-12-25.",
                 "en": "Please enter a date as day/month/year (e.g. 25/12/2025) or 2025-12-25."},
    "unknown_choice": {"vi": "Không nhận ra «{text}». Xin chọn một trong các phương án.",
                       "en": "“{text}” was not recognised. Please pick one of the options."},
    "one_choice_only": {"vi": "Câu này chỉ chọn một phương án.", "en": "Choose only one option here."},
    "acknowledge_hint": {"vi": "Gửi OK để xác nhận.", "en": "Send OK to confirm."},
    "acknowledge_ok": {"vi": "OK", "en": "OK"},
    "multi_hint": {"vi": "Có thể chọn nhiều phương án, rồi bấm Xong.",
                   "en": "You may choose several options, then press Done."},
    "multi_typed_hint": {"vi": "Có thể chọn nhiều: gõ các số cách nhau bởi dấu cách, ví dụ 1 3 4.",
                         "en": "You may choose several: type the numbers separated by spaces, e.g. 1 3 4."},
    "back_hint": {"vi": "(gõ < để quay lại câu trước)", "en": "(type < to go back)"},
    "done": {"vi": "Xong", "en": "Done"},
    "back": {"vi": "⬅ Quay lại", "en": "⬅ Back"},
    "current_answer": {"vi": "Câu trả lời hiện tại: {value}", "en": "Current answer: {value}"},
    "skip_hint": {"vi": "(không bắt buộc: gửi dòng trống để bỏ qua)",
                  "en": "(optional: send an empty reply to skip)"},
    "unknown_language": {"vi": "Ngôn ngữ «{language}» chưa có. Có: {languages}.",
                         "en": "Language “{language}” is not available. Available: {languages}."},
    "language_set": {"vi": "Đã chuyển sang tiếng Việt.", "en": "Switched to English."},
    "not_started": {"vi": "Khảo sát chưa bắt đầu. Gửi /start để bắt đầu.",
                    "en": "The survey has not started. Send /start to begin."},
}


def say(key: str, language: str, **values: object) -> str:
    texts = _MESSAGES[key]
    text = texts.get(language) or texts[DEFAULT_UI_LANGUAGE]
    return text.format(**values) if values else text


def ui_language(language: str) -> str:
    """The language for the software's own words: the form may have languages we do not."""
    return language if language in UI_LANGUAGES else DEFAULT_UI_LANGUAGE
