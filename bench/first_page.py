"""The first page's weight on the wire: bytes from opening the app to a usable sign-in form, in real Chromium.

One `streamlit run app.py` (sign-in on, one account); each visit is a fresh browser context (nothing cached), and
counts what DevTools counts (`Network.loadingFinished` `encodedDataLength`: headers and body as sent; testkit/wire.py)
for every response the page asked for before its password field and sign-in button were usable. Three ways:

  uncompressed   the browser asks for no compression (Accept-Encoding: identity): what Streamlit sends by itself
  first visit    the first visit after the server started: each bundle brotli-compressed (quality 9) as it is asked for
  later visits   every visit after: the same compressed bundles, kept from the first

    .venv/bin/python -m bench.first_page              # ~1 min
    .venv/bin/python -m bench.first_page --no-record
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.browser_photo import RESULTS, machine
from testkit.app_server import ROOT, app_env, serve_app
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.wire import Fetched, sign_in_form_cost, total

HEADING = "## The first page on the wire (`python -m bench.first_page`)"
TARGET = 1_000_000  # bytes to a usable sign-in form (issue 20)


def _kinds(fetched: list[Fetched]) -> dict[str, int]:
    fonts = total([f for f in fetched if f.is_font])
    code = total([f for f in fetched if not f.is_font and f.mime.endswith(("javascript", "css", "html"))])
    return {"all": total(fetched), "fonts": fonts, "page, scripts, styles": code,
            "other": total(fetched) - fonts - code, "requests": len(fetched)}


def measure(reps: int, log) -> dict[str, list[dict[str, int]]]:
    """Each way's visits, broken down by kind of file."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="first-page-") as tmp:
        work = Path(tmp)
        env = app_env(DATA_DIR=str(work / "data"), AUTH_MODE="accounts", WARM_UP="false")
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "users", "add", "dr.kim", "--password-stdin"],
                       input="correct horse battery\n", text=True, cwd=work, env=env, check=True, capture_output=True)
        with serve_app(env, work) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            runs: dict[str, list[dict[str, int]]] = {"first visit": [], "later visits": [], "uncompressed": []}

            def visit(way: str, **context) -> None:
                ctx = browser.new_context(**context)
                runs[way].append(_kinds(sign_in_form_cost(ctx, url + "/")))
                ctx.close()
                log(f"{way}: {runs[way][-1]['all']:,} bytes")

            visit("first visit")
            for _ in range(reps):
                visit("later visits")
                visit("uncompressed", extra_http_headers={"Accept-Encoding": "identity"})
            browser.close()
    return runs


def markdown(meta: dict, runs: dict[str, list[dict[str, int]]]) -> str:
    """The report: one row per way, the median visit's bytes by kind."""
    lines = [f"### {meta['date']}: bytes to a usable sign-in form, {meta['reps']} later visits",
             "", f"{meta['cpu']} ({meta['cpus']} CPUs), Python {meta['python']}, loopback (no throttling).", "",
             "| visit | all | page, scripts, styles | fonts (WOFF2) | other | requests | ≤ 1 MB |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for way, visits in runs.items():
        if not visits:
            continue
        row = sorted(visits, key=lambda v: v["all"])[len(visits) // 2]
        met = "met" if row["all"] <= TARGET else "**missed**"
        lines.append(f"| {way} | {row['all']:,} | {row['page, scripts, styles']:,} | {row['fonts']:,} | "
                     f"{row['other']:,} | {row['requests']} | {met} |")
    return "\n".join(lines) + "\n"


def record(table: str) -> None:
    """Add the report at the end of this benchmark's section of bench/RESULTS.md (made when missing)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = (text.rstrip("\n") + f"\n\n{HEADING}\n\nWhat the browser downloads before the sign-in form can be "
                "used (DevTools' encoded bytes: headers and bodies as sent). The fonts are Streamlit's own, "
                "compressed already (WOFF2): Material Symbols for its icons, Source Sans for its text.\n")
    start = text.index(HEADING) + len(HEADING)
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end
    RESULTS.write_text(text[:end].rstrip("\n") + "\n\n" + table + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """The command line: measure, print the report, append it to bench/RESULTS.md; 1 when the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.first_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="later and uncompressed visits (default 3)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print("needs Debian's chromium (bash scripts/test.sh installs it)", file=sys.stderr)
        return 2
    meta = machine()
    runs = measure(args.reps, lambda message: print(message, file=sys.stderr, flush=True))
    table = markdown({**meta, "reps": args.reps}, runs)
    print(table)
    if not args.no_record:
        record(table)
    later = sorted(v["all"] for v in runs["later visits"])
    return 0 if later and later[len(later) // 2] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
