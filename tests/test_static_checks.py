"""The whole repository stays lint-clean (ruff) and the app type-clean (mypy), with the rules in pyproject.toml.

Both tools run as CI runs them, from the project root, so a finding fails the suite with the
tools' own report in the failure message. ruff checks every file (tests/, bench/ and testkit/
too); mypy checks the app, whose packages pyproject.toml names.
"""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from tests import static_runs
from tests.layout import APP_FILES, APP_PACKAGES, ROOT

RUFF = ("ruff", "check", "--no-cache", ".")  # the whole repository: tests, bench and testkit too
MYPY = ("mypy",)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS`'s finished run; a test marked `static_check(ARGS)` had it started at the run's beginning."""
    return static_runs.result(*args)


def _report(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.mark.static_check(*RUFF)
def test_ruff_finds_nothing_in_the_repository():
    done = _run(*RUFF)
    assert done.returncode == 0, _report(done)
    assert "All checks passed!" in done.stdout, _report(done)


@pytest.mark.static_check(*MYPY)
def test_mypy_finds_nothing_in_the_app():
    # mypy checks what pyproject.toml names: that must be the whole app, or a package would go unchecked.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert sorted(config["tool"]["mypy"]["files"]) == sorted(APP_FILES + APP_PACKAGES)
    done = _run(*MYPY)
    assert done.returncode == 0, _report(done)
    assert "Success: no issues found" in done.stdout, _report(done)


def test_mypy_stays_as_strict_as_agreed():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    for option in ("check_untyped_defs", "warn_unreachable", "strict_equality", "warn_return_any"):
        assert mypy.get(option) is True, option
    fully_typed = {module for override in mypy.get("overrides", [])
                   if override.get("disallow_untyped_defs") and override.get("disallow_any_generics")
                   for module in override["module"]}
    assert {"domain.*", "storage.*", "engine.*", "utils.settings"} <= fully_typed
