"""The history at clinic scale: the History page's queries over 100 000 rows, and the write per assessment.

Fills one database (a throw-away PostgreSQL cluster, testkit/postgres.py, and for comparison a
SQLite file) with realistic rows (several users, every class, risks, providers, a year of
dates, some pinned, some failed), inserted in batches through storage/schema.assessments. Then
times, through `History` itself, exactly what the History page and the HTTP API run
(app_pages/history.py, web/api/analyses.py): the purge and the "anything?" probe at page open, the
default view, a user's own view, each filter, a text search, the pinned answers of demo mode
and the API's pages; and `History.record` of one engine-shaped row (engine/recording.py).
Each query's plan comes from EXPLAIN of the very statement the call sent (caught on the engine).

    .venv/bin/python -m bench.history_queries                  # both databases, ~3-5 min
    .venv/bin/python -m bench.history_queries --rows 20000 --only postgresql

`python -m bench.multi_server` runs this too, after its servers, and puts the tables in its report.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.measuring import timed
from domain.classes import CLASSES, Risk
from storage.history import NO_FLAG, Filters, History
from storage.schema import assessments
from storage.store import Store, dumps, new_id
from testkit.answers import DISCLAIMER, xml_answer
from testkit.postgres import PostgresServer
from utils.stats import percentile

QUERY_TARGET_MS = 200.0   # p95 of one History page query over 100 000 rows
WRITE_TARGET_MS = 3.0     # p95 of one history write on a local PostgreSQL
BATCH = 2000
DAY = 86400.0

USERS = [("dr.kim", 30), ("dr.lee", 20), ("dr.park", 15), ("dr.choi", 10), ("dr.jung", 8), ("nurse.han", 6),
         ("dr.yoon", 5), ("dr.lim", 3), ("dr.seo", 2), ("dr.kang", 1)]
PROVIDERS = [("runpod", 55), ("openai", 35), ("local", 10)]
SOURCES = [("page", 70), ("api", 15), ("job", 10), ("batch", 5)]
SITES = ["코 옆", "등", "손등", "얼굴", "두피", "왼쪽 뺨", "이마", "종아리", "팔뚝", "가슴", "귀 뒤", "발바닥"]
SIGNS = ["진주빛 구진", "비대칭 흑갈색 반점", "거친 각질성 구진", "노란빛 작은 구진", "가려운 붉은 판",
         "경계가 불규칙한 점", "딱지가 앉은 궤양", "단단한 결절", "갈색 융기 병변", "쉽게 피가 나는 붉은 혹"]
COURSES = ["6개월간 서서히 커짐", "최근 색이 변함", "가끔 출혈", "1년째 각질", "통증 없음", "가려움이 심함"]


@dataclass
class Timing:
    """One timed call: its name, target, samples in ms, rows returned and the plan of its statement."""

    database: str
    name: str
    target_ms: float | None         # None: for comparison only
    samples: list[float]
    rows: int = 0
    plan: str = ""
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50) or 0.0

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95) or 0.0

    @property
    def passed(self) -> bool:
        return self.target_ms is None or self.p95 <= self.target_ms

    def to_dict(self) -> dict:
        return {"database": self.database, "name": self.name, "target_ms": self.target_ms, "p50": self.p50,
                "p95": self.p95, "max": max(self.samples), "n": len(self.samples), "rows": self.rows,
                "plan": self.plan, "pass": self.passed, "note": self.note}


@dataclass
class Filled:
    """What the fill put in, for choosing realistic filters: the newest time and some pinned cache keys."""

    rows: int
    seconds: float
    newest: float
    pinned_keys: list[str] = field(default_factory=list)


def _pick(weighted: list[tuple[str, int]], rng: random.Random) -> str:
    return rng.choices([name for name, _ in weighted], [w for _, w in weighted])[0]


def fake_row(rng: random.Random, created_at: float) -> dict:
    """One assessment as the engine writes it (engine/recording.py), answered or (2 %) failed."""
    text = f"{rng.choice(SITES)}의 {rng.choice(SIGNS)}, {rng.choice(COURSES)} (크기 {rng.randint(2, 30)}mm)"
    row = {"id": new_id(), "created_at": created_at, "user": _pick(USERS, rng), "source": _pick(SOURCES, rng),
           "kind": rng.choice(("text", "text", "image")), "language": rng.choice(("ko", "ko", "ko", "en")),
           "text": text, "info": dumps({"age": rng.randint(18, 90), "sex": rng.choice(("F", "M"))}),
           "provider": _pick(PROVIDERS, rng), "latency_ms": rng.uniform(800, 9000),
           "pinned": int(rng.random() < 0.005)}
    if rng.random() < 0.02:
        row.update(error=rng.choice(("ProviderTimeout", "ProviderUnavailable", "AnswerInvalid")))
        return row
    label = rng.choice(CLASSES)
    similar = rng.sample([c for c in CLASSES if c is not label], 2)
    score = rng.randint(40, 95)
    summary = (f"{text}. {label.name_ko}에 합당한 소견입니다. "
               f"경계와 색조를 고려할 때 {similar[0].name_ko}와 감별이 필요합니다.")
    row.update(
        model=rng.choice(("clinic-derm-v1", "gpt-4o-mini")), complete=1, label_code=label.code,
        label_score=float(score), summary=summary,
        risk=label.risk.value if label.risk in (Risk.MALIGNANT, Risk.PREMALIGNANT) else None,
        similar=dumps([{"code": c.code, "score": s, "name": c.name_ko} for c, s in zip(similar, (12, 6), strict=True)]),
        raw=xml_answer(label.code, score, label.name_ko, summary,
                       [(c.code, s, c.name_ko) for c, s in zip(similar, (12, 6), strict=True)], tail=DISCLAIMER),
        first_token_ms=rng.uniform(300, 2000), prompt_tokens=rng.randint(400, 1200),
        completion_tokens=rng.randint(150, 400), cached=int(rng.random() < 0.1), tried=row["provider"],
        cache_key=f"{rng.getrandbits(128):032x}")
    return row


def fill(store: Store, rows: int, *, seed: int = 11, log: Callable[[str], None] = print) -> Filled:
    """Insert `rows` assessments over the last 360 days (a purge at 365 finds nothing), BATCH per executemany."""
    rng = random.Random(seed)
    newest = time.time() - 60
    started, done, pinned = time.monotonic(), 0, []
    while done < rows:
        batch = [fake_row(rng, newest - rng.uniform(0, 360 * DAY)) for _ in range(min(BATCH, rows - done))]
        # One set of columns for the whole executemany: a failed row's missing ones are their defaults.
        columns = {c for r in batch for c in r}
        defaults = {c.name: None for c in assessments.c if c.name in columns}
        batch = [{**defaults, **{k: v for k, v in r.items()}} for r in batch]
        for r in batch:
            for name, empty in (("summary", ""), ("similar", "[]"), ("raw", ""), ("complete", 0), ("cached", 0),
                                ("prompt_tokens", 0), ("completion_tokens", 0), ("tried", "")):
                if r.get(name) is None:
                    r[name] = empty
        pinned += [r["cache_key"] for r in batch if r["pinned"] and r.get("cache_key")]
        with store.connect() as conn:
            conn.execute(assessments.insert(), batch)
        done += len(batch)
        if done % 20000 == 0:
            log(f"{store.dialect}: {done} rows")
    if store.dialect == "postgresql":  # what autovacuum would do soon after such a load: fresh statistics
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE assessments")
    else:
        with store.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return Filled(rows, time.monotonic() - started, newest, pinned)


@contextmanager
def caught(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) sent through `store`'s engine while inside."""
    seen: list[tuple[str, Any]] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)


