"""The packages' imports point one way, read from the source (ast), so a new upward import fails here.

Layers, top to bottom: the chat and the console (`bot`, `console`, which may import each other),
the analysts' facade (`khaosat`), fieldwork operations (`fieldwork`), exporters (`exporters`),
questionnaires and the engine (`surveys`), storage (`storage`). A package imports only its own
layer and those below it. Imports inside functions count too: a lazy import is still a dependency.
The engine (`surveys/engine*.py`, the session, the expression language) is sans-I/O: everything it
imports, followed all the way down, stays inside `surveys` (so never reaches storage).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Each package's layer; higher imports lower, never the other way.
LAYER = {"storage": 0, "surveys": 1, "exporters": 2, "fieldwork": 3, "khaosat": 4, "bot": 5, "console": 5}

#: Upward imports that remain, as (importing module, imported module or package): why each is
#: allowed. None today: letters, paper forms and the frame reader took invitation codes from
#: `surveys.invitation_codes`, and paper forms and survey loading the step path and quotas from
#: `fieldwork.conversations` / `fieldwork.quotas`, which moved down from `bot`.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _excepted(module: str, imported: str) -> bool:
    return any(module == importer and (imported == allowed or imported.startswith(allowed + "."))
               for importer, allowed in EXCEPTIONS)


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved; `from a import b` also
    names `a.b`, which is a module when b is one."""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for package in LAYER for path in (ROOT / package).rglob("*.py")}


def test_no_package_imports_a_higher_layer():
    upward: dict[str, str] = {}
    for module, path in sorted(_sources().items()):
        layer = LAYER[module.split(".")[0]]
        for line, imported in _imports(path):
            top = imported.split(".")[0]
            if top in LAYER and LAYER[top] > layer and not _excepted(module, imported):
                upward.setdefault(f"{path.relative_to(ROOT)}:{line}", imported)  # `from m import a, b`: m
    assert not upward, "upward imports:\n" + "\n".join(f"{where} imports {what}" for where, what in upward.items())


def test_every_package_has_a_layer():
    """A new top-level package must be placed in LAYER, or its imports go unchecked."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "bench", "docs"} <= set(LAYER)


def test_the_engine_imports_nothing_outside_surveys():
    sources = _sources()
    engine = {name for name in sources if name.startswith("surveys.engine")}
    engine |= {"surveys.session", "surveys.expressions"}
    reached, pending = set(), sorted(engine)
    while pending:
        module = pending.pop()
        if module in reached or module not in sources:
            continue
        reached.add(module)
        pending += [imported for _, imported in _imports(sources[module]) if imported in sources]
    outside = sorted(module for module in reached if module.split(".")[0] != "surveys")
    assert "surveys.xpath_parser" in reached  # the walk follows imports through the re-exports
    assert not outside, f"the engine reaches {outside}"


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    source = tmp_path / "exporters" / "sneaky.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from bot.chat import core\n    from .table import x\n", encoding="utf-8")
    found = _imports(source, tmp_path)
    assert (2, "bot.chat.core") in found and (3, "exporters.table") in found
