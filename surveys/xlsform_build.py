"""The walk over a form's elements that builds a `Questionnaire` (the builder of `surveys.xlsform`).

Split out of `surveys/xlsform.py` to keep each module short: `_Builder` reads pyxform's JSON
element by element — settings and sheets, groups, questions, choices, choice filters, or_other,
randomize, media appearances, label media — and checks the names expressions refer to. Its
per-cell checks and lookups are inherited from `surveys.xlsform_cells.FormCells`; what it does with
features a chat cannot honour comes from `surveys.xlsform_extras.LenientBuilder`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from pyxform import aliases
from pyxform.xls2json_backends import DefinitionData

from surveys.expressions import Expression, references_in_text
from surveys.pyxform_places import Problem
from surveys.pyxform_places import header_in_row as _header_in_row
from surveys.pyxform_places import problem_from_pyxform as _problem_from_pyxform
from surveys.pyxform_places import sheet_rows as _sheet_rows
from surveys.xlsform_cells import FormCells
from surveys.xlsform_extras import (
    CHOICE_FILE,
    REPEAT_REASON,
    YES,
    Attachments,
    LenientBuilder,
)
from surveys.xlsform_media import LabelMediaReader
from surveys.xlsform_types import (
    _CHOICE_MEDIA,
    _DRAWN,
    _OTHER_LABEL,
    _OTHER_PROMPT,
    _SERVER_SETTINGS,
    _SUPPORTED_SETTINGS,
    _TYPE_ALIASES,
    _TYPES,
    _UNSUPPORTED_SHEETS,
    FormError,
    _device_metadata,
    _why_unaskable,
)
from surveys.model import (
    ANY_LANGUAGE,
    Choice,
    Group,
    Language,
    Location,
    Question,
    QuestionType,
    Questionnaire,
    Text,
)


class _Builder(FormCells, LenientBuilder, LabelMediaReader):
    def __init__(self, filename: str, data: bytes, workbook: DefinitionData, form: dict, warnings: list[str],
                 read_attachment: Callable[[str], bytes | None]):
        self.filename = filename
        self.read_files: dict[str, bytes] = {}  # attachments found, kept with the form

        def read_and_keep(name: str) -> bytes | None:
            content = read_attachment(name)
            if content is not None:
                self.read_files[name] = content
            return content

        self.read_file = read_and_keep
        self.attachments = Attachments(read_and_keep, self._choice_tables(workbook))
        #: Name of the `loop` being read: every question inside it is UNASKABLE.
        self.repeat: str | None = None
        #: `NAME_count` calculations pyxform generated for a literal `repeat_count`: name → source.
        self.generated_counts: dict[str, str] = {}
        self.repeat_members: dict[int, str] = {}  # index in self.questions → its repeat
        self.settings: dict[str, str] = {}  # settings the chat does not use, as written
        self.media_lists: set[str | None] = set()  # choice lists whose media were warned about
        self.unused_columns: dict[str, tuple[str, list[int]]] = {}  # header → (key, survey rows)
        self.data = data
        self.workbook = workbook
        self.form = form
        self.pyxform_warnings = warnings
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.preloads: set[str] = set()  # attributes of the sampled person the expressions read
        self.survey_rows: list[dict] = workbook.survey or []
        self.row_cursor = 0
        self.default_language = self._default_language()
        self.languages: dict[str, Language] = {}
        self.questions: list[Question] = []
        self.groups: dict[str, Group] = {}

    # -- whole form -------------------------------------------------------------------

    def build(self) -> Questionnaire:
        self._check_settings()
        self._check_sheets()
        self._element_list(self.form.get("children", []), ())
        for message in self.pyxform_warnings:
            self.warnings.append(str(_problem_from_pyxform(message, self.workbook)))
        self._report_unused_columns()
        self._report_unreadable_attachments()
        self._qualify_repeat_names()
        self._check_references()
        if not any(q.type.is_asked for q in self.questions) and not self.problems:
            if any(q.type is QuestionType.UNASKABLE for q in self.questions):
                self.warnings.append(f"{Location('survey')}: no question of this form can be asked in a chat; "
                                     "a session shows its notes and ends")
            else:
                self._problem(Location("survey"), "the form asks no question")
        if self.problems:
            raise FormError(self.filename, self.problems)
        languages = tuple(self.languages.values()) or (Language(self.default_language, self.default_language),)
        return Questionnaire(
            form_id=str(self.form.get("id_string") or Path(self.filename).stem),
            version=self._version(),
            title=str(self.form.get("title") or self.form.get("id_string") or ""),
            default_language=self.default_language,
            languages=languages,
            questions=tuple(self.questions),
            groups=self.groups,
            warnings=tuple(self.warnings),
            settings=self.settings,
            preloads=tuple(sorted(self.preloads)),
            attachments=dict(sorted(self.read_files.items())),
        )

    def _version(self) -> str:
        version = self.form.get("version")
        if version:
            return str(version)
        digest = hashlib.sha256(self.data).hexdigest()[:10]
        self.warnings.append(f"settings: no 'version'; using the content hash 'sha-{digest}'")
        return f"sha-{digest}"

    def _default_language(self) -> str:
        language = self.form.get("default_language")
        if not language or language == "default":
            return "vi"
        return Language.from_column(language).code

    def _check_settings(self) -> None:
        for row_index, row in enumerate(self.workbook.settings or []):
            for header, value in row.items():
                setting = header.strip().lower()
                setting = aliases.settings_header.get(setting, setting)
                if value in (None, "") or setting in _SUPPORTED_SETTINGS:
                    continue
                location = Location("settings", row_index + 2, header)
                self.settings[header] = str(value)
                if setting in _SERVER_SETTINGS:
                    self.warnings.append(f"{location}: ignored, it only concerns ODK servers and web forms")
                elif setting == "allow_choice_duplicates":
                    self.warnings.append(f"{location}: choice names may repeat in a list; the chat tells "
                                         "choices apart by their place in the list, and exports their names")
                else:
                    self.warnings.append(f"{location}: setting '{header}' is not used by a chat survey; ignored")

    def _check_sheets(self) -> None:
        for sheet, what in _UNSUPPORTED_SHEETS.items():
            if _sheet_rows(self.workbook, sheet):
                self.warnings.append(f"{Location(sheet, 2)}: the '{sheet}' sheet is ignored: "
                                     f"a chat survey does not use {what}")

    # -- elements -----------------------------------------------------------------------

    def _element_list(self, elements: list[dict], groups: tuple[str, ...]) -> None:
        for position, element in enumerate(elements):
            following = elements[position + 1] if position + 1 < len(elements) else None
            self._element(element, groups, following)

    def _element(self, element: dict, groups: tuple[str, ...], following: dict | None = None) -> None:
        kind = element.get("type", "")
        name = element.get("name", "")
        if kind == "group" and element.get("control", {}).get("bodyless"):
            return  # pyxform's `meta` group (instanceID; an entities sheet is ignored with a warning)
        row = self._find_row(name)
        if row is None:
            self._generated(element, groups, following)
            return
        location = Location("survey", row + 2, "type")
        metadata = self._check_keys(element, row)
        written = self._raw(row, "type") or kind
        if kind in ("group", "repeat", "loop"):
            self._group(element, groups, location)
            return
        if self.repeat is not None:
            self._unaskable(element, groups, location, written, REPEAT_REASON.format(self.repeat), warn=False)
            return
        if kind == "select one external" and (external := self._external_choices(element)):
            element, kind = external, "select one"
        if why := _why_unaskable(kind):
            self._unaskable(element, groups, location, written, why, metadata)
            return
        if _device_metadata(kind):
            self.warnings.append(f"{location}: '{written}' has no value in a chat; the column stays empty")
            self.questions.append(Question(name=name, type=QuestionType.EMPTY_METADATA, groups=groups,
                                           source_type=written, location=location))
            return
        if kind.startswith("select") and CHOICE_FILE.match(str(element.get("itemset") or "")):
            found = self._choices_from_file(element)
            if isinstance(found, str):
                self._unaskable(element, groups, location, written, found, metadata)
                return
            element = found
        if kind == "range":
            found = self._range(element, location)
            if isinstance(found, str):
                self._unaskable(element, groups, location, written, found, metadata)
                return
            element, kind = found
        target, implied_constraint = _TYPE_ALIASES.get(kind, (kind, None))
        if target not in _TYPES:
            self._problem(location, f"type '{written}' is not supported")
            return
        if implied_constraint and not element.get("bind", {}).get("constraint"):
            element = {**element, "bind": {**element.get("bind", {}), "constraint": implied_constraint}}
        question = self._read_only(self._question(element, _TYPES[target], groups, row, location), element)
        if question.type is QuestionType.CALCULATE and question.calculation is None:  # dropped with a warning
            question = replace(question, type=QuestionType.UNASKABLE, unaskable="a calculation it does not evaluate")
        if question.type.is_shown and element.get("media"):
            question = replace(question, media=self._label_media(element, row))
        self.questions.append(replace(question, metadata=metadata) if metadata else question)

    def _generated(self, element: dict, groups: tuple[str, ...], following: dict | None) -> None:
        """An element pyxform generated (it is on no row of the sheet).

        pyxform generates a `NAME_other` text for `or_other`, a header select and a label
        note for a `table-list` group (named after the row that caused them), and a
        `NAME_count` calculation for a repeat's `repeat_count`. Each is placed at the row
        that caused it; anything else generated is skipped with a warning.
        """
        name = element.get("name", "")
        if self.repeat is not None and element.get("type") not in ("group", "repeat"):
            location = Location("survey")
            self.repeat_members[len(self.questions)] = self.repeat
            self.questions.append(Question(name=name, type=QuestionType.UNASKABLE, groups=groups,
                                           source_type=element.get("type", ""), location=location,
                                           unaskable=REPEAT_REASON.format(self.repeat)))
            return
        if generated_other := self._generated_other(element):
            select = next((q for q in reversed(self.questions) if q.name == generated_other), None)
            location = select.location if select else Location("survey")
            self.questions.append(self._question(element, QuestionType.TEXT, groups, None, location))
            return
        table_list = re.fullmatch(r"(generated_table_list_label|reserved_name_for_field_list_labels)_(\d+)", name)
        if table_list and table_list.group(1) == "reserved_name_for_field_list_labels":
            return  # the row of choice labels heading a table; each question shows its own choices
        if table_list:
            # The group's label and hint, moved by pyxform into a note shown before the table.
            location = Location("survey", int(table_list.group(2)), "label")
            self.questions.append(self._question(element, QuestionType.NOTE, groups, None, location))
            return
        if (following and following.get("type") == "repeat" and name == f"{following.get('name')}_count"
                and element.get("type") == "calculate"):
            # The repeat that follows reads it as its count: it becomes that repeat's own count.
            self.generated_counts[name] = str(element.get("bind", {}).get("calculate", ""))
            return
        self.warnings.append(f"{Location('survey')}: '{name}' ({element.get('type')}) was generated by pyxform "
                             "for a feature this loader does not know; it is on no row of the sheet and is ignored")

    def _group(self, element: dict, groups: tuple[str, ...], location: Location) -> None:
        name = element["name"]
        row = location.row - 2 if location.row else None
        appearance = element.get("control", {}).get("appearance")
        self.groups[name] = Group(
            name=name,
            label=self._text(element.get("label")),
            relevant=self._expression(element.get("bind", {}).get("relevant"), row, "relevant"),
            parents=groups,
            location=location,
            appearance=appearance or None,
        )
        if appearance:
            self._check_appearance(appearance, row)
        opens_loop = element.get("type") == "loop" and self.repeat is None
        if opens_loop:
            self.repeat = name
            self.warnings.append(f"{location}: loop '{name}' is not asked in this version: the questions "
                                 "in it are skipped and exported as missing")
        first = len(self.questions)
        self._element_list(element.get("children", []), groups + (name,))
        if opens_loop:
            self.repeat = None
        if element.get("type") == "repeat":
            self._repeat(name, element, first, row)

    def _question(self, element: dict, kind: QuestionType, groups: tuple[str, ...],
                  row: int | None, location: Location) -> Question:
        bind = element.get("bind", {})
        required = self._required(bind.get("required"), row)
        if kind is QuestionType.CALCULATE and not bind.get("calculate"):
            self._problem(Location("survey", location.row, "calculation"), "a calculate needs a calculation")
        appearance = element.get("control", {}).get("appearance")
        if appearance and kind.is_media:
            appearance = self._media_appearance(appearance, row)
        if appearance:
            self._check_appearance(appearance, row)
        choices: tuple[Choice, ...] = ()
        if kind.is_select:
            choices = self._choices(element, location)
        label = self._text(element.get("label"))
        if generated_other := self._generated_other(element):
            label = _OTHER_PROMPT
            bind = {**bind, "relevant": f"selected(${{{generated_other}}}, 'other')"}
        if kind.is_shown and not label:
            label = self._text(element.get("hint")) or Text({ANY_LANGUAGE: element["name"]})
            self.warnings.append(f"{Location('survey', location.row, 'label')}: '{element['name']}' has no label; "
                                 "the chat shows its hint, or else its name")
        return Question(
            name=element["name"],
            type=kind,
            label=label,
            hint=self._text(element.get("hint")),
            required=required,
            required_message=self._text(bind.get("jr:requiredMsg")),
            relevant=self._expression(bind.get("relevant"), row, "relevant"),
            constraint=self._expression(bind.get("constraint"), row, "constraint", allow_current=True),
            constraint_message=self._text(bind.get("jr:constraintMsg")),
            calculation=self._expression(bind.get("calculate"), row, "calculation"),
            choices=choices,
            choice_list=element.get("list_name"),
            choice_filter=self._choice_filter(element, choices, row),
            # A default worked out by an expression (pyxform's `_dynamic_default`) is not used.
            default=None if element.get("default") in (None, "") or element.get("_dynamic_default")
            else str(element["default"]),
            appearance=appearance,
            groups=groups,
            source_type=self._raw(row, "type") or element.get("type", ""),
            location=location,
            **(self._randomize(element, row) if kind.is_select else {}),
            accept=str(element.get("control", {}).get("accept") or "").strip() if kind.is_media else "",
        )

    def _randomize(self, element: dict, row: int | None) -> dict[str, Any]:
        """`parameters: randomize=true [seed=…]` of a choice list (pyxform checked the words)."""
        parameters = element.get("parameters") or {}
        if str(parameters.get("randomize", "")).strip().lower() not in YES:
            return {}
        return {"randomize": True, "randomize_seed": self._expression(parameters.get("seed"), row, "parameters")}

    def _media_appearance(self, appearance: str, row: int | None) -> str | None:
        """A media question's appearance: a drawing (`signature`, `draw`, `annotate`) is asked for
        as a photo of it, said once as a warning; the rest is checked as any appearance."""
        words = str(appearance).split()
        drawn = [word for word in words if word in _DRAWN]
        if drawn:
            self.warnings.append(f"{Location('survey', self._row_number(row), 'appearance')}: appearance "
                                 f"{', '.join(drawn)}: a chat cannot draw, so it asks for a photo of it "
                                 "(sent with the attachment button)")
        rest = [word for word in words if word not in _DRAWN]
        return " ".join(rest) or None

    def _choice_filter(self, element: dict, choices: tuple[Choice, ...], row: int | None) -> Expression | None:
        """The choice_filter, whose bare names must be columns of the filtered choice list.

        A bare name reads a column of each choice (`district = ${province}`); one that names
        no column reads as empty for every choice, which is a typo, not a filter.
        """
        expression = self._expression(element.get("choice_filter"), row, "choice_filter",
                                      allow_bare_names=True, allow_current=True)
        if expression is None:
            return None
        columns = {"name"} | {column for choice in choices for column in choice.columns}
        for bare in sorted(expression.bare_names - columns):
            self._problem(Location("survey", self._row_number(row), self._column_for(row, "choice_filter")),
                          f"choice_filter reads '{bare}', which is no column of the choice list "
                          f"'{element.get('list_name')}' (its columns: {', '.join(sorted(columns))})")
        return expression

    def _generated_other(self, element: dict) -> str | None:
        """The select's name if pyxform generated this `_other` text question for `or_other`.

        pyxform writes its relevance as an XPath path and its label in English only; the chat
        shows it in the respondent's language instead.
        """
        relevant = element.get("bind", {}).get("relevant", "")
        match = re.fullmatch(r"selected\(\.\./(.+), 'other'\)", relevant or "")
        if match and element.get("type") == "text" and element["name"] == f"{match.group(1)}_other":
            return match.group(1)
        return None

    def _choices(self, element: dict, location: Location) -> tuple[Choice, ...]:
        list_name = element.get("list_name") or element.get("itemset")
        choices = []
        # A randomized list is not written into the question by pyxform (ODK shuffles the list it
        # names): read it from the form's lists.
        listed = element.get("choices")
        if not listed:
            listed = (self.form.get("choices") or {}).get(element.get("itemset")) or []
            row = location.row - 2 if location.row else None
            if "or_other" not in self._raw(row, "type"):
                # pyxform adds or_other's choice to the shared list: only the question that asks for it shows it
                listed = [c for c in listed if c.get("name") != "other" or self._choice_row(list_name, "other")]
        for position, raw in enumerate(listed or []):
            name = str(raw.get("name", ""))
            label = self._text(raw.get("label"))
            if name == "other" and label.by_language and set(label.by_language.values()) == {"Other"}:
                label = _OTHER_LABEL  # pyxform's English-only label for or_other
            media = _CHOICE_MEDIA & set(raw)
            if media and list_name not in self.media_lists:
                self.media_lists.add(list_name)
                row = self._choice_row(list_name, name)
                column = _header_in_row(self.workbook.choices or [], row - 2 if row else None, sorted(media)[0])
                self.warnings.append(f"{Location('choices', row, column)}: images, audio and video of the choices "
                                     f"of '{list_name}' are not sent in a chat; their labels are")
            columns = {k: str(v) for k, v in raw.items() if k not in {"name", "label", *_CHOICE_MEDIA}}
            choices.append(Choice(name=name, label=label or Text({ANY_LANGUAGE: name}),
                                  key=str(position + 1), columns=columns))
        if not choices:
            self._problem(location, f"the choice list '{list_name}' is empty")
        return tuple(choices)

    # -- checks -------------------------------------------------------------------------

    def _check_references(self) -> None:
        names = {q.name for q in self.questions} | {g.name for g in self.groups.values() if g.repeat}
        for question in self.questions:
            for column, expression in (("relevant", question.relevant), ("constraint", question.constraint),
                                       ("calculation", question.calculation), ("required", question.required),
                                       ("choice_filter", question.choice_filter),
                                       ("parameters", question.randomize_seed)):
                if expression is not None:
                    self._check_names(expression.references, names, question.location, column)
            for column, text in (("label", question.label), ("hint", question.hint)):
                for value in text.by_language.values():
                    self._check_names(references_in_text(value), names, question.location, column)
        for group in self.groups.values():
            if group.relevant is not None:
                self._check_names(group.relevant.references, names, group.location, "relevant")