# "Index Scan Backward using IDX on assessments", "Bitmap Index Scan on IDX", "Seq Scan on assessments".
_PG_NODE = re.compile(r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)(?: Backward)?)"
                      r"(?: using (\S+))? on (\w+)")


def explain(store: Store, statement: str, parameters: Any) -> str:
    """The plan of `statement`, in short: each table access and the index it uses (PostgreSQL: with ANALYZE's ms,
    for a SELECT; a DELETE is only planned, not run)."""
    select = statement.lstrip().upper().startswith("SELECT")
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            how = "EXPLAIN (ANALYZE, COSTS OFF) " if select else "EXPLAIN (COSTS OFF) "
            lines = [r[0] for r in conn.exec_driver_sql(how + statement, parameters)]
            nodes = [f"{m.group(1)} {m.group(2) or m.group(3)}" for line in lines if (m := _PG_NODE.search(line))]
            total = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Execution Time")), "")
            return "; ".join(dict.fromkeys(nodes)) + (f" ({total})" if total else "")
        found = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "; ".join(dict.fromkeys(str(r[-1]) for r in found))


def page_queries(history: History, filled: Filled) -> list[tuple[str, Callable[[], object]]]:
    """What the History page and the API ask of the history, by name (the admin's view unless a user is named)."""
    week = filled.newest - 90 * DAY
    keys = filled.pinned_keys[:5] + [f"{n:032x}" for n in range(5)]  # the page's cache keys: some pinned, some not
    return [
        ("page open: purge (nothing due)", lambda: history.purge()),
        ("page open: any row? (limit 1, dr.kim)", lambda: history.search(Filters(limit=1, user="dr.kim"))),
        ("default view (admin, newest 500)", lambda: history.search(Filters())),
        ("own view, dr.kim (30 % of rows)", lambda: history.search(Filters(user="dr.kim"))),
        ("own view, dr.kang (1 % of rows)", lambda: history.search(Filters(user="dr.kang"))),
        ("class: 악성흑색종", lambda: history.search(Filters(label_code=6))),
        ("risk: malignant", lambda: history.search(Filters(risk="malignant"))),
        ("risk: no flag", lambda: history.search(Filters(risk=NO_FLAG))),
        ("provider: local (10 %)", lambda: history.search(Filters(provider="local"))),
        ("dates: one week, 3 months ago", lambda: history.search(Filters(since=week, until=week + 7 * DAY))),
        ("dr.lee + class + risk + provider", lambda: history.search(
            Filters(user="dr.lee", label_code=1, risk="malignant", provider="openai"))),
        ("text search: 출혈 (common word)", lambda: history.search(Filters(query="출혈"))),
        ("text search: 발바닥의 단단한 결절 (rare)", lambda: history.search(Filters(query="발바닥의 단단한 결절"))),
        ("text search, own view: dr.kang + 궤양", lambda: history.search(Filters(query="궤양", user="dr.kang"))),
        ("text search: no match", lambda: history.search(Filters(query="없는단어XYZ"))),
        ("pinned answer (demo mode, 10 keys)", lambda: history.pinned_answer(keys)),
        ("API page 1, page_size 10 (dr.kim)", lambda: history.search(Filters(user="dr.kim", limit=11))),
        ("API page 1, page_size 100 (admin)", lambda: history.search(Filters(limit=101))),
    ]


