"""What the software itself says to respondents, in Vietnamese first and English second.

Questionnaire texts come from the form; these are the words around them (consent, errors,
progress). One table, so a translator finds every sentence in one place; the labels of
exported tables (for analysts) are beside it in ``EXPORT_LABELS``, read with the same `translate`.
"""

from __future__ import annotations

UI_LANGUAGES = ("vi", "en")
DEFAULT_UI_LANGUAGE = "vi"

_MESSAGES: dict[str, dict[str, str]] = {
    # The consent screen when no survey gives its own (``khaosat try``); the bots show the survey's
    # privacy texts instead (surveys/privacy.py, templates/privacy.default.toml).
    "consent": {
        "vi": "Chúng tôi xin ý kiến của quý vị cho cuộc khảo sát “{title}”. Câu trả lời chỉ dùng để "
              "thống kê, được bảo vệ theo Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15 và không công bố kèm "
              "danh tính. Quý vị có thể dừng lúc nào, rút lại đồng ý và yêu cầu xóa dữ liệu. "
              "Quý vị có đồng ý tham gia không?",
        "en": "We would like your views for the survey “{title}”. Answers are used only for statistics, "
              "protected under the Law on Personal Data Protection No. 91/2025/QH15 and never published with "
              "your identity. You can stop at any time, withdraw consent and ask for deletion. "
              "Do you agree to take part?",
    },
    "consent_yes": {"vi": "Đồng ý", "en": "I agree"},
    "consent_no": {"vi": "Không đồng ý", "en": "I decline"},
    # {yes} and {no} are the consent options' labels (consent_yes, consent_no), filled in by `say`.
    "consent_unclear": {"vi": "Xin chọn “{yes}” để bắt đầu hoặc “{no}” để từ chối (cũng có thể gõ 1 hoặc 2).",
                        "en": "Please choose “{yes}” to begin or “{no}” to say no (you can also type 1 or 2)."},
    "declined": {"vi": "Cảm ơn quý vị. Chúng tôi sẽ không hỏi thêm. Nếu đổi ý, quý vị có thể gửi /resume.",
                 "en": "Thank you. We will not ask anything more. If you change your mind, send /resume."},
    "thanks": {"vi": "Quý vị đã hoàn thành khảo sát. Xin chân thành cảm ơn!",
               "en": "You have completed the survey. Thank you very much!"},
    "completed": {"vi": "Quý vị đã hoàn thành khảo sát; các câu trả lời đã được ghi nhận.",
                  "en": "You have completed the survey; your answers are recorded."},
    "already_completed": {"vi": "Quý vị đã hoàn thành khảo sát này rồi. Cảm ơn quý vị!",
                          "en": "You have already completed this survey. Thank you!"},
    "refused_state": {"vi": "Quý vị đã từ chối tham gia. Nếu muốn tiếp tục, xin gửi /resume.",
                      "en": "You declined to take part. Send /resume if you want to continue."},
    "paused": {"vi": "Đã lưu các câu trả lời của quý vị. Quý vị có thể tiếp tục bất cứ lúc nào bằng cách "
                     "gửi /resume.",
               "en": "Your answers are saved. You can continue at any time with /resume."},
    "resumed": {"vi": "Tiếp tục từ câu quý vị đang trả lời.",
                "en": "Continuing from the question you were answering."},
    "already_ticked": {"vi": "Đã chọn rồi.", "en": "Already ticked."},
    "already_unticked": {"vi": "Đã bỏ chọn rồi.", "en": "Already unticked."},
    "stale": {"vi": "Câu hỏi đó đã qua; xin quý vị trả lời câu hỏi hiện tại.",
              "en": "That question has passed; please answer the current one."},
    "cannot_go_back": {"vi": "Đây là câu hỏi đầu tiên nên không thể quay lại; xin quý vị trả lời câu hỏi này.",
                       "en": "This is the first question, so there is nothing to go back to; please answer it."},
    "progress": {"vi": "Tiến độ {bar} {percent}%", "en": "Progress {bar} {percent}%"},
    "required": {"vi": "Câu hỏi này cần có câu trả lời; xin quý vị trả lời để tiếp tục.",
                 "en": "This question needs an answer; please answer it to go on."},
    "invalid_between": {"vi": "Xin trả lời một số từ {low} đến {high}.",
                        "en": "Please answer with a number from {low} to {high}."},
    "invalid_at_least": {"vi": "Xin trả lời một số từ {low} trở lên.", "en": "Please answer with a number of at least {low}."},
    "invalid_at_most": {"vi": "Xin trả lời một số không quá {high}.", "en": "Please answer with a number of at most {high}."},
    "invalid": {"vi": "Câu trả lời chưa phù hợp với yêu cầu của câu hỏi; xin quý vị trả lời lại.",
                "en": "That answer does not fit what the question asks; please answer again."},
    # Number and date errors: the engine adds an example that fits the question ("for_example").
    "not_integer": {"vi": "Xin nhập một số nguyên (chỉ gồm chữ số).", "en": "Please enter a whole number (digits only)."},
    "not_decimal": {"vi": "Xin nhập một con số.", "en": "Please enter a number."},
    "not_date": {"vi": "Xin nhập ngày theo dạng ngày/tháng/năm.", "en": "Please enter the date as day/month/year."},
    "no_such_day": {"vi": "Tháng {month}/{year} không có ngày {day}. Xin nhập lại ngày theo dạng ngày/tháng/năm.",
                    "en": "{month_name} {year} has no day {day}. Please enter the date again as day/month/year."},
    "for_example": {"vi": "Ví dụ: {example}.", "en": "For example: {example}."},
    # Shown with a date question, in brackets.
    "date_expected": {"vi": "ngày/tháng/năm, ví dụ {example}", "en": "day/month/year, e.g. {example}"},
    "date_pattern": {"vi": "ngày/tháng/năm", "en": "day/month/year"},
    "answer_again": {"vi": "Sau thay đổi vừa rồi, câu trả lời trước đây của quý vị cho câu hỏi dưới đây không còn "
                           "phù hợp. Xin quý vị trả lời lại.",
                     "en": "After the change you just made, your earlier answer to the question below no longer "
                           "fits. Please answer it again."},
    "unknown_choice": {"vi": "Chưa nhận ra câu trả lời “{text}”. Xin chọn một trong các phương án của câu hỏi.",
                       "en": "“{text}” is not one of the options. Please choose one of the question's options."},
    "one_choice_only": {"vi": "Câu hỏi này chỉ chọn một phương án; xin quý vị chọn một.",
                        "en": "This question takes only one option; please choose one."},
    "acknowledge_hint": {"vi": "Xin gửi OK để xác nhận đã đọc.", "en": "Please send OK to confirm you have read this."},
    "acknowledge_ok": {"vi": "OK", "en": "OK"},
    "multi_hint": {"vi": "Quý vị có thể chọn nhiều phương án, rồi bấm “Xong”.",
                   "en": "You may choose several options, then press “Done”."},
    "multi_typed_hint": {"vi": "Quý vị có thể chọn nhiều: gõ các số cách nhau bởi dấu cách, ví dụ 1 3.",
                         "en": "You may choose several: type the numbers separated by spaces, e.g. 1 3."},
    "back_hint": {"vi": "(gõ < để quay lại câu trước)", "en": "(type < to go back)"},
    "skip_word_hint": {"vi": "(không bắt buộc: gõ “bỏ qua” để bỏ qua)", "en": "(optional: type “skip” to skip)"},
    "single_typed_hint": {"vi": "Trả lời bằng số thứ tự, ví dụ 2, hoặc gõ nội dung phương án.",
                          "en": "Answer with the number, e.g. 2, or type the option."},
    "zalo_welcome": {
        "vi": "Xin chào quý vị! Đây là kênh khảo sát ý kiến về cải cách hành chính. Để tham gia, xin quý vị "
              "gõ mã mời gồm 8 ký tự in trên thư mời (ví dụ AB3D EF9H).",
        "en": "Hello! This is the administrative-reform opinion survey. To take part, type the 8-character "
              "code printed on your invitation letter (e.g. AB3D EF9H)."},
    "unclear_reply": {"vi": "Chưa rõ câu trả lời. {hint}", "en": "The reply is unclear. {hint}"},
    "done": {"vi": "Xong", "en": "Done"},
    "skip": {"vi": "Bỏ qua", "en": "Skip"},
    "back": {"vi": "⬅ Quay lại", "en": "⬅ Back"},
    "current_answer": {"vi": "Câu trả lời hiện tại: {value}", "en": "Current answer: {value}"},
    "skip_hint": {"vi": "(không bắt buộc: gửi dòng trống để bỏ qua)",
                  "en": "(optional: send an empty reply to skip)"},
    "unknown_language": {"vi": "Chưa có ngôn ngữ “{language}”. Các ngôn ngữ hiện có: {languages}.",
                         "en": "Language “{language}” is not available. Available: {languages}."},
    "language_set": {"vi": "Đã chuyển sang tiếng Việt.", "en": "Switched to English."},
    "not_started": {"vi": "Quý vị chưa bắt đầu khảo sát. Xin gửi /start để bắt đầu.",
                    "en": "You have not started the survey yet. Send /start to begin."},
    # -- linking a chat to a sampled person, and chat commands ------------------------------------
    "welcome_unlinked": {
        "vi": "Xin chào quý vị! Đây là kênh khảo sát ý kiến về cải cách hành chính. Để tham gia, xin quý vị "
              "mở đường link trong thư mời, gõ mã mời in trên thư, hoặc chia sẻ số điện thoại để chúng tôi "
              "tìm tên quý vị trong danh sách khảo sát.",
        "en": "Hello! This is the administrative-reform opinion survey. To take part, open the link in "
              "your invitation letter, type the code printed on it, or share your phone number so we "
              "can find you on the survey list."},
    "share_phone": {"vi": "📱 Chia sẻ số điện thoại", "en": "📱 Share my phone number"},
    "code_invalid": {"vi": "Mã mời không đúng hoặc đã bị thu hồi. Xin quý vị kiểm tra lại và gõ mã gồm 8 ký tự "
                           "in trên thư mời (ví dụ AB3D EF9H).",
                     "en": "That invitation code is wrong or has been revoked. Please check your letter and type "
                           "the 8-character code printed on it (e.g. AB3D EF9H)."},
    "code_used_elsewhere": {
        "vi": "Mã mời này đã được dùng trên một tài khoản khác. Nếu đó không phải quý vị, xin liên hệ "
              "cơ quan khảo sát để được cấp mã mới.",
        "en": "This invitation code has already been used from another account. If that was not you, "
              "please contact the survey office for a new code."},
    "chat_linked_other": {"vi": "Tài khoản này đã gắn với một người tham gia khác.",
                          "en": "This account is already linked to another participant."},
    "too_many_attempts": {"vi": "Quý vị đã nhập sai mã quá nhiều lần. Xin thử lại sau một giờ.",
                          "en": "Too many wrong codes. Please try again in an hour."},
    "phone_not_found": {"vi": "Số điện thoại này không có trong danh sách khảo sát. Xin quý vị dùng đường "
                              "link hoặc mã mời in trong thư mời.",
                        "en": "This phone number is not on the survey list. Please use the link or the code "
                              "in your invitation letter."},
    "phone_ambiguous": {"vi": "Số điện thoại này có nhiều lần trong danh sách khảo sát; xin quý vị dùng mã mời "
                              "in trong thư mời.",
                        "en": "This phone number appears more than once on the survey list; please use the "
                              "code in your invitation letter."},
    "contact_not_own": {"vi": "Xin chia sẻ số điện thoại của chính quý vị.",
                        "en": "Please share your own phone number."},
    "linked": {"vi": "Đã xác nhận quý vị có tên trong danh sách khảo sát. Xin cảm ơn!",
               "en": "We have found you on the survey list. Thank you!"},
    "open_already_answered": {"vi": "Tài khoản này đã trả lời khảo sát này rồi. Cảm ơn quý vị!",
                              "en": "This account has already answered this survey. Thank you!"},
    "help": {
        "vi": "Trả lời bằng cách bấm nút hoặc gõ câu trả lời.\n/resume — tiếp tục khảo sát\n/lang en — "
              "English\n/stop — dừng hẳn, không nhận nhắc nhở\n/privacy — dữ liệu của quý vị được dùng thế nào"
              "\n/xoa — rút lại đồng ý, xóa dữ liệu",
        "en": "Answer by pressing a button or typing.\n/resume — continue the survey\n/lang vi — tiếng "
              "Việt\n/stop — stop for good, no more reminders\n/privacy — how your data is used"
              "\n/delete — withdraw consent, delete your data"},
    "privacy": {
        "vi": "Chúng tôi lưu: câu trả lời của quý vị, thời điểm trả lời và mã định danh cuộc trò chuyện để "
              "quý vị tiếp tục được khi quay lại. Câu trả lời chỉ dùng để tính chỉ số cải cách hành chính, "
              "được phân tích dưới mã ẩn danh và không công bố kèm danh tính (Luật Bảo vệ dữ liệu cá nhân số "
              "91/2025/QH15, Nghị định 356/2025/NĐ-CP). Quý vị có thể dừng bất cứ lúc nào bằng /stop, rút lại "
              "đồng ý và yêu cầu xóa dữ liệu bằng /xoa.",
        "en": "We keep your answers, when you gave them, and the chat id so you can continue where you "
              "left off. Answers are used only to compute the administrative-reform index, analysed under a "
              "pseudonym and never published with your identity (Law on Personal Data Protection No. "
              "91/2025/QH15, Decree 356/2025/NĐ-CP). You can stop at any time with /stop, and withdraw consent "
              "and ask for deletion with /delete."},
    "stop_confirm": {"vi": "Quý vị muốn dừng hẳn và không nhận nhắc nhở nữa?",
                     "en": "Do you want to stop for good and receive no more reminders?"},
    "zalo_stop_how": {"vi": "Gõ “/stop có” để xác nhận; gõ câu trả lời cho câu hỏi để tiếp tục.",
                      "en": "Type “/stop yes” to confirm; answer the question to go on."},
    "stop_yes": {"vi": "Dừng hẳn", "en": "Stop for good"},
    "stop_no": {"vi": "Tiếp tục trả lời", "en": "Keep answering"},
    "unknown_command": {"vi": "Chưa hiểu lệnh này. Xin gõ /help để xem các lệnh.",
                        "en": "Unknown command. Send /help for the list."},
    "not_text": {"vi": "Xin trả lời bằng chữ hoặc bấm nút.", "en": "Please answer with text or a button."},
    "progress_title": {"vi": "Tiến độ khảo sát (hoàn thành/mẫu, tỷ lệ trả lời):",
                       "en": "Survey progress (completed/sampled, response rate):"},
    "progress_empty": {"vi": "Chưa có người nào trong mẫu.", "en": "Nobody is in the sample yet."},
    "progress_reached": {"vi": "đã liên hệ", "en": "reached"},
    "progress_refused": {"vi": "từ chối", "en": "refused"},
    "progress_unreachable": {"vi": "không liên lạc được", "en": "unreachable"},
    "export_failed": {"vi": "Không xuất được dữ liệu: {reason}. Xin thử lại sau hoặc dùng lệnh “khaosat export”.",
                      "en": "The answers could not be exported: {reason}. Please try again later or use “khaosat export”."},
    "export_caption": {"vi": "Dữ liệu trả lời (mã ẩn danh), {rows} phiên.",
                       "en": "Answers (pseudonymous ids), {rows} sessions."},
    # -- quotas and reminders ---------------------------------------------------------------------
    "quota_full": {
        "vi": "Cảm ơn quý vị. Nhóm đối tượng của quý vị đã đủ số phiếu cần thiết, nên chúng tôi không "
              "cần hỏi thêm. Xin chân thành cảm ơn sự quan tâm của quý vị!",
        "en": "Thank you. Your group already has all the responses the survey needs, so we do not need to "
              "ask you anything more. Thank you very much for your interest!"},
    # {answered} only: the chat shows progress as a share of the form, which a count over all the
    # form's questions ({total}, still accepted in a project's own text) would contradict.
    "reminder_default": {"vi": "Phiếu khảo sát của quý vị chưa hoàn thành (quý vị đã trả lời {answered} câu). "
                               "Mời quý vị tiếp tục trả lời.",
                         "en": "Your survey is not finished yet (you have answered {answered} questions). "
                               "Please continue answering."},
    "reminder_resume_hint": {"vi": "Xin gửi /resume để tiếp tục.", "en": "Send /resume to continue."},
    # -- khaosat status as a chat message (/progress, the daily summary) ------------------------
    "status_title": {"vi": "Tiến độ {title} — còn {days} ngày (đến {closes})",
              "en": "Progress of {title} — {days} day(s) left (until {closes})"},
    "status_closed": {"vi": "Tiến độ {title} — đã kết thúc {closes}", "en": "Progress of {title} — closed {closes}"},
    "status_row": {"vi": "{mark} {label}: {completed}/{target} phiếu ({fill}) · TL trả lời {rr} · dự kiến {projection}",
            "en": "{mark} {label}: {completed}/{target} completes ({fill}) · RR1 {rr} · projected {projection}"},
    "status_total": {"vi": "Tổng", "en": "Total"},
    "status_lagging": {"vi": "⚠ = chậm: dự kiến không đạt chỉ tiêu", "en": "⚠ = lagging: projected below target"},
    "status_empty": {"vi": "Khảo sát {title} chưa có mẫu.", "en": "Survey {title} has no sample yet."},
    # paper: response rates by mode (khaosat status, /progress, the console's Progress page)
    "status_modes": {"vi": "Theo hình thức trả lời (phiếu hoàn thành, tỷ lệ trên mẫu): {modes}",
                     "en": "By mode (completes, rate over the sample): {modes}"},
    "mode_telegram": {"vi": "Telegram", "en": "Telegram"},
    "mode_zalo": {"vi": "Zalo", "en": "Zalo"},
    "mode_web": {"vi": "Trang web", "en": "Web"},
    "mode_paper": {"vi": "Giấy", "en": "Paper"},
    "mode_console": {"vi": "Dòng lệnh", "en": "Command line"},
    "no_survey": {"vi": "Hiện không có khảo sát nào dành cho quý vị.",
                  "en": "There is no survey for you at the moment."},
    # -- the chat core (bot/chat): channels without buttons, survey dates, languages ----------------
    "back_words_hint": {"vi": "(gõ “quay lại” hoặc “<” để quay lại câu trước)",
                        "en": "(type “back” or “<” to go back)"},
    # The same words as consent_unclear, so an unclear reply never asks for a word not on screen.
    "consent_typed_hint": {"vi": "Xin gõ 1 (hoặc “{yes}”, “có”) để bắt đầu, 2 (hoặc “{no}”, “không”) để từ chối.",
                           "en": "Please type 1 (or “{yes}”, “yes”) to begin, 2 (or “{no}”, “no”) to decline."},
    "help_typed": {
        "vi": "Trả lời bằng cách gõ số thứ tự của phương án (nhiều phương án: 1, 3) hoặc nội dung phương án.\n"
              "“quay lại” — về câu trước\n“bỏ qua” — bỏ qua câu không bắt buộc\n/resume — tiếp tục khảo sát\n"
              "/lang en — English\n/stop — dừng hẳn, không nhận nhắc nhở\n/privacy — dữ liệu của quý vị được "
              "dùng thế nào\n/xoa — rút lại đồng ý, xóa dữ liệu",
        "en": "Answer by typing the option's number (several: 1, 3) or its words.\n“back” — previous question\n"
              "“skip” — skip an optional question\n/resume — continue the survey\n/lang vi — tiếng Việt\n"
              "/stop — stop for good, no more reminders\n/privacy — how your data is used"
              "\n/delete — withdraw consent, delete your data"},
    "not_text_typed": {"vi": "Xin trả lời bằng chữ: gõ số thứ tự hoặc nội dung phương án.",
                       "en": "Please answer in text: type the option's number or its words."},
    "languages_available": {"vi": "Phiếu có các ngôn ngữ: {languages}. Gõ /lang và mã ngôn ngữ, ví dụ /lang en.",
                            "en": "This form is available in: {languages}. Send /lang and a code, e.g. /lang vi."},
    "survey_not_open": {"vi": "Khảo sát “{title}” chưa bắt đầu. Quý vị có thể trả lời từ ngày {opens}. "
                              "Xin cảm ơn quý vị!",
                        "en": "The survey “{title}” has not opened yet. You can answer from {opens}. Thank you!"},
    "survey_closed": {"vi": "Khảo sát “{title}” đã kết thúc ngày {closes} nên không nhận thêm câu trả lời. "
                            "Xin cảm ơn quý vị!",
                      "en": "The survey “{title}” closed on {closes} and takes no more answers. Thank you!"},
    "fieldwork_opened": {"vi": "Khảo sát “{title}” đã mở (từ {opens} đến {closes}).",
                         "en": "Fieldwork for “{title}” is open ({opens} to {closes})."},
    "fieldwork_closed": {"vi": "Khảo sát “{title}” đã kết thúc ngày {closes}; người đang trả lời được hoàn thành "
                               "thêm {grace} ngày.",
                         "en": "Fieldwork for “{title}” closed on {closes}; people already answering may finish "
                               "within {grace} day(s)."},
    # -- a respondent's rights (bot/chat/privacy.py; Law 91/2025/QH15, Decree 356/2025/NĐ-CP) ------
    "privacy_held_title": {"vi": "Dữ liệu về quý vị mà {controller} đang lưu:",
                           "en": "What {controller} holds about you:"},
    "privacy_stored": {"vi": "có lưu", "en": "stored"},
    "privacy_not_stored": {"vi": "không lưu", "en": "not stored"},
    "privacy_field_name": {"vi": "• Họ tên: {value}", "en": "• Name: {value}"},
    "privacy_field_phone": {"vi": "• Số điện thoại: {value}", "en": "• Phone number: {value}"},
    "privacy_field_chats": {"vi": "• Cuộc trò chuyện đã liên kết: {value}", "en": "• Linked chats: {value}"},
    "privacy_field_answers": {"vi": "• Câu trả lời: {count} câu, lưu dưới mã ẩn danh {pseudonym}",
                              "en": "• Answers: {count}, kept under the pseudonym {pseudonym}"},
    "privacy_field_consent": {"vi": "• Đồng ý tham gia: phiên bản {version} của thông báo, lúc {at}, qua {channel}",
                              "en": "• Consent: notice version {version}, at {at}, on {channel}"},
    "privacy_no_consent": {"vi": "• Đồng ý tham gia: chưa có", "en": "• Consent: not given"},
    "privacy_field_retention": {"vi": "• Họ tên, số điện thoại, mã cuộc trò chuyện và mã mời được xóa từ ngày {date}.",
                                "en": "• Names, phone numbers, chat ids and invitation codes are deleted from {date}."},
    "privacy_rights": {"vi": "Quý vị có thể rút lại đồng ý và yêu cầu xóa dữ liệu: gửi /xoa (hoặc viết “xóa dữ liệu "
                             "của tôi”).",
                       "en": "You may withdraw consent and ask for your data to be deleted: send /delete (or write "
                             "“delete my data”)."},
    # To the bot's coordinators (pseudonym only).
    "rights_request_coordinator": {
        "vi": "Yêu cầu về dữ liệu số {id} ({pseudonym}): người trả lời rút lại đồng ý và yêu cầu xóa dữ liệu. "
              "Hạn xác nhận {acknowledge_by}, hạn xử lý {handle_by} (Nghị định 356/2025/NĐ-CP). Xử lý trong bảng "
              "điều khiển, trang “Yêu cầu về dữ liệu”, hoặc bằng lệnh “khaosat privacy fulfil {id}”.",
        "en": "Data request no. {id} ({pseudonym}): the respondent withdrew consent and asked for deletion. "
              "Acknowledge by {acknowledge_by}, handle by {handle_by} (Decree 356/2025/NĐ-CP). Handle it in the "
              "console, page “Data requests”, or with “khaosat privacy fulfil {id}”."},
    "rights_nothing_held": {"vi": "Cuộc trò chuyện này chưa gắn với ai trong danh sách khảo sát, nên chúng tôi không "
                                  "lưu câu trả lời hay thông tin cá nhân nào của quý vị qua đây.",
                            "en": "This chat is not linked to anyone on the survey list, so we hold no answers or "
                                  "personal data of yours through it."},
    "rights_confirm": {"vi": "Quý vị muốn rút lại đồng ý và yêu cầu xóa toàn bộ câu trả lời và thông tin cá nhân của "
                             "mình? Sau khi xác nhận, chúng tôi ngừng gửi mọi câu hỏi và nhắc nhở. Gõ “/xoa có” để "
                             "xác nhận; gõ câu trả lời để tiếp tục khảo sát.",
                       "en": "Do you want to withdraw your consent and have all your answers and personal data "
                             "deleted? Once you confirm, we send no more questions or reminders. Type “/delete yes” "
                             "to confirm; answer the question to go on."},
    "rights_confirm_button": {"vi": "Quý vị muốn rút lại đồng ý và yêu cầu xóa toàn bộ câu trả lời và thông tin cá "
                                    "nhân của mình? Sau khi xác nhận, chúng tôi ngừng gửi mọi câu hỏi và nhắc nhở. "
                                    "Bấm nút bên dưới để xác nhận; trả lời câu hỏi để tiếp tục khảo sát.",
                              "en": "Do you want to withdraw your consent and have all your answers and personal "
                                    "data deleted? Once you confirm, we send no more questions or reminders. Press "
                                    "the button below to confirm; answer the question to go on."},
    "rights_opened": {"vi": "Đã nhận yêu cầu số {id} của quý vị lúc {at}. Chúng tôi đã ngừng gửi câu hỏi và nhắc "
                            "nhở. Dữ liệu của quý vị sẽ được xóa chậm nhất ngày {handle_by}, và quý vị sẽ được báo "
                            "khi xong.",
                      "en": "We have received your request no. {id} at {at}. We have stopped sending questions and "
                            "reminders. Your data will be deleted by {handle_by} at the latest, and we will tell "
                            "you when it is done."},
    "rights_pending": {"vi": "Yêu cầu xóa dữ liệu số {id} của quý vị đang được xử lý (chậm nhất ngày {handle_by}). "
                             "Chúng tôi không gửi thêm câu hỏi hay nhắc nhở nào.",
                       "en": "Your deletion request no. {id} is being handled (by {handle_by} at the latest). We "
                             "send no more questions or reminders."},
    "rights_done": {"vi": "Yêu cầu số {id} đã hoàn tất: câu trả lời và thông tin cá nhân của quý vị đã được xóa "
                          "khỏi hệ thống khảo sát. Đây là tin nhắn cuối cùng chúng tôi gửi quý vị. Xin cảm ơn.",
                    "en": "Request no. {id} is done: your answers and personal data have been deleted from the "
                          "survey system. This is the last message we send you. Thank you."},
    "export_not_here": {"vi": "Kênh này không gửi được tệp. Xin dùng lệnh “khaosat export” hoặc bot Telegram.",
                        "en": "This channel cannot send files. Please use “khaosat export” or the Telegram bot."},
    # The web channel's page (bot/web): buttons and labels around the questions.
    "web_title": {"vi": "Khảo sát ý kiến", "en": "Opinion survey"},
    # webmore: the data rights button on every page, and the withdrawal's two steps
    "web_data_rights": {"vi": "Quyền về dữ liệu cá nhân", "en": "Your data rights"},
    "web_withdraw": {"vi": "Rút lại đồng ý và yêu cầu xóa dữ liệu", "en": "Withdraw consent and delete my data"},
    "web_withdraw_yes": {"vi": "Có, rút lại đồng ý và xóa dữ liệu của tôi",
                         "en": "Yes, withdraw my consent and delete my data"},
    "web_next": {"vi": "Tiếp tục ➜", "en": "Next ➜"},
    "web_code_label": {"vi": "Mã mời (8 ký tự, in trên thư mời)", "en": "Invitation code (8 characters, on your letter)"},
    "web_code_submit": {"vi": "Bắt đầu", "en": "Begin"},
    "web_continue": {"vi": "Tiếp tục khảo sát", "en": "Continue the survey"},
    "web_stop": {"vi": "Dừng khảo sát", "en": "Stop the survey"},
    "web_switch_language": {"vi": "English", "en": "Tiếng Việt"},
    "web_your_answer": {"vi": "Câu trả lời của quý vị", "en": "Your answer"},
    "web_too_many_codes": {"vi": "Có quá nhiều lần nhập sai mã từ địa chỉ này. Xin quý vị thử lại sau một giờ.",
                           "en": "Too many wrong codes from this address. Please try again in an hour."},
    "web_page_expired": {"vi": "Trang đã cũ hoặc phiên làm việc đã hết hạn. Xin quý vị mở lại trang khảo sát.",
                         "en": "This page is out of date or the session has expired. Please open the survey again."},
    "web_not_understood": {"vi": "Xin lỗi, chúng tôi không hiểu yêu cầu này; câu trả lời của quý vị không thay đổi.",
                           "en": "Sorry, we did not understand that request; your answers are unchanged."},
    # -- hardening: a brute force on codes, a session a full quota ended -------------------------
    "code_busy": {"vi": "Vừa có rất nhiều lần nhập sai mã, nên việc kiểm tra mã tạm dừng với các cuộc trò chuyện "
                        "đã nhập sai. Xin quý vị thử lại sau vài phút.",
                  "en": "There have just been very many wrong codes, so codes are not checked for a while in chats "
                        "that already entered a wrong one. Please try again in a few minutes."},
    "code_flood_alert": {"vi": "⚠ Bot {bot}: {count} lần nhập sai mã mời trong một phút qua, có thể ai đó đang dò mã. "
                               "Người đã nhập sai phải chờ; người chưa nhập sai vẫn dùng mã đúng được.",
                         "en": "⚠ Bot {bot}: {count} wrong invitation codes in the last minute; someone may be "
                               "guessing codes. Chats that entered a wrong code wait; others can still use a right one."},
    "quota_ended": {"vi": "Phần trả lời của quý vị đã kết thúc. Xin chân thành cảm ơn quý vị!",
                    "en": "Your part in this survey has ended. Thank you very much!"},
    # repeats: "add another?" after each instance of a repeat without a count ({label}: the repeat's label)
    "add_another": {"vi": "Quý vị có muốn thêm một “{label}” nữa không? (đã có {count})",
                    "en": "Do you want to add another “{label}”? ({count} so far)"},
    "add_another_yes": {"vi": "Có, thêm", "en": "Yes, add one"},
    "add_another_no": {"vi": "Không, tiếp tục", "en": "No, go on"},
    "add_another_unclear": {"vi": "Xin chọn “{yes}” hoặc “{no}” (cũng có thể gõ 1 hoặc 2).",
                            "en": "Please choose “{yes}” or “{no}” (you can also type 1 or 2)."},
    # forms: geopoint questions (a shared location, or coordinates typed as “vĩ độ, kinh độ”)
    "geopoint_expected": {"vi": "vĩ độ, kinh độ, ví dụ 10.7769, 106.7009",
                          "en": "latitude, longitude, e.g. 10.7769, 106.7009"},
    "not_geopoint": {"vi": "Xin gửi vị trí, hoặc gõ vĩ độ và kinh độ cách nhau bởi dấu phẩy.",
                     "en": "Please share a location, or type the latitude and longitude separated by a comma."},
    "geopoint_out_of_range": {"vi": "Vĩ độ phải từ -90 đến 90 và kinh độ từ -180 đến 180.",
                              "en": "The latitude must be between -90 and 90 and the longitude between -180 and 180."},
    "location_not_asked": {"vi": "Câu hỏi này không hỏi vị trí; xin trả lời câu hỏi ở trên.",
                           "en": "This question does not ask for a location; please answer the question above."},
    "time_expected": {"vi": "giờ:phút, ví dụ 14:30", "en": "hours:minutes, e.g. 14:30"},
    "datetime_expected": {"vi": "ngày/tháng/năm giờ:phút, ví dụ 02/03/2026 14:30",
                          "en": "day/month/year hours:minutes, e.g. 02/03/2026 14:30"},
    "not_time": {"vi": "Xin nhập giờ theo dạng giờ:phút, ví dụ 14:30.", "en": "Please enter the time as hours:minutes, e.g. 14:30."},
    "not_datetime": {"vi": "Xin nhập ngày và giờ theo dạng ngày/tháng/năm giờ:phút, ví dụ 02/03/2026 14:30.",
                     "en": "Please enter the date and time as day/month/year hours:minutes, e.g. 02/03/2026 14:30."},
    "share_location": {"vi": "📍 Gửi vị trí hiện tại", "en": "📍 Send my current location"},
    # zalobundle: a map link with no coordinates in it (a short link), and a location Zalo did not pass on
    "map_link_without_point": {
        "vi": "Liên kết này không ghi tọa độ nên bot không đọc được (liên kết rút gọn như maps.app.goo.gl phải "
              "mở ra mới biết). Xin mở nó trong Google Maps, nhấn giữ lên điểm đó: vĩ độ, kinh độ hiện ở ô tìm "
              "kiếm; xin gõ hoặc dán hai số đó vào đây.",
        "en": "This link does not contain the coordinates, so the bot cannot read it (a short link such as "
              "maps.app.goo.gl has to be opened first). Please open it in Google Maps and long-press the place: "
              "the latitude and longitude appear in the search box; please type or paste those two numbers here."},
    "zalo_location_not_passed": {
        "vi": "Rất tiếc, Zalo không chuyển vị trí quý vị chia sẻ đến bot nên bot chưa nhận được. Xin gõ vĩ độ và "
              "kinh độ, ví dụ 10.7769, 106.7009. Cách tìm: mở Google Maps, nhấn giữ lên vị trí đó, tọa độ hiện ở ô "
              "tìm kiếm; chép và dán vào đây.",
        "en": "Sorry, Zalo does not pass a shared location on to the bot, so it did not arrive. Please type the "
              "latitude and longitude, e.g. 10.7769, 106.7009. To find them: open Google Maps and long-press the "
              "place; the coordinates appear in the search box; copy and paste them here."},
    # paper entry of a repeat's blocks ({block}: "Thành viên 4"; {count}: the count phrased, "câu 1")
    "paper_block_missing": {"vi": "Khối “{block}” để trống, nhưng theo {count} có {have} khối “{label}”: xin nhập "
                                  "khối này, hoặc sửa {count}.",
                            "en": "Block “{block}” is empty, but {count} gives {have} block(s) of “{label}”: type "
                                  "this block, or correct {count}."},
    "paper_block_beyond": {"vi": "Khối “{block}” có nhập, nhưng theo {count} chỉ có {have} khối “{label}”: xin xoá "
                                 "khối này, hoặc sửa {count}.",
                           "en": "Block “{block}” is filled, but {count} gives only {have} block(s) of “{label}”: "
                                 "clear this block, or correct {count}."},
    "paper_block_gap": {"vi": "Khối “{block}” có nhập nhưng khối “{previous}” trước nó để trống: xin nhập các khối "
                              "theo thứ tự.",
                        "en": "Block “{block}” is filled but block “{previous}” before it is empty: please type the "
                              "blocks in order."},
    "paper_block_skipped": {"vi": "Khối “{block}” có nhập, nhưng phần “{label}” bị bỏ qua theo hướng dẫn chuyển câu: "
                                  "xin xoá khối này, hoặc sửa câu trả lời trước.",
                            "en": "Block “{block}” is filled, but the form's logic skips “{label}”: clear this block, "
                                  "or correct the earlier answer."},
    # zalobundle: /export of a form with repeats (and media answers) sends one ZIP
    "export_caption_zip": {"vi": "Tệp ZIP gồm {tables} bảng: bảng chính và một bảng cho mỗi nhóm lặp lại.",
                           "en": "The ZIP holds {tables} tables: the main one and one per repeat."},
    "export_caption_zip_media": {
        "vi": "Tệp ZIP gồm {tables} bảng (bảng chính và một bảng cho mỗi nhóm lặp lại) và {media} tệp đa phương "
              "tiện của các câu trả lời.",
        "en": "The ZIP holds {tables} tables (the main one and one per repeat) and {media} media files of the answers."},
    # rank: asked one pick at a time, the options left shown with their first numbers.
    "rank_next": {"vi": "lựa chọn thứ {n} của quý vị?", "en": "your choice number {n}?"},
    "rank_so_far": {"vi": "đã xếp: {ranking}", "en": "ranked so far: {ranking}"},
    "rank_typed_hint": {"vi": "Gõ số của lựa chọn tiếp theo, hoặc cả thứ tự một lần, ví dụ {example}.",
                        "en": "Type the number of your next choice, or the whole order at once, e.g. {example}."},
    "rank_done_hint": {"vi": "(không bắt buộc xếp hết: gõ “bỏ qua” để dừng xếp ở đây)",
                       "en": "(you need not rank them all: type “skip” to stop here)"},
    "rank_already": {"vi": "“{text}” đã được xếp rồi; xin chọn trong các lựa chọn còn lại.",
                     "en": "“{text}” is ranked already; please choose among those left."},
    "rank_twice": {"vi": "Mỗi lựa chọn chỉ xếp một lần; xin gõ lại thứ tự, ví dụ {example}.",
                   "en": "Each choice is ranked once; please type the order again, e.g. {example}."},
    "rank_all": {"vi": "Xin xếp hạng hết các lựa chọn.", "en": "Please rank every choice."},
    "rank_undone": {"vi": "Đã bỏ lựa chọn thứ {n} (“{label}”).", "en": "Took back choice number {n} (“{label}”)."},
    # media questions: a file sent with the platform's attachment button (📎)
    "image_expected": {"vi": "một ảnh, gửi bằng nút đính kèm 📎", "en": "a photo, sent with the attachment button 📎"},
    "audio_expected": {"vi": "một đoạn ghi âm (tin nhắn thoại) hoặc tệp âm thanh, gửi bằng nút 🎤 hoặc 📎",
                       "en": "a voice message or an audio file, sent with the 🎤 or 📎 button"},
    "video_expected": {"vi": "một video, gửi bằng nút đính kèm 📎", "en": "a video, sent with the attachment button 📎"},
    "file_expected": {"vi": "một tệp, gửi bằng nút đính kèm 📎", "en": "a file, sent with the attachment button 📎"},
    "send_image": {"vi": "Xin gửi một ảnh bằng nút đính kèm 📎 (không gõ chữ).",
                   "en": "Please send a photo with the attachment button 📎 (not typed text)."},
    "send_audio": {"vi": "Xin gửi một tin nhắn thoại hoặc tệp âm thanh (không gõ chữ).",
                   "en": "Please send a voice message or an audio file (not typed text)."},
    "send_video": {"vi": "Xin gửi một video bằng nút đính kèm 📎 (không gõ chữ).",
                   "en": "Please send a video with the attachment button 📎 (not typed text)."},
    "send_file": {"vi": "Xin gửi một tệp bằng nút đính kèm 📎 (không gõ chữ).",
                  "en": "Please send a file with the attachment button 📎 (not typed text)."},
    "wrong_media": {"vi": "Tệp này không đúng loại câu hỏi cần. Xin gửi {expected}.",
                    "en": "This file is not of the kind the question asks for. Please send {expected}."},
    "media_not_received": {"vi": "Tin nhắn này không chuyển được vào khảo sát.",
                           "en": "This message could not be passed on to the survey."},
    # Zalo passes photos only to a bot (bot/zalo/channel.py ZALO_MEDIA)
    "zalo_image_expected": {"vi": "gửi một ảnh bằng nút gửi ảnh của Zalo",
                            "en": "send a photo with Zalo's photo button"},
    "zalo_file_expected": {"vi": "Zalo chỉ chuyển được ảnh: xin chụp và gửi ảnh của giấy tờ",
                           "en": "Zalo passes on photos only: please send a photo of the document"},
    "zalo_no_media_optional": {"vi": "Zalo không chuyển được ghi âm hay video vào khảo sát; xin gõ “bỏ qua” để sang câu sau",
                               "en": "Zalo cannot pass recordings or videos on to the survey; please type “skip” to go on"},
    "zalo_no_media_required": {"vi": "Zalo không chuyển được ghi âm hay video vào khảo sát; xin trả lời câu này trên "
                                     "trang web khảo sát (đường dẫn trong thư mời) hoặc liên hệ nhóm khảo sát",
                               "en": "Zalo cannot pass recordings or videos on to the survey; please answer this "
                                     "question on the survey's web page (the link in your letter) or contact the survey team"},
    "console_file_path": {"vi": "{expected}; trong cửa sổ lệnh: gõ đường dẫn tới tệp",
                          "en": "{expected}; in a terminal: type the path of the file"},
    "attachment_not_asked": {"vi": "Câu hỏi này không cần gửi tệp; xin trả lời câu hỏi ở trên.",
                             "en": "This question does not ask for a file; please answer the question above."},
    "media_too_big": {"vi": "Tệp này quá lớn (tối đa {limit} MB). Xin gửi một tệp nhỏ hơn.",
                      "en": "This file is too big (at most {limit} MB). Please send a smaller one."},
    # The web page's file input, where a messenger has its attachment button (bot/web/pages.py).
    "web_image_expected": {"vi": "chọn hoặc chụp một ảnh ở ô bên dưới", "en": "choose or take a photo below"},
    "web_audio_expected": {"vi": "chọn hoặc ghi một đoạn âm thanh ở ô bên dưới",
                           "en": "choose or record a sound file below"},
    "web_video_expected": {"vi": "chọn hoặc quay một video ở ô bên dưới", "en": "choose or record a video below"},
    "web_file_expected": {"vi": "chọn một tệp ở ô bên dưới", "en": "choose a file below"},
    "media_failed": {"vi": "Xin lỗi, chúng tôi chưa nhận được tệp này. Xin quý vị gửi lại.",
                     "en": "Sorry, we could not receive this file. Please send it again."},
    # A turn that failed inside khaosat (the database locked or unreachable, a bug): bot/chat/failures.py.
    "system_busy": {"vi": "Xin lỗi, hệ thống đang bận; xin quý vị gửi lại sau ít phút.",
                    "en": "Sorry, the system is busy; please send it again in a few minutes."},
}

