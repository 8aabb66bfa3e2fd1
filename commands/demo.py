"""`cli.py demo`: the demo pack (demo/pack.json), for presentations and first runs without a provider key.

    python cli.py demo load          pin the pack's cases in the history (a second run changes nothing)
    python cli.py demo remove        take them out again
    python cli.py demo list          the cases: id, kind, class, description
    python cli.py demo list --json   [{"id", "kind", "text", "class"}]

With DEMO_MODE=true, `cli.py diagnose --text "<a demo case's description>"` (or `--image demo/photos/<file>`) then
answers with the case's example answer, written for the demo: not a model's output, not a diagnosis.

Exit codes: 0 done, 2 the history is off (HISTORY_ENABLED=false: nothing to pin; demo mode answers from the pack
itself), 3 the database is down.
"""

from __future__ import annotations

import argparse
import json
import sys

from commands.exits import EXIT_INPUT, EXIT_OK


def cmd_demo_load(args: argparse.Namespace) -> int:
    """Pin the demo pack; says how many answers were written, or that it was loaded already."""
    from engine.demo import DemoPackNotStored
    from startup import get_engine

    demo = get_engine().demo
    try:
        written = demo.load()
    except DemoPackNotStored as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    cases = len(demo.pack.cases)
    if written:
        print(f"demo pack loaded: {cases} cases ({written} pinned answers, Korean and English written). "
              "Try them with DEMO_MODE=true, or Try the demo on the assessment page.")
    else:
        print(f"demo pack already loaded: {cases} cases, nothing changed.")
    return EXIT_OK


def cmd_demo_remove(args: argparse.Namespace) -> int:
    """Take the demo pack's pinned answers out of the history."""
    from engine.demo import DemoPackNotStored
    from startup import get_engine

    try:
        removed = get_engine().demo.remove()
    except DemoPackNotStored as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(f"demo pack removed: {removed} pinned answers taken out." if removed else "demo pack was not loaded.")
    return EXIT_OK


def cmd_demo_list(args: argparse.Namespace) -> int:
    """Print the pack's cases (no database needed: the pack is a file in the repository)."""
    from domain.classes import by_code
    from domain.demo import DEMO_NOTE, load_pack

    cases = load_pack().cases
    if args.json:
        print(json.dumps([c.listing(args.language) for c in cases], ensure_ascii=False))
        return EXIT_OK
    for case in cases:
        lesion = by_code(case.code)
        name = lesion.name_en if lesion else "?"
        photo = f"  [photo: demo/photos/{case.photo}]" if case.photo else ""
        print(f"{case.id:<18} {case.kind:<5} {case.code:>2} {name:<30} {case.text[args.language]}{photo}")
    print(f"\n{len(cases)} cases; their answers are {DEMO_NOTE}. With DEMO_MODE=true: "
          'cli.py diagnose --text "<description>" or --image demo/photos/<file>.')
    return EXIT_OK


def add_parsers(sub) -> None:
    """The `demo load|remove|list` sub-commands, bound to their handlers through `func`."""
    d = sub.add_parser("demo", help="the demo pack: example cases for presentations without a provider key")
    demo = d.add_subparsers(dest="demo_command", required=True)
    demo.add_parser("load", help="pin the demo pack's cases in the history (idempotent)").set_defaults(
        func=cmd_demo_load)
    demo.add_parser("remove", help="take the demo pack's cases out of the history").set_defaults(func=cmd_demo_remove)
    ls = demo.add_parser("list", help="print the demo pack's cases")
    ls.add_argument("--json", action="store_true", help='print [{"id", "kind", "text", "class"}]')
    ls.add_argument("--language", choices=["ko", "en"], default="en", help="language of the descriptions")
    ls.set_defaults(func=cmd_demo_list)