def time_queries(store: Store, history: History, filled: Filled, reps: int) -> list[Timing]:
    """Each page query `reps` times (after 2 untimed), its rows, and the plan of its (last) SELECT."""
    out = []
    for name, call in page_queries(history, filled):
        samples = timed(call, warmup=2, reps=reps)
        with caught(store) as seen:
            result = call()
        plan = " / ".join(explain(store, s, p) for s, p in seen
                          if s.lstrip().upper().startswith(("SELECT", "DELETE")))
        # A list of rows; the purge's count of deleted rows; the pinned answer or None.
        rows = len(result) if isinstance(result, list) else result if isinstance(result, int) else int(bool(result))
        # The target is the shared database's (issue: two servers on PostgreSQL); SQLite's figures are for comparison.
        target = QUERY_TARGET_MS if store.dialect == "postgresql" else None
        out.append(Timing(store.dialect, name, target, samples, rows, plan))
    return out


def engine_row(rng: random.Random) -> dict:
    """A row as `Recorder.recorded` hands it to `History.record` (no id or created_at: record adds them)."""
    row = fake_row(rng, 0.0)
    for name in ("id", "created_at", "pinned"):
        row.pop(name)
    row["qa_case"] = None
    return row


def time_writes(store: Store, history: History, n: int) -> Timing:
    """`History.record` of `n` engine-shaped rows, one transaction each, as the engine does."""
    rng = random.Random(5)
    rows = [engine_row(rng) for _ in range(n + 20)]
    it = iter(rows)
    samples = timed(lambda: history.record(next(it)), warmup=20, reps=n)
    return Timing(store.dialect, f"History.record(row), {n} times", WRITE_TARGET_MS if store.dialect == "postgresql"
                  else None, samples, n, "INSERT, one transaction")


