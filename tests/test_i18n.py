"""One translation mechanism: every string a page says is a key in one table per language (domain/locales/).

The tables agree with English (the same keys, the same {placeholders}, no empty text), and the UI's source
says no words of its own: no inline two-language call, no Korean string outside the tables.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from domain.locales import LANGUAGE_NAMES, SOURCE, TABLES
from domain.locales.table import merged
from tests.layout import ROOT, app_modules
from ui import i18n

HANGUL = re.compile("[\uac00-\ud7a3]")

# The UI: what must take every word it shows from the tables.
UI_SOURCES = ("main.py", "app.py", "app_pages", "ui")

# Korean that is not UI text, so not in the tables (everything else of the app is scanned too):
NOT_UI_TEXT = {
    "domain/classes.py": "the 15 lesion classes' names: data of the answer contract (the model answers with them, "
                         "the API returns them), shown through ui.labels.lesion_name",
    "domain/helper_text.py": "the Korean word for diagnosis in a pattern that recognises a model's answer; never shown",
    "domain/prompt.py": "the model's prompt and its example answer, in the language the model is asked in",
    "web/api/bodies.py": "the legacy HTTP API's fixed Korean texts, which its front end expects as they are",
    "web/api/assist.py": "the legacy HTTP API's fixed reminder for an empty refine, by request language",
    "web/api/docs_page.py": "an example request (a Korean patient description) in the API's documentation",
    "web/api/openapi.py": "an example value (a Korean patient description) in the API's OpenAPI schema",
}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


OTHERS = sorted(code for code in TABLES if code != SOURCE)


# -- the tables --------------------------------------------------------------------------------

@pytest.mark.parametrize("language", OTHERS)
def test_every_language_has_exactly_the_english_keys(language):
    table, english = TABLES[language], TABLES[SOURCE]
    assert sorted(english.keys() - table.keys()) == [], f"missing from {language}"
    assert sorted(table.keys() - english.keys()) == [], f"in {language} but not in English"


@pytest.mark.parametrize("language", OTHERS)
def test_every_key_has_the_english_placeholders(language):
    table, english = TABLES[language], TABLES[SOURCE]
    differ = {key: (sorted(_placeholders(text)), sorted(_placeholders(table[key])))
              for key, text in english.items() if key in table and _placeholders(text) != _placeholders(table[key])}
    assert differ == {}


@pytest.mark.parametrize("language", sorted(TABLES))
def test_no_text_is_empty_and_each_language_names_itself(language):
    table = TABLES[language]
    assert [key for key, text in table.items() if not isinstance(text, str) or not text] == []
    assert LANGUAGE_NAMES[language] == table["language.name"]


def test_a_key_two_parts_of_a_table_define_is_refused():
    assert merged({"a": "A"}, {"b": "B"}) == {"a": "A", "b": "B"}
    with pytest.raises(ValueError, match="a"):
        merged({"a": "A"}, {"a": "again"})


def test_the_checks_see_a_missing_key_and_a_wrong_placeholder():
    english = {"x.count": "{n} cases", "x.title": "Title"}
    assert english.keys() - {"x.count": "{n}건"}.keys() == {"x.title"}
    assert _placeholders("{n} cases") != _placeholders("{count}건")
    assert _placeholders("{score:.0f} / 100") == _placeholders("점수 {score:.0f} / 100") == {"score"}


# -- the UI's source ---------------------------------------------------------------------------

def _ui_files() -> list[Path]:
    files = []
    for name in UI_SOURCES:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _hangul_literals(path: Path) -> list[str]:
    """Where `path` has a string literal with Korean in it (docstrings and comments aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and HANGUL.search(node.value)
            and id(node) not in docstrings]


def test_the_ui_makes_no_inline_two_language_call():
    assert not hasattr(i18n, "tr")  # the old tr("한국어", "English")
    calls = []
    for path in _ui_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "tr":
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []


def test_no_korean_string_outside_the_tables():
    found = []
    for path in app_modules().values():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("domain/locales/") or relative in NOT_UI_TEXT:
            continue
        found += _hangul_literals(path)
    assert found == []
    assert _ui_files() and all(f in app_modules().values() for f in _ui_files())  # the UI is among those scanned


def test_the_exclusions_are_still_needed():
    # An excluded file that no longer holds Korean should leave the list, so the scan covers it again.
    assert [name for name in NOT_UI_TEXT if not _hangul_literals(ROOT / name)] == []


def test_streamlits_own_words_are_given_in_the_readers_language():
    from ui.streamlit_words import rules

    assert rules("en") == []  # English: Streamlit's words stand
    korean = dict(rules("ko"))
    assert korean["Press Enter to submit form"] == TABLES["ko"]["streamlit.enter_to_submit"]
    assert korean["{size}MB per file"] == "파일당 {size}MB까지"
    assert all(HANGUL.search(said) for said in korean.values())  # every one is said in Korean


def test_the_korean_pages_say_no_developer_word_to_a_clinician(engine_env):
    from streamlit.testing.v1 import AppTest

    from tests.app_scripts import APP
    from tests.page_text import shown

    words = ("HISTORY_RETENTION_DAYS", "DEMO_MODE", "HISTORY_ENABLED", "_API_KEY", "_BASE_URL", ".env",
             "[Additional information]")
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진").run()
    at.button(key="assess").click().run()
    said = {"Assess": shown(at)}
    for page in ("jobs", "history", "qa", "performance"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, page
        said[page] = shown(at) + "\n".join(str(e.value) for e in at.sidebar.get("markdown"))
    assert {page: [w for w in words if w in text] for page, text in said.items() if any(w in text for w in words)} \
        == {}
