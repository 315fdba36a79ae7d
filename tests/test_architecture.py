"""The house rules a machine can check: layers import one way, no private names across modules, small rooms.

Layers, bottom to top (docs/architecture.md): ``boards`` (board data and its reader) <- ``codegen`` <-
``host.ml`` <- ``host.deploy`` <- ``host.net``. A module may import its own layer and the layers below it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("boards", "codegen", "host", "bench", "platformio", "monitor")
#: Rank of each layer; a module may import only modules of the same or a lower rank.
LAYERS = {"boards": 0, "codegen": 1, "host.ml": 2, "host.report_files": 2, "host.paths": 2, "host.deploy": 3,
          "host.net": 4}
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 600, 300, 80


@dataclass(frozen=True)
class Import:
    source: str        # the importing module (file path relative to the repository)
    module: str        # the module imported from, absolute
    names: tuple[str, ...]
    line: int


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = REPO) -> list[Import]:
    """Every import of ``path``, relative ones resolved, including those inside functions."""
    rel = str(path.relative_to(root))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [Import(rel, a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            out.append(Import(rel, module, tuple(a.name for a in node.names), node.lineno))
    return out


def _layer(module: str) -> int | None:
    keys = [k for k in LAYERS if module == k or module.startswith(k + ".")]
    return LAYERS[max(keys, key=len)] if keys else None


def test_layers_import_one_way() -> None:
    wrong = []
    for path in _sources():
        mine = _layer(_module_name(path))
        if mine is None:
            continue
        for imp in _imports(path):
            theirs = _layer(imp.module)
            if theirs is not None and theirs > mine:
                wrong.append(f"{imp.source}:{imp.line} imports {imp.module} (a layer above)")
    assert not wrong, "imports run against the layers:\n" + "\n".join(wrong)


def test_codegen_never_imports_host() -> None:
    wrong = [f"{i.source}:{i.line} {i.module}" for p in (REPO / "codegen").rglob("*.py") for i in _imports(p)
             if i.module == "host" or i.module.startswith("host.")]
    assert not wrong, "codegen imports host:\n" + "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another() -> None:
    wrong = []
    for path in _sources():
        for imp in _imports(path):
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if private or any(part.startswith("_") and not part.startswith("__") for part in imp.module.split(".")):
                wrong.append(f"{imp.source}:{imp.line} from {imp.module} import {', '.join(private) or '...'}")
    assert not wrong, "private names imported across modules:\n" + "\n".join(wrong)


def _oversized(path: Path) -> list[str]:
    text = path.read_text()
    rel = path.relative_to(REPO)
    found = []
    if text.count("\n") > MAX_MODULE_LINES:
        found.append(f"{rel}: module of {text.count(chr(10))} lines (> {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        size = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > MAX_FUNCTION_LINES:
            found.append(f"{rel}:{node.lineno} function {node.name} of {size} lines (> {MAX_FUNCTION_LINES})")
        elif isinstance(node, ast.ClassDef) and size > MAX_CLASS_LINES:
            found.append(f"{rel}:{node.lineno} class {node.name} of {size} lines (> {MAX_CLASS_LINES})")
    return found


def test_rooms_stay_small() -> None:
    found = [msg for path in _sources() for msg in _oversized(path)]
    assert not found, "split these by what they do:\n" + "\n".join(found)


@pytest.mark.parametrize("snippet, expected", [
    ("from host.net import router\n", "host.net"),
    ("from ..deploy import manifest\n", "host.deploy"),
    ("def f():\n    from ..net.router import Network\n", "host.net.router"),
])
def test_the_import_reader_resolves_relative_and_nested_imports(tmp_path: Path, snippet: str, expected: str) -> None:
    """The checks above are only as good as their reader: these imports of host.ml run upward and are seen."""
    pkg = tmp_path / "host" / "ml"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text(snippet)
    [imp] = _imports(pkg / "x.py", root=tmp_path)
    assert imp.module == expected and _layer(imp.module) > _layer("host.ml.x")