def run(url_of: Callable[[str], str], *, rows: int, reps: int, writes: int, databases: tuple[str, ...],
        log: Callable[[str], None] = print) -> dict:
    """Fill and time each of `databases` ("postgresql", "sqlite"); `url_of(dialect)` gives a fresh, empty database."""
    results: dict = {"rows": rows, "reps": reps, "writes": writes, "timings": [], "fills": {}}
    for dialect in databases:
        store = Store(url_of(dialect), pool_size=2, timeout_seconds=30)
        try:
            store.migrate()
            history = History(store)
            log(f"{dialect}: filling {rows} rows")
            filled = fill(store, rows, log=log)
            results["fills"][dialect] = {"seconds": filled.seconds, "pinned": len(filled.pinned_keys)}
            log(f"{dialect}: filled in {filled.seconds:.0f} s; timing the page's queries")
            results["timings"] += [t.to_dict() for t in time_queries(store, history, filled, reps)]
            log(f"{dialect}: timing {writes} writes")
            results["timings"].append(time_writes(store, history, writes).to_dict())
        finally:
            store.dispose()
    return results


def markdown(results: dict) -> str:
    """The queries' and the writes' table: one row per call and database, p50 / p95 against the target."""
    fills = ", ".join(f"{d}: filled in {f['seconds']:.0f} s" for d, f in results["fills"].items())
    lines = [f"History over {results['rows']:,} rows ({fills}); "
             f"each query {results['reps']} times after 2 untimed, through `History` (the rows decoded, as the page "
             "gets them). Plan: EXPLAIN of the statement the call sent (PostgreSQL: ANALYZE, its execution time).",
             "", "| database | call | rows | p50 | p95 | target (p95) | result | plan |",
             "|---|---|---|---|---|---|---|---|"]
    for t in results["timings"]:
        target = "—" if t["target_ms"] is None else f"≤ {t['target_ms']:g} ms"
        verdict = "—" if target == "—" else ("met" if t["pass"] else "**missed**")
        lines.append(f"| {t['database']} | {t['name']} | {t['rows']} | {t['p50']:.2f} ms | {t['p95']:.2f} ms | "
                     f"{target} | {verdict} | {t['plan'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


@contextmanager
def databases(server: PostgresServer | None = None) -> Iterator[Callable[[str], str]]:
    """Fresh, empty databases: on `server` (or a cluster of its own) and SQLite files in a temporary folder."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="history-queries-")))
        own = server or stack.enter_context(PostgresServer())

        def url_of(dialect: str) -> str:
            return own.create_database() if dialect == "postgresql" else f"sqlite:///{folder / new_id()}.db"
        yield url_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history_queries", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="assessments to fill (default 100 000)")
    parser.add_argument("--reps", type=int, default=50, help="timed runs of each query (default 50)")
    parser.add_argument("--writes", type=int, default=500, help="timed History.record calls (default 500)")
    parser.add_argument("--only", choices=("postgresql", "sqlite"), help="one database only")
    args = parser.parse_args(argv)
    chosen = (args.only,) if args.only else ("postgresql", "sqlite")

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    with databases() as url_of:
        results = run(url_of, rows=args.rows, reps=args.reps, writes=args.writes, databases=chosen, log=log)
    print(markdown(results))
    out = Path(__file__).parent / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "history_queries.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0 if all(t["pass"] for t in results["timings"]) else 1


if __name__ == "__main__":
    sys.exit(main())
