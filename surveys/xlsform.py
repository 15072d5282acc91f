"""Load an XLSForm (.xlsx, .xls, .csv, .md) into a `Questionnaire`.

pyxform does the reading and its own validation (its workbook-to-JSON step); this module
decides what a chat survey can honour. Everything a chat cannot do is an error naming the
sheet, row and column, because a column silently ignored is a question asked wrongly.

This module holds the entry points; the walk over the form is `surveys.xlsform_build`, its
per-cell checks `surveys.xlsform_cells`, the vocabulary `surveys.xlsform_types`, and what is
done with features a chat cannot honour `surveys.xlsform_extras`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Iterator, Mapping

from pyxform.builder import create_survey_element_from_dict
from pyxform.errors import PyXFormError
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import DefinitionData, get_xlsform

from surveys.pyxform_places import Problem, canonical_column  # noqa: F401 (canonical_column is public here)
from surveys.pyxform_places import problem_from_pyxform as _problem_from_pyxform
from surveys.xlsform_build import _Builder
# FormError is raised by the builder too, so it is defined with the vocabulary; it is public here.
from surveys.xlsform_types import CHAT_APPEARANCES, FormError  # noqa: F401
from surveys.model import Location, Questionnaire

__all__ = [
    "CHAT_APPEARANCES", "SUPPORTED_SUFFIXES", "FormError", "Problem", "canonical_column",
    "iter_form_files", "load_questionnaire", "load_questionnaire_bytes",
]

SUPPORTED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".md")


def load_questionnaire(path: str | Path) -> Questionnaire:
    """Load a form file; CSV files it reads (pulldata, select_one_from_file) are read beside it."""
    path = Path(path)
    if not path.is_file():
        raise FormError(str(path), [Problem(Location("file"), "no such file")])

    def beside(name: str) -> bytes | None:
        attachment = path.parent / name
        return attachment.read_bytes() if name == Path(name).name and attachment.is_file() else None

    return load_questionnaire_bytes(path.read_bytes(), path.name, beside)


def load_questionnaire_bytes(data: bytes, filename: str,
                             attachments: Mapping[str, bytes] | Callable[[str], bytes | None] | None = None
                             ) -> Questionnaire:
    """Load from bytes, as stored in the database, so a stored form loads like a file.

    `attachments` gives the files shipped beside the form by file name (`prices.csv`): a
    mapping, or a function returning the bytes or None.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise FormError(filename, [Problem(Location("file"),
                        f"unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}")])
    workbook: DefinitionData | None = None
    if not data.strip():
        raise FormError(filename, [Problem(Location("file"), "the file is empty")])
    try:
        workbook = get_xlsform(data, file_type=suffix)
        warnings: list[str] = []
        form = workbook_to_json(workbook, fallback_form_name=Path(filename).stem, warnings=warnings)
    except PyXFormError as error:
        if "was not recognized as a supported type" in str(error):
            # pyxform's words name its own API, not the file the person gave.
            raise FormError(filename, [Problem(Location("file"), f"this is not a readable {suffix} XLSForm: "
                                               "save the questionnaire from Excel, LibreOffice or a text editor "
                                               "as .xlsx, .xls, .csv or markdown (.md) tables")]) from None
        raise FormError(filename, [_problem_from_pyxform(str(error), workbook)]) from None
    except Exception as error:  # pyxform raises bare errors on files that are not XLSForms
        raise FormError(filename, [Problem(Location("file"), "cannot read the file as an XLSForm (it needs "
                                           f"a 'survey' sheet with a 'type' column): {error}")]) from None
    if attachments is None or isinstance(attachments, Mapping):
        read = (attachments or {}).get
    else:
        read = attachments
    questionnaire = _Builder(filename, data, workbook, form, warnings, read).build()
    try:
        # pyxform's last checks (labels, includes...) run when it builds the XForm: a form it
        # would not convert is refused here too, once this loader found nothing to say.
        create_survey_element_from_dict(copy.deepcopy(form)).to_xml(validate=False)
    except PyXFormError as error:
        raise FormError(filename, [_problem_from_pyxform(str(error), workbook)]) from None
    return questionnaire


# Files that sit beside forms and are no forms (a folder of forms keeps its sources and licences).
_NOT_FORMS = {"readme", "license", "licence", "sources", "notice", "changelog"}


def iter_form_files(folder: Path) -> Iterator[Path]:
    """Every file under `folder` that the loader would try, in a stable order."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and path.stem.lower() not in _NOT_FORMS:
            yield path
