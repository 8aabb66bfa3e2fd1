"""The layers hold: entry points → startup → qa → engine → providers → storage → domain → utils, with no import cycle.

Every import counts, as import-linter counts them: module level, inside functions (lazy) and
under `if TYPE_CHECKING:`. A cycle or an upward import is a knot someone new to the code has
to untie in their head; this test keeps them from coming back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.layout import ROOT, app_modules, support_modules

# Higher may import lower (or its own layer), never the other way.
# The entry points (app.py, main.py, cli.py, the page scripts, ui/, web/, commands/) build nothing themselves: they
# take the engine and the store objects from `startup`, the one module that reads the process settings.
ENTRY_POINTS = ("app", "main", "cli", "commands", "web", "app_pages", "ui")
LAYERS = {**dict.fromkeys(ENTRY_POINTS, 7), "startup": 6, "qa": 5, "engine": 4, "providers": 3, "storage": 2,
          "domain": 1, "utils": 0}
MAX_LINES = 450




def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The app modules `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from storage.metrics import figures as metrics` names a module;
            # `from providers import diagnose` names the package.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `import a.b.c` of a package with no c module
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = app_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_no_module_imports_a_layer_above_its_own(graph):
    upward = sorted(f"{module} → {target}" for module, targets in graph.items() for target in targets
                    if _layer(target) > _layer(module))
    assert upward == []


def test_nothing_imports_the_pages(graph):
    # The UI sits on top; nothing below it may reach into app_pages/ or ui/ (pages are run, never imported).
    assert not [m for m, targets in graph.items() for t in targets if t.startswith("app_pages")]


def test_the_app_never_imports_the_test_fakes():
    for path in app_modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("testkit", "tests", "bench")), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith(("testkit", "tests", "bench")) for a in node.names), path


def test_no_app_module_is_too_long_to_read():
    long = {name: n for name, path in app_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}



def test_no_bench_or_testkit_module_is_too_long_to_read():
    # The benchmarks and fakes are read as often as the app (to trust a number, or a test that uses them).
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in support_modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_the_walker_sees_lazy_and_type_checking_imports(tmp_path):
    # The checks above are only as good as the walker: it must see imports that never run at import time.
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine.core import Engine\n"
                      "def f():\n    import storage.store\n    from storage.metrics import figures as metrics\n")
    assert imports_of(module, app_modules()) == {"engine.core", "storage.store", "storage.metrics.figures"}


def test_a_cycle_is_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_entry_points_and_startup_read_the_process_settings():
    # Below start-up everything is handed its settings, so a test, a benchmark or a second engine can run any part
    # with settings of its own, and a setting is never read at a depth nobody expects.
    readers = sorted(name for name, path in app_modules().items()
                     if _layer(name) < LAYERS["startup"] and name != "utils.settings"
                     and "get_settings" in path.read_text(encoding="utf-8"))
    assert readers == []


def test_no_folder_is_named_like_streamlits_legacy_page_folder():
    # A `pages/` folder beside the main script turns on Streamlit's old multipage mode until st.navigation runs,
    # which a sign-in gate delays (a link to /history would run that script alone).
    assert not (ROOT / "pages").exists()
    assert "PagesManager" not in (ROOT / "app.py").read_text(encoding="utf-8")


# -- the tests' own layout ---------------------------------------------------------------------------

def _is_fixture(decorator: ast.expr) -> bool:
    """`@pytest.fixture`, `@pytest.fixture(...)`, `@fixture` or `@fixture(...)`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Attribute) and target.attr == "fixture") or \
        (isinstance(target, ast.Name) and target.id == "fixture")


def fixtures_of(path: Path) -> set[str]:
    """The names `path` defines as pytest fixtures."""
    return {node.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(map(_is_fixture, node.decorator_list))}


def imported_names(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every import in `path`, anywhere in the file; `import a.b` gives ("a.b", "")."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, "") for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            found |= {(module, alias.name) for alias in node.names}
    return found


def _names_a_test_module(module: str, name: str) -> bool:
    dotted = f"{module}.{name}" if name else module
    return any(part.startswith("test_") for part in dotted.lstrip(".").split("."))


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_test_module_imports_another_test_module():
    # Shared helpers live in testkit/ or in tests/ helper modules (tests/app_scripts.py, tests/cli_runs.py):
    # importing a test module runs its collection-time code again and hides which tests share what.
    offenders = {(path.name, module, name) for path in sorted((ROOT / "tests").glob("test_*.py"))
                 for module, name in imported_names(path) if _names_a_test_module(module, name)}
    assert offenders == set()


def test_no_test_module_imports_a_fixture():
    # Fixtures are registered once (tests/conftest.py); a test names one as a parameter. An imported fixture is a
    # second registration that shadows the first and needs a `noqa` to get past the linter.
    sources = {_module_of(p): p for p in [*sorted((ROOT / "testkit").rglob("*.py")), ROOT / "tests" / "conftest.py",
                                          *sorted((ROOT / "tests").glob("[!t]*.py"))]}
    fixtures = {(module, name) for module, path in sources.items() for name in fixtures_of(path)}
    assert {("tests.conftest", "engine_env"), ("tests.conftest", "redis_server")} <= fixtures  # the walker sees them
    offenders = {(path.name, module, name) for path in sorted((ROOT / "tests").glob("test_*.py"))
                 for module, name in imported_names(path) if (module, name) in fixtures}
    assert offenders == set()
    noqa = {path.name for path in sorted((ROOT / "tests").glob("*.py"))
            if re.search(r"noqa: ?F(401|811)", path.read_text(encoding="utf-8"))}
    assert noqa == set()


def test_the_layout_checks_see_what_they_look_for(tmp_path):
    module = tmp_path / "test_x.py"
    module.write_text("import pytest\nfrom tests.test_jobs import wait_for\nfrom tests import test_page_jobs\n"
                      "def f():\n    from tests.conftest import clock\n"
                      "@pytest.fixture(scope='module')\ndef here(): ...\n")
    names = imported_names(module)
    assert {n for n in names if _names_a_test_module(*n)} == {("tests.test_jobs", "wait_for"),
                                                              ("tests", "test_page_jobs")}
    assert ("tests.conftest", "clock") in names and not _names_a_test_module("tests.conftest", "clock")
    assert "clock" in fixtures_of(ROOT / "tests" / "conftest.py")  # so that import is caught as a fixture's
    assert fixtures_of(module) == {"here"}
