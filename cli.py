"""Command line: the same engine the app uses.

    python cli.py diagnose --text "pearly papule on the nose" --json
    python cli.py diagnose --image lesion.jpg --provider openai
    python cli.py batch cases.csv --images photos/ --providers runpod,openai --out qa-report
    python cli.py batch cases.csv --images photos/ --providers runpod,openai --out qa-report --resume

    python cli.py users add dr.kim --admin --password-stdin
    python cli.py users list
    python cli.py sessions list --user dr.kim
    python cli.py sessions revoke 3f9a1c2b   (or --user dr.kim)
    python cli.py history export --format json --out history.json   [--since 2025-01-01] [--user dr.kim]
    python cli.py qa export --out labelled/   [--since 2025-01-01]   (then: batch labelled/cases.csv --images
                                                                       labelled/photos.zip ...)
    python cli.py db upgrade   [--database URL]
    python cli.py db copy --from sqlite:///srv/skin/data/app.db --to postgresql://clinic@db.internal/clinic --yes
    python cli.py demo load | remove | list [--json]

Exit codes: 0 an answer, 2 bad input or settings, 3 no provider could answer, 130 interrupted.
`batch`: 0 the batch ran (some rows may have failed), 2 bad input (checked before any call), 3 every call failed;
interrupted, results.csv keeps the rows that finished and `--resume` finishes the batch.
`users`: 0 done, 2 bad input (a name, a password, an unknown or existing user).
`sessions`: 0 done, 2 bad input (no such session, an ambiguous id, neither an id nor --user).
`history export`: 0 exported, 2 bad input (a date, a folder or unwritable --out, HISTORY_ENABLED=false).
`qa export`: 0 exported, 2 bad input (a date, an unwritable --out, HISTORY_ENABLED=false), 3 the database is down.
`db`: 0 done, 1 the copy was rolled back (a table did not match), 2 bad input (a URL, a target holding data),
3 a database could not be reached.
`demo`: 0 done, 2 the history is off (nothing to pin), 3 the database is down. With DEMO_MODE=true, `diagnose` of a
case that is not in the demo set exits 2 and names `demo list`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from commands import accounts, audit, database, demo, history, qa, trail
from commands.exits import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROVIDER, EXIT_UNAVAILABLE, positive
from domain.audit import Action

MIN_AGE, MAX_AGE = 0, 120  # as the diagnose page's age field


def _print_human(result) -> None:
    from domain.demo import DEMO_NOTE

    d = result.to_dict()
    if d["demo"]:
        print(f"DEMO: {DEMO_NOTE}.")
    label = d["label"]
    if label:
        print(f"{label['name_ko']} ({label['name_en']}), code {label['code']}, "
              f"score {label['score']:g}, {label['risk']}")
    else:
        print("No lesion class could be read from the answer.")
    if calibrated := result.calibrated:
        print(f"calibrated score {calibrated.score:.0f} (calibrated on {calibrated.n} cases, {calibrated.date})")
        if calibrated.refer:
            print(f"REFER: low confidence (calibrated score {calibrated.score:.0f} is below REFER_BELOW "
                  f"{calibrated.refer_below:g}): refer for dermatology review.")
    if not d["complete"]:
        print("INCOMPLETE answer: " + "; ".join(result.answer.problems))
    reason = result.flag_reason
    if reason is not None:
        which = "the chosen class" if reason.chosen else "a similar class"
        print(f"FLAG: {reason.risk.value}, raised by {which}, {reason.item.lesion.name_en} "
              f"(score {reason.item.score:g}, the model's own, not a probability): refer for dermatology review.")
    if d["summary"]:
        print(f"Findings: {d['summary']}")
    for s in d["similar"]:
        print(f"  similar: {s['name_ko']} ({s['name_en']}), code {s['code']}, score {s['score']:g}")
    usage = d["usage"]
    route = " · hedged" if d["hedged"] else " · fallback" if d["fallback"] else ""
    first = f" (first words {d['first_token_ms'] / 1000:.2f} s)" if d["first_token_ms"] is not None else ""
    print(f"[{d['provider']} · {d['model']} · {d['elapsed_ms'] / 1000:.2f} s{first} · "
          f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens{' · cached' if d['cached'] else ''}{route}"
          f"{' · tried ' + ' → '.join(d['tried']) if len(d['tried']) > 1 else ''}]")
    if "not_recorded" in d:
        print(f"NOTE: {d['not_recorded']}")


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Assess one lesion from a description and/or a photo; print it (or JSON) and return the exit code."""
    from domain.errors import InputError, ProviderError
    from domain.request import PatientInfo
    from startup import diagnose
    from utils.files import FileRefused, read_regular_file
    from utils.settings import get_settings

    if args.age is not None and not MIN_AGE <= args.age <= MAX_AGE:
        print(f"error: --age must be a whole number of years from {MIN_AGE} to {MAX_AGE}, got {args.age}.",
              file=sys.stderr)
        return EXIT_INPUT
    image = None
    if args.image:
        try:  # a device, a FIFO or a huge file is refused before anything is read
            image = read_regular_file(args.image, get_settings().image_max_upload_bytes, what="photo")
        except FileRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        except OSError as exc:
            print(f"error: cannot read {args.image}: {exc.strerror}", file=sys.stderr)
            return EXIT_INPUT
    try:
        result = diagnose(text=args.text, image=image, provider=args.provider, use_cache=not args.no_cache,
                          info=PatientInfo(age=args.age, sex=args.sex or "", body_site=args.site or "",
                                           duration=args.duration or ""),
                          language=args.language, fallback=not args.no_fallback)
    except InputError as exc:
        hint = " Run `python cli.py demo list` to see them." if exc.code == "demo.not_in_set" else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return EXIT_INPUT
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROVIDER
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_human(result)
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    """Run a CSV of cases on each chosen provider and write results.csv (as rows finish), report.html and
    metrics.json.

    Everything that can be checked is checked before the first paid call: the cases file (a regular
    file, at most `--max-cases` cases), the photos folder, the providers and the output folder.
    """
    from tqdm import tqdm

    from qa.batch import check_providers, run_batch
    from qa.batch_input import (
        BatchInputError,
        cases_file_limit,
        photos_from_dir,
        photos_from_zip,
        read_cases,
    )
    from qa.report import RESULTS_FILE, ResultsLog, check_out_dir, read_results, write_report
    from startup import get_engine
    from utils.files import FileRefused, read_regular_file
    from utils.settings import get_settings

    settings = get_settings()
    limit = args.max_cases or settings.batch_max_cases
    try:
        data = read_regular_file(args.cases, cases_file_limit(limit), what="cases")
    except FileRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: cannot read {args.cases}: {exc.strerror}", file=sys.stderr)
        return EXIT_INPUT
    engine = get_engine()
    # Every configured provider by default; with DEMO_MODE=true, the demo pack ("demo", also asked for by name).
    names = args.providers.split(",") if args.providers else list(engine.offered())
    try:
        chosen = check_providers(engine, names)
        photos: Mapping[str, bytes]
        if args.images and Path(args.images).is_file():  # a ZIP of photos, as `qa export` writes; read when used
            zipped = open(args.images, "rb")  # noqa: SIM115 (open while the batch runs)
            photos = photos_from_zip(zipped, max_entry_bytes=settings.image_max_upload_bytes)
        elif args.images:
            photos = photos_from_dir(args.images, max_photo_bytes=settings.image_max_upload_bytes)
        else:
            photos = {}
        cases = read_cases(data, photos, limit=limit)
        out = check_out_dir(args.out)
        done = read_results(out / RESULTS_FILE, cases, chosen) if args.resume else {}
    except (BatchInputError, FileRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.resume:
        print(f"resuming: {len(done)} row{'s' * (len(done) != 1)} already in {out / RESULTS_FILE} "
              f"{'are' if len(done) != 1 else 'is'} skipped", file=sys.stderr)
    try:
        with ResultsLog(out, kept=list(done.values())) as results, \
                tqdm(total=len(cases) * len(chosen) - len(done), unit="call", file=sys.stderr, desc="batch") as bar:
            def progress(_done: int, _total: int, row) -> None:
                results.append(row)  # before the bar moves: a row on screen is a row on disk
                bar.update(1)

            report = run_batch(engine, cases, photos, chosen, concurrency=args.concurrency, language=args.language,
                               use_cache=not args.no_cache, done=done, on_progress=progress)
    except (FileRefused, OSError) as exc:
        print(f"error: cannot write {out / RESULTS_FILE}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"interrupted: the rows that finished are in {out / RESULTS_FILE}; run the same command with "
              "--resume to finish the batch.", file=sys.stderr)
        return EXIT_INTERRUPTED
    csv_path, html_path, metrics_path = write_report(report, out, titles={n: engine.title_of(n) for n in chosen},
                                                     prevalence=args.prevalence, lang=args.lang,
                                                     calibration=engine.calibration)
    print(f"results: {csv_path}")
    print(f"report:  {html_path}")
    print(f"metrics: {metrics_path}")
    print(report.summary_line())
    from qa.case_screen import screen_lines

    for line in screen_lines(report.duplicates, report.conflicts):  # rows that did not run, by id
        print(line)
    trail.record(Action.QA_REPORT_EXPORTED, via="cli", format="report", count=len(report.cases))
    if not report.calls:
        print("error: no row could be run; see the failures in the report.", file=sys.stderr)
        return EXIT_INPUT
    if report.every_call_failed:
        print("error: every call failed; see the failures in the report.", file=sys.stderr)
        return EXIT_PROVIDER
    return EXIT_OK


def _concurrency(value: str) -> int:
    from qa.batch import MAX_CONCURRENCY

    number = int(value)
    if not 1 <= number <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"use 1 to {MAX_CONCURRENCY}")
    return number