#: Column and value labels of `khaosat export` (exporters/table.py): for analysts, not respondents,
#: so a table of its own; read with ``translate(EXPORT_LABELS, key, language)``.
EXPORT_LABELS: dict[str, dict[str, str]] = {
    "respondent": {"vi": "Mã người trả lời (bí danh)", "en": "Respondent id (pseudonym)"},
    "session": {"vi": "Mã phiên trả lời", "en": "Session id"},
    "form_id": {"vi": "Mã phiếu", "en": "Form id"},
    "form_version": {"vi": "Phiên bản phiếu", "en": "Form version"},
    "channel": {"vi": "Kênh trả lời", "en": "Channel"},
    # The wide layout's last channel and mode (exporters/table.py WIDE_SESSION_COLUMNS), beside channel.
    "last_channel": {"vi": "Kênh trả lời cuối cùng", "en": "Last channel"},
    "mode": {"vi": "Hình thức trả lời", "en": "Mode"},
    "status": {"vi": "Trạng thái phiên", "en": "Session status"},
    "language": {"vi": "Ngôn ngữ trả lời", "en": "Language answered in"},
    "started_at": {"vi": "Bắt đầu lúc", "en": "Started at"},
    "completed_at": {"vi": "Hoàn thành lúc", "en": "Completed at"},
    "updated_at": {"vi": "Cập nhật lần cuối lúc", "en": "Last updated at"},
    "duration_seconds": {"vi": "Thời gian trả lời (giây)", "en": "Duration (seconds)"},
    "disposition": {"vi": "Tình trạng người trả lời (AAPOR)", "en": "Respondent disposition (AAPOR)"},
    "disposition_at": {"vi": "Tình trạng đổi lúc", "en": "Disposition changed at"},
    "stratum": {"vi": "Tầng chọn mẫu", "en": "Sampling stratum"},
    "survey": {"vi": "Mã cuộc khảo sát", "en": "Survey id"},
    "group": {"vi": "Nhóm đối tượng", "en": "Respondent group"},
    "unit": {"vi": "Đơn vị", "en": "Unit"},
    "pi": {"vi": "Xác suất chọn vào mẫu", "en": "Inclusion probability"},
    "weight": {"vi": "Trọng số cơ bản (1/pi)", "en": "Base weight (1/pi)"},
    "sample_role": {"vi": "Vai trò trong mẫu (chính/dự phòng)", "en": "Sample role (main/reserve)"},
    "number_of_reminders": {"vi": "Số lần nhắc", "en": "Number of reminders"},
    "name": {"vi": "DỮ LIỆU CÁ NHÂN: họ tên", "en": "PERSONAL DATA: name"},
    "phone": {"vi": "DỮ LIỆU CÁ NHÂN: số điện thoại", "en": "PERSONAL DATA: phone"},
    "question": {"vi": "Câu hỏi", "en": "Question"},
    "type": {"vi": "Loại câu hỏi", "en": "Question type"},
    "value": {"vi": "Giá trị (mã)", "en": "Value (code)"},
    "value_label": {"vi": "Nhãn giá trị", "en": "Value label"},
    "changed_at": {"vi": "Trả lời/sửa lần cuối lúc", "en": "Last answered/changed at"},
    "answer_status": {"vi": "Tình trạng câu trả lời", "en": "Answer status"},
    # repeat tables (exporters/repeat_tables.py), as KoBoToolbox names their columns
    "row_index": {"vi": "Số thứ tự dòng (_index)", "en": "Row number (_index)"},
    "parent_table": {"vi": "Bảng cha", "en": "Parent table"},
    "parent_index": {"vi": "Dòng của bảng cha (_index của bảng cha)", "en": "Row of the parent table (its _index)"},
    "instance_number": {"vi": "Lần lặp thứ (trong dòng cha)", "en": "Instance number (within the parent row)"},
    "skipped": {"vi": "Bỏ qua (skipped)", "en": "Skipped (bỏ qua)"},
    "selected": {"vi": "Có chọn", "en": "Selected"},
    "not_selected": {"vi": "Không chọn", "en": "Not selected"},
    "sample_attribute": {"vi": "Thuộc tính mẫu", "en": "Sample attribute"},
    # One column per choice of a rank question: the rank the respondent gave it (1 = first).
    "rank_of": {"vi": "hạng", "en": "rank"},
}


def translate(table: dict[str, dict[str, str]], key: str, language: str, /, **values: object) -> str:
    """The one lookup for every vi/en table: the language asked for, else Vietnamese."""
    texts = table[key]
    text = texts.get(language) or texts[DEFAULT_UI_LANGUAGE]
    return text.format(**values) if values else text


def say(key: str, language: str, /, **values: object) -> str:
    return translate(_MESSAGES, key, language, **values)


def consent_words(language: str) -> dict[str, str]:
    """The consent options' labels, for the texts that name them (consent_unclear, consent_typed_hint)."""
    return {"yes": say("consent_yes", language), "no": say("consent_no", language)}


def ui_language(language: str) -> str:
    """The language for the software's own words: the form may have languages we do not, and
    for those English is read more widely than Vietnamese."""
    return language if language in UI_LANGUAGES else "en"
