"""The architecture, checked: the import-linter contracts of pyproject.toml, no import cycle (function-local
imports count), nothing below the top importing ``clinical_mm.evaluation``, no private name imported across
modules, function-local imports only where the imported module is heavy, functions of at most 80 lines.

The checks are functions over an import graph (grimp, the engine of import-linter), so each is also shown to
fail on a graph with the violation planted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "clinical_mm"
TOP = "clinical_mm.evaluation"
#: libraries whose import is slow or large enough to defer to the function that needs them (checked by
#: benchmarks of start-up: ``clinical-mm --help`` loads none of the model or service ones)
HEAVY = ("torch", "transformers", "monai", "spacy", "presidio_analyzer", "presidio_anonymizer", "pynetdicom",
         "pydicom", "fhir", "numpy", "fastapi", "uvicorn", "tokenizers", "safetensors", "psycopg", "httpx",
         "cryptography", "PIL", "faker", "simple_icd_10_cm", "drug_named_entity_recognition", "distributed", "dask")
#: functions allowed over 80 lines, and why
LONG_FUNCTIONS = {
    "clinical_mm/synth/chest_phantom.py:render": "image drawing: the phantom's anatomy drawn layer by layer",
    "clinical_mm/synth/chest_phantom.py:_draw_finding": "image drawing: one branch per finding's shape",
    "clinical_mm/outputs/dicom_sr.py:build_report_sr": "DICOM attribute builder: the SR's modules in order",
}


def _build() -> grimp.ImportGraph:
    return grimp.build_graph("clinical_mm", include_external_packages=True, cache_dir=None)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return _build()


def _modules(g: grimp.ImportGraph) -> set[str]:
    return {m for m in g.modules if m.startswith("clinical_mm")}


def cycles(g: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself)."""
    modules = sorted(_modules(g))
    edges = {m: sorted(i for i in g.find_modules_directly_imported_by(m) if i.startswith("clinical_mm"))
             for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, []):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in modules:
        if m not in index:
            visit(m)
    return found


def importers_of_top(g: grimp.ImportGraph) -> set[str]:
    """Modules outside ``clinical_mm.evaluation`` that import it, directly or through others."""
    inside = {m for m in _modules(g) if m == TOP or m.startswith(TOP + ".")}
    downstream: set[str] = set()
    for m in inside:
        downstream |= g.find_downstream_modules(m)
    return {m for m in downstream if m not in inside and m.startswith("clinical_mm")}


def test_when_the_contracts_are_linted_then_none_is_broken() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout


def test_when_the_contracts_are_read_then_none_has_exceptions() -> None:
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 3
    assert not [c["name"] for c in contracts if c.get("ignore_imports") or c.get("unmatched_ignore_imports_alerting")]


def test_when_modules_import_each_other_then_there_is_no_cycle(graph: grimp.ImportGraph) -> None:
    assert cycles(graph) == []


def test_when_a_cycle_is_planted_then_the_check_finds_it() -> None:
    planted = _build()
    planted.add_import(importer="clinical_mm.core.errors", imported="clinical_mm.core.config")
    assert ["clinical_mm.core.config", "clinical_mm.core.errors"] in cycles(planted)


def test_when_runtime_modules_are_read_then_none_imports_evaluation(graph: grimp.ImportGraph) -> None:
    assert importers_of_top(graph) == set()


def test_when_a_runtime_module_imports_evaluation_then_the_check_finds_it() -> None:
    planted = _build()
    planted.add_import(importer="clinical_mm.model.modeling", imported="clinical_mm.evaluation.phi_note_corpus")
    assert "clinical_mm.model.modeling" in importers_of_top(planted)


def _sources() -> Iterator[tuple[str, str, ast.Module]]:
    for folder in ("clinical_mm", "connectors", "audit", "evaluation"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if folder == "clinical_mm" and rel.split("/")[1] in ("connectors", "audit", "evaluation"):
                continue  # the links; read through their real folders
            parts = ["clinical_mm", *path.relative_to(ROOT).with_suffix("").parts]
            if folder == "clinical_mm":
                parts = parts[1:]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield rel, ".".join(parts), ast.parse(path.read_text(encoding="utf-8"))


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def test_when_modules_import_names_then_no_private_name_crosses_a_module() -> None:
    crossing = []
    for rel, module, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(module, node, rel.endswith("__init__.py"))
                if source.startswith("clinical_mm") and source != module:
                    crossing += [f"{rel}:{node.lineno} {source}.{a.name}" for a in node.names
                                 if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossing == []


def _local_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    yield from ((node.lineno, a.name) for a in node.names)
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    yield node.lineno, node.module or ""


def test_when_an_import_is_function_local_then_what_it_imports_is_heavy(graph: grimp.ImportGraph) -> None:
    def heavy(name: str) -> bool:
        if name.split(".")[0] != "clinical_mm":
            return True  # the standard library and third-party packages: deferred by choice, no cycle to hide
        if name not in graph.modules:
            return False
        return any(graph.chain_exists(importer=name, imported=h.split(".")[0]) for h in HEAVY
                   if h.split(".")[0] in graph.modules)

    light = [f"{rel}:{line} {name}" for rel, _, tree in _sources() for line, name in _local_imports(tree)
             if not heavy(name)]
    assert light == []


def test_when_functions_are_measured_then_none_is_over_80_lines() -> None:
    long = {}
    for rel, _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > 80 and f"{rel}:{node.name}" not in LONG_FUNCTIONS:
                    long[f"{rel}:{node.name}"] = length
    assert long == {}


def test_when_the_construction_token_is_imported_then_only_deid_imports_it() -> None:
    users = [f"{rel}:{node.lineno}" for rel, module, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and any(a.name == "DEID_CONSTRUCTION_TOKEN" for a in node.names)
             and not module.startswith("clinical_mm.deid")]
    assert users == []
