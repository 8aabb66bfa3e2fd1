"""Cut Streamlit's icon font down to the icons this app can show, for web/icon_font.py to serve in its place.

Streamlit draws every icon with one font, Material Symbols Rounded (375 KB of WOFF2, 4,000 icons), and the sign-in
form needs it (the password field's eye, the sidebar's arrow): it was a third of the first page's weight. An icon is
a ligature of its name (`visibility` typed in that font draws the eye), so the font only needs the letters and the
ligatures of the names Streamlit's own bundles (`:material/close:`) and this app's code ask for: about 15 KB.

Run after upgrading Streamlit (tests/test_icon_font.py fails until then; the app serves the full font meanwhile):

    .venv/bin/python -m scripts.subset_icon_font

Needs fontTools (requirements-dev.txt); the app itself only serves the file this writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from web.icon_font import ASSETS, MANIFEST, SUBSET, streamlit_static

ROOT = Path(__file__).resolve().parent.parent
ICON = re.compile(r":material/([a-z0-9_]+):")
QUOTED = re.compile(r"[`'\"]([a-z0-9_]+)[`'\"]")  # a bundle also draws some icons by their bare name (`more_vert`)
# Not the app's code: what the tests and benchmarks write is never shown to a clinician.
SKIPPED_DIRS = {".venv", ".git", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                "tests", "testkit", "bench"}


def source_font(static: Path) -> Path:
    """Streamlit's icon font (one content-hashed WOFF2 file)."""
    found = sorted((static / "static" / "media").glob("MaterialSymbols-Rounded.*.woff2"))
    if len(found) != 1:
        raise SystemExit(f"expected one MaterialSymbols-Rounded.*.woff2 under {static}, found {len(found)}")
    return found[0]


def found_in(paths: Iterable[Path], pattern: re.Pattern[str] = ICON) -> set[str]:
    """Every match of `pattern`'s group in `paths`: each `:material/NAME:` by default."""
    found: set[str] = set()
    for path in paths:
        found.update(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


def icons_in_use(static: Path, drawn: Iterable[str], root: Path = ROOT) -> set[str]:
    """The icon names Streamlit's bundles and this app's Python code may ask for, of those the font `drawn`.

    Streamlit's own icons are `:material/NAME:` or, drawn on a canvas, the bare name as a string: every quoted word
    of its bundles that is an icon's name is kept (a few hundred, most of them never drawn: the price of never
    showing a word where an icon belongs). The app's own are `:material/NAME:` in its code.
    """
    bundles = sorted((static / "static" / "js").glob("*.js"))
    code = [p for p in root.rglob("*.py") if not SKIPPED_DIRS.intersection(p.relative_to(root).parts)]
    return found_in(bundles) | found_in(code) | (found_in(bundles, QUOTED) & set(drawn))


def ligatures(font) -> dict[str, str]:
    """Each icon name the font draws, and the glyph it draws it with (aliases share a glyph)."""
    by_glyph = {glyph: chr(code) for code, glyph in font.getBestCmap().items()}
    found: dict[str, str] = {}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for table in lookup.SubTable:
            table = getattr(table, "ExtSubTable", table)
            for first, entries in getattr(table, "ligatures", {}).items():
                for entry in entries:
                    parts = [first, *entry.Component]
                    if all(p in by_glyph for p in parts):
                        found["".join(by_glyph[p] for p in parts)] = entry.LigGlyph
    return found


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    """Write the subset and its manifest; say what was kept and what a name asked for that the font lacks."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    static = streamlit_static()
    source = source_font(static)
    font = TTFont(source, recalcTimestamp=False)  # the same cut from the same font, byte for byte
    drawn = ligatures(font)
    wanted = icons_in_use(static, drawn)
    unknown = sorted(wanted - drawn.keys())
    kept = sorted(wanted & drawn.keys())

    options = subset.Options()
    options.layout_closure = False  # else every ligature of the kept letters (all 4,000 icons) comes back
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.glyph_names = True
    options.flavor = "woff2"
    subsetter = subset.Subsetter(options)
    letters = [code for code in font.getBestCmap() if code < 128]  # the names' letters, digits, "_", space
    subsetter.populate(unicodes=letters, glyphs=sorted({drawn[name] for name in kept}))
    subsetter.subset(font)
    ASSETS.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(SUBSET)

    import streamlit

    MANIFEST.write_text(json.dumps({
        "source": source.name,
        "source_sha256": sha256(source),
        "streamlit": streamlit.__version__,
        "subset_sha256": sha256(SUBSET),
        "icons": kept,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"{source.name}: {source.stat().st_size:,} bytes -> {SUBSET.name}: {SUBSET.stat().st_size:,} bytes, "
          f"{len(kept)} icons")
    if unknown:
        print(f"not in the font (left out): {', '.join(unknown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