def _prevalence(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a share between 0 and 1, e.g. 0.05") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError("a share between 0 and 1 (exclusive), e.g. 0.05")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command, each bound to its handler through `func`."""
    parser = argparse.ArgumentParser(prog="cli.py", description="AI skin-lesion assessment from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("diagnose", help="assess one lesion from a description and/or a photo")
    d.add_argument("--text", help="symptom description")
    d.add_argument("--image", help="path of a lesion photo (JPEG, PNG, WebP, HEIC)")
    d.add_argument("--provider", help="runpod, openai or local (default: from .env)")
    d.add_argument("--no-cache", action="store_true", help="ask the provider even when a cached answer exists")
    d.add_argument("--no-fallback", action="store_true",
                   help="this provider's answer or none: no fallback, no hedging to another provider")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--language", choices=["ko", "en"], default="ko", help="language of the findings")
    d.add_argument("--age", type=int, help=f"in years, {MIN_AGE}-{MAX_AGE}")
    d.add_argument("--sex", choices=["female", "male", "other"])
    d.add_argument("--site", help="body site")
    d.add_argument("--duration", help="how long the lesion has been there")
    d.set_defaults(func=cmd_diagnose)
    b = sub.add_parser("batch", help="QA: run a CSV of cases on several providers and write a report")
    b.add_argument("cases", help="CSV with the columns id,text,image,expected")
    b.add_argument("--images", help="directory or ZIP file holding the photos the CSV names")
    b.add_argument("--providers", help="comma-separated, e.g. runpod,openai (default: every configured one)")
    b.add_argument("--out", required=True, help="directory for results.csv, report.html and metrics.json")
    b.add_argument("--concurrency", type=_concurrency, default=4, help="calls at once (default 4)")
    b.add_argument("--language", choices=["ko", "en"], default="ko", help="language of the findings")
    b.add_argument("--no-cache", action="store_true", help="ask every provider even when a cached answer exists")
    b.add_argument("--max-cases", type=positive, metavar="N",
                   help="allow up to N cases in this run (default: BATCH_MAX_CASES, 2000)")
    b.add_argument("--resume", action="store_true",
                   help="skip the case and provider pairs already in --out's results.csv (an interrupted run)")
    b.add_argument("--prevalence", type=_prevalence, metavar="P",
                   help="the clinic's share of malignant lesions, 0 < P < 1 (e.g. 0.05), for PPV, NPV and flags and "
                        "missed cancers per 1,000 (default: the set's own, said as such)")
    b.add_argument("--lang", choices=["en", "ko"], default="en", help="language of report.html (default en)")
    b.set_defaults(func=cmd_batch)
    accounts.add_parsers(sub)
    history.add_parsers(sub)
    qa.add_parsers(sub)
    database.add_parsers(sub)
    audit.add_parsers(sub)
    demo.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names and return its exit code (settings errors are input errors)."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func  # each subcommand's set_defaults(func=cmd_...)
    from storage.database import StoreUnavailable
    from utils.settings import SettingsError

    try:
        return command(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except StoreUnavailable as exc:  # any command's store: one line naming the database (never its password)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        import startup

        startup.close_audit()  # the command's own audit events, written before the process ends


if __name__ == "__main__":
    sys.exit(main())
