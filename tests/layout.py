"""Where the app's code lives, for the tests that read its source (layers, settings reads, strings, static checks)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The app: its top-level modules and its packages (not tests/, bench/ or testkit/).
APP_FILES = ("app.py", "main.py", "cli.py", "startup.py")
APP_PACKAGES = ("commands", "web", "app_pages", "ui", "qa", "engine", "providers", "storage", "domain", "utils")


def module_name(path: Path) -> str:
    """The dotted name of the module at `path` (a package by its folder's name)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    """Every module of the app, by dotted name."""
    files = [ROOT / name for name in APP_FILES]
    for package in APP_PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return {module_name(f): f for f in files}


def support_modules() -> dict[str, Path]:
    """Every module of bench/ and testkit/ (the benchmarks and the fakes tests share), by dotted name."""
    files = [f for package in ("bench", "testkit") for f in sorted((ROOT / package).rglob("*.py"))]
    return {module_name(f): f for f in files}
