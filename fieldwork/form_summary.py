"""What a chat will do with a questionnaire, told before fieldwork.

`khaosat form check` prints it and the console shows it (after a survey is loaded, and on each
stored form's page), both from `summarize` and `question_rows`, so what a coordinator reads in
the console is what the command line says. The warnings and the reasons a question is not asked
are the loader's own (`surveys.xlsform`), with their sheet, row and column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from surveys.messages import translate
from surveys.model import Question, Questionnaire, QuestionType

#: What the chat does with a question type where that is not just "asked as written", by type
#: (`QuestionType` values), in Vietnamese and English. README's type table says it at length.
CHAT_BY_TYPE: dict[str, dict[str, str]] = {
    "image": {"vi": "gửi bằng nút đính kèm 📎; Zalo chỉ chuyển ảnh (gửi bằng nút gửi ảnh)",
              "en": "sent with the attachment button 📎; Zalo passes photos only (sent as a photo)"},
    "file": {"vi": "gửi bằng nút đính kèm 📎; Zalo chỉ chuyển ảnh: người trả lời gửi ảnh chụp giấy tờ",
             "en": "sent with the attachment button 📎; Zalo passes photos only: a photo of the document"},
    "audio": {"vi": "gửi bằng nút đính kèm 📎 (tin nhắn thoại, tệp âm thanh); Zalo không chuyển được: "
                    "bỏ qua nếu không bắt buộc, nếu bắt buộc thì trả lời trên trang web",
              "en": "sent with the attachment button 📎 (voice note, audio file); Zalo cannot carry it: "
                    "skipped when optional, answered on the web page when required"},
    "video": {"vi": "gửi bằng nút đính kèm 📎; Zalo không chuyển được: bỏ qua nếu không bắt buộc, "
                    "nếu bắt buộc thì trả lời trên trang web",
              "en": "sent with the attachment button 📎; Zalo cannot carry it: skipped when optional, "
                    "answered on the web page when required"},
    "geopoint": {"vi": "Telegram: nút “Gửi vị trí hiện tại”; Zalo và gõ chữ: “vĩ độ, kinh độ” hoặc đường dẫn bản đồ",
                 "en": "Telegram: a “send my location” button; Zalo and typed: “latitude, longitude” or a map link"},
    "rank": {"vi": "chọn lần lượt: lựa chọn thứ 1, rồi thứ 2 trong các lựa chọn còn lại…",
             "en": "picked one after another: the 1st choice, then the 2nd among those left…"},
    "time": {"vi": "gõ giờ (14:30, 14h30)", "en": "the time typed (14:30, 14h30)"},
    "dateTime": {"vi": "gõ ngày rồi giờ (02/03/2026 14:30)", "en": "a date then a time typed (02/03/2026 14:30)"},
    "acknowledge": {"vi": "một nút OK", "en": "an OK button"},
    "calculate": {"vi": "tự tính sau mỗi câu trả lời, không hiện ra", "en": "worked out after every answer, never shown"},
    "empty_metadata": {"vi": "thông tin thiết bị: để trống", "en": "device metadata: left empty"},
    #: Not a type: the media of labels (`media::image`…), when the form has some.
    "label_media": {"vi": "gửi kèm câu hỏi; Zalo chỉ hiện ảnh, và chỉ khi [web] public_url phục vụ chúng",
                    "en": "sent with the question; Zalo shows images only, and only where [web] public_url serves them"},
    "unaskable": {"vi": "không hỏi trong chat: bỏ qua, xuất ra là thiếu với mã riêng",
                  "en": "not asked in a chat: skipped, exported as missing with its own code"},
}
#: Why a chat does not ask a question, in Vietnamese, by its XLSForm type as written (the first
#: word): the loader's reasons (`surveys.xlsform_extras.UNASKABLE_TYPES`) are in English, and a
#: coordinator reads Vietnamese first. A type not named here shows the loader's reason alone.
NOT_ASKED_VI = {
    "geotrace": "đường và vùng trên bản đồ (câu geopoint thì hỏi được)",
    "geoshape": "đường và vùng trên bản đồ (câu geopoint thì hỏi được)",
    "start-geopoint": "vị trí của thiết bị (chat không có thiết bị để đọc)",
    "background-geopoint": "vị trí của thiết bị (chat không có thiết bị để đọc)",
    "osm": "đối tượng bản đồ OSM",
    "background-audio": "ghi âm nền (chat không có thiết bị để ghi)",
    "barcode": "quét mã vạch",
    "hidden": "trường ẩn",
    "select_one_from_file": "lựa chọn đọc từ một tệp không đi kèm bảng hỏi",
    "select_multiple_from_file": "lựa chọn đọc từ một tệp không đi kèm bảng hỏi",
    "select_one_external": "danh sách lựa chọn ngoài, không có trang external_choices",
    "xml-external": "dữ liệu XML bên ngoài",
    "csv-external": "dữ liệu bên ngoài",
    "include": "bảng hỏi khác được gộp theo tên",
}
#: Said of the repeats, when the form has some.
REPEATS_NOTE = {"vi": "câu hỏi trong nhóm lặp lại được hỏi một lần cho mỗi lượt; mỗi nhóm xuất ra một bảng riêng",
                "en": "their questions are asked once per instance; each is exported as a table of its own"}


def chat_note(kind: str, language: str) -> str:
    """What the chat does with questions of type ``kind`` ("" when they are asked as written)."""
    return translate(CHAT_BY_TYPE, kind, language) if kind in CHAT_BY_TYPE else ""


@dataclass(frozen=True)
class TypeCount:
    kind: str  # a QuestionType value
    count: int

    def note(self, language: str) -> str:
        return chat_note(self.kind, language)


@dataclass(frozen=True)
class NotAsked:
    """A question a chat cannot ask: skipped, exported as missing with its own code."""

    name: str
    source_type: str  # as written in the form, e.g. "geotrace"
    place: str  # sheet, row and column
    reason: str  # what a chat cannot do, e.g. "lines and areas on a map (a geopoint is asked)"

    def reason_in(self, language: str) -> str:
        """The reason in ``language`` where it has been translated ("" otherwise: show ``reason``)."""
        return translated_reason(self.source_type, language)


def translated_reason(source_type: str, language: str) -> str:
    if language != "vi":
        return ""
    return NOT_ASKED_VI.get(source_type.split(" ", 1)[0].lower(), "")


@dataclass(frozen=True)
class FormSummary:
    form_id: str
    version: str
    title: str
    #: (code, name) of each language of the form's labels.
    languages: tuple[tuple[str, str], ...]
    default_language: str
    asked: int
    groups: int
    types: tuple[TypeCount, ...]  # by type name
    #: The repeats as `surveys.repeats.describe` names them ("" without repeats).
    repeats: str
    warnings: tuple[str, ...]
    not_asked: tuple[NotAsked, ...]
    #: (kind, number of files) of the media the labels carry (`media::image`…), by kind.
    label_media: tuple[tuple[str, int], ...] = ()

    def label_media_note(self, language: str) -> str:
        return chat_note("label_media", language)

    def notes(self, language: str) -> list[tuple[str, int, str]]:
        """(type, count, what the chat does) for the types where that matters."""
        return [(t.kind, t.count, t.note(language)) for t in self.types if t.note(language)]


def not_asked(question: Question) -> NotAsked:
    return NotAsked(question.name, question.source_type, str(question.location or ""), question.unaskable)


def summarize(form: Questionnaire) -> FormSummary:
    """The plain summary of ``form`` that `form check` prints and the console shows."""
    counts = Counter(q.type.value for q in form.questions)
    repeats = ""
    if form.has_repeats:
        from surveys.repeats import describe

        repeats = describe(form)
    return FormSummary(
        form_id=form.form_id, version=form.version, title=form.title,
        languages=tuple((lang.code, lang.name) for lang in form.languages),
        default_language=form.default_language, asked=len(form.asked), groups=len(form.groups),
        types=tuple(TypeCount(kind, count) for kind, count in sorted(counts.items())), repeats=repeats,
        warnings=tuple(form.warnings), not_asked=tuple(not_asked(q) for q in form.unaskable),
        label_media=tuple(sorted(Counter(kind for q in form.questions for kind, files in q.media.items()
                                         for _ in set(files.by_language.values())).items())))


@dataclass(frozen=True)
class QuestionRow:
    """One question of the form, in form order, as the console's form page lists it."""

    number: int
    name: str
    kind: str  # the type as written (`source_type`), else the model's
    #: The type the chat treats it as where that is another (a read_only text: note; photo: image).
    shown_as: str
    labels: dict[str, str]  # language code → label ("" where the form has none)
    relevant: str  # the question's own `relevant`, as written
    groups: tuple[str, ...]  # enclosing groups, outermost first
    repeated: bool  # inside a repeat: asked once per instance
    not_asked: str  # why a chat cannot ask it ("" when it is asked or shown)
    place: str

    @property
    def is_asked(self) -> bool:
        return not self.not_asked

    def not_asked_in(self, language: str) -> str:
        """Why it is not asked, in ``language`` where translated ("" otherwise: show ``not_asked``)."""
        return translated_reason(self.kind, language) if self.not_asked else ""


def question_rows(form: Questionnaire, languages: tuple[str, ...] = ("vi", "en")) -> list[QuestionRow]:
    """Every question of ``form`` in order, numbered from 1, with its labels in ``languages``."""
    rows = []
    for number, question in enumerate(form.questions, 1):
        kind = question.source_type or question.type.value
        other = question.type is not QuestionType.UNASKABLE and question.type.value != kind.split(" ", 1)[0]
        labels = {lang: question.label.get(lang, form.default_language) if question.label else ""
                  for lang in languages}
        rows.append(QuestionRow(
            number=number, name=question.name, kind=kind, shown_as=question.type.value if other else "", labels=labels,
            relevant=question.relevant.source if question.relevant is not None else "", groups=question.groups,
            repeated=bool(question.repeats),
            not_asked=(question.unaskable or "?") if question.type is QuestionType.UNASKABLE else "",
            place=str(question.location or "")))
    return rows
