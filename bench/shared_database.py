"""The shared-database checks of `python -m bench.multi_server`: what two app servers on one PostgreSQL must share.

- one account, added once with `cli.py users add` (server 1's settings), signs in through the
  sign-in form of BOTH servers (headless Chromium), and the session cookie one server set opens
  the other one directly (sessions live in the database too);
- the history is complete on both: every assessment of both servers, listed by each server's
  HTTP API (`GET /api/v1/analyses`, a bearer token made once with `cli.py tokens add`);
- a server killed (SIGKILL) while running a background job: the job shows as interrupted on the
  surviving server, timed from the kill (the lease is 15 s; the keeper looks every 5 s).

The app servers, the account and the token are made here; bench/multi_server.py drives the rounds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa

from storage.redis_client import key as redis_key
from storage.schema import jobs
from storage.sessions import GRANT_PATH
from storage.store import Store
from testkit.app_server import ROOT, app_env, wait_http
from testkit.redis_server import free_port

USER = "dr.bench"
PASSWORD = "correct horse battery staple"
SLOW = "SLOW-"        # a case with this marker makes the fake provider wait (the job to kill stays running)
APP_HEADING = "피부 병변 AI 평가"


@dataclass
class App:
    """One running `streamlit run app.py`: its process, its base URL (with a trailing /) and its log."""

    index: int
    proc: subprocess.Popen
    url: str
    log: Path


def server_env(work: Path, index: int, *, database_url: str, redis_url: str | None, provider_url: str) -> dict:
    """One server's settings: the fake provider as OpenAI, sign-in with accounts, the shared PostgreSQL (and Redis)."""
    env = app_env(OPENAI_API_KEY="sk-bench-not-real", OPENAI_BASE_URL=provider_url, OPENAI_MODEL="gpt-4o-mini",
                  SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS="none", HEDGE_AFTER_SECONDS="off",
                  WARM_UP="false", LLM_MAX_RETRIES="0", AUTH_MODE="accounts", DATABASE_URL=database_url,
                  API_RATE_PER_MINUTE="100000",  # the job watcher polls its status 10 times a second
                  DATA_DIR=str(work / f"server{index}"))
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def start_app(index: int, work: Path, env: dict[str, str]) -> App:
    """`streamlit run app.py` on a free port of 127.0.0.1 (its own process: it may be SIGKILLed)."""
    port = free_port()
    log_path = work / f"server{index}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    return App(index, proc, f"http://127.0.0.1:{port}/", log_path)


def wait_up(apps: list[App], seconds: float = 90) -> None:
    """Until every app answers its health check."""
    for app in apps:
        wait_http(app.url + "_stcore/health", app.proc, app.log, seconds)


def cli(env: dict[str, str], work: Path, *args: str, stdin: str = "") -> str:
    """`python cli.py ARGS` with a server's settings; returns its output, raises with its error when it fails."""
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], input=stdin, capture_output=True,
                          text=True, cwd=work, env=env, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"cli.py {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def add_user_and_token(env: dict[str, str], work: Path) -> str:
    """The account (an administrator: the API then lists everyone's cases too) and an API token; returns the token."""
    cli(env, work, "users", "add", USER, "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    return cli(env, work, "tokens", "add", USER).strip().splitlines()[-1]


# -- the browser -------------------------------------------------------------------------------

async def sign_in(page, seconds: float) -> float:
    """Fill the sign-in form and wait for the app behind it; returns seconds from the press to the app's heading."""
    from playwright.async_api import expect

    await expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=seconds * 1000)
    await page.get_by_role("textbox", name="사용자 이름").fill(USER)
    await page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
    started = time.monotonic()
    # The cookie comes with the grant route's answer; wait for it, so a later page of this context has it.
    async with page.expect_response(lambda r: GRANT_PATH in r.url, timeout=seconds * 1000):
        await page.get_by_role("button", name="로그인").click()
    await expect(page.get_by_role("heading", name=APP_HEADING)).to_be_visible(timeout=seconds * 1000)
    return time.monotonic() - started


async def sign_in_on_each(browser, apps: list[App], seconds: float) -> dict:
    """The account signs in through each server's own form (a fresh browser each); then the cookie server 1 set
    opens server 2 without the form (cookies do not tell ports apart: both servers see it)."""
    from playwright.async_api import expect

    found: dict = {"signed_in": [], "seconds": [], "cookie_opens_other": None}
    contexts = []
    try:
        for app in apps:
            context = await browser.new_context(locale="ko-KR")
            contexts.append(context)
            page = await context.new_page()
            await page.goto(app.url, timeout=seconds * 1000)
            try:
                found["seconds"].append(await sign_in(page, seconds))
                await expect(page.get_by_text(USER).first).to_be_visible(timeout=seconds * 1000)
                found["signed_in"].append(True)
            except AssertionError:
                found["signed_in"].append(False)
        page = await contexts[0].new_page()
        await page.goto(apps[1].url, timeout=seconds * 1000)
        try:
            await expect(page.get_by_role("heading", name=APP_HEADING)).to_be_visible(timeout=seconds * 1000)
            found["cookie_opens_other"] = await page.get_by_role("heading", name="로그인").count() == 0
        except AssertionError:
            found["cookie_opens_other"] = False
    finally:
        for context in contexts:
            await context.close()
    return found


# -- the history, through the API --------------------------------------------------------------

def api(app: App, token: str) -> httpx.Client:
    """An HTTP client of `app`'s API with the bench's bearer token."""
    return httpx.Client(base_url=app.url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30,
                        trust_env=False)


def listed(app: App, token: str) -> dict[str, str]:
    """Every analysis `app`'s API lists (id -> description), page by page."""
    out: dict[str, str] = {}
    with api(app, token) as client:
        for page in range(1, 101):
            body = client.get("/api/v1/analyses", params={"page": page, "page_size": 100}).raise_for_status().json()
            out.update({item["id"]: item["metadata"]["lesion_description"]
                        for item in body["items"]})
            if not body["has_more"]:
                break
    return out


def history_on_each(apps: list[App], token: str, expected: int, case_tokens: list[str]) -> dict:
    """Each server's list of analyses: the same ids on every server, `expected` of them, naming every case."""
    lists = [listed(app, token) for app in apps]
    ids = [set(found) for found in lists]
    texts = " ".join(lists[0].values())
    return {"listed": [len(found) for found in lists], "expected": expected,
            "same_on_each": all(s == ids[0] for s in ids),
            "cases_missing": [t for t in case_tokens if t not in texts],
            "ok": all(s == ids[0] for s in ids) and len(ids[0]) == expected and all(t in texts for t in case_tokens)}


# -- a server killed mid-job -------------------------------------------------------------------

def job_owner(job_id: str, *, database_url: str, redis_url: str | None) -> str | None:
    """The process holding the job (`host:pid:…`), from where the jobs live: Redis, or else the database."""
    if redis_url:
        owner = redis.Redis.from_url(redis_url, decode_responses=True).hget(redis_key("job", "v1", job_id), "owner")
        return str(owner) if owner else None
    store = Store(database_url, pool_size=1)
    try:
        with store.connect() as conn:
            return conn.execute(sa.select(jobs.c.owner).where(jobs.c.id == job_id)).scalar()
    finally:
        store.dispose()


def kill_mid_job(apps: list[App], token: str, *, database_url: str, redis_url: str | None, seconds: float) -> dict:
    """Submit a slow job, SIGKILL the server that runs it, and time until a survivor's API says interrupted."""
    with api(apps[0], token) as client:
        accepted = client.post("/api/v1/diagnose/skin-lesion-async",
                               json={"lesion_description": f"{SLOW} 등의 비대칭 흑갈색 반점, 중단될 작업"})
        accepted.raise_for_status()
        status_url = accepted.json()["status_url"]
        end = time.monotonic() + seconds
        while (body := client.get(status_url).json()).get("status") != "running":
            if time.monotonic() > end:
                return {"ok": False, "error": f"the job never ran: {body}"}
            time.sleep(0.05)
    job_id = status_url.rsplit("/", 1)[1]
    owner = job_owner(job_id, database_url=database_url, redis_url=redis_url) or ""
    victim = next((a for a in apps if owner.split(":")[1:2] == [str(a.proc.pid)]), None)
    if victim is None:
        return {"ok": False, "error": f"no server of this run holds the job (owner {owner!r})"}
    survivor = next(a for a in apps if a is not victim)
    os.kill(victim.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    victim.proc.wait(10)
    seen: list[str] = []
    with api(survivor, token) as client:
        while time.monotonic() - killed < seconds:
            body = client.get(status_url).json()
            if "status" not in body:
                return {"ok": False, "error": f"the survivor answered {body}", "killed": victim.index + 1}
            if not seen or seen[-1] != body["status"]:
                seen.append(body["status"])
            if body["status"] == "interrupted":
                return {"ok": True, "interrupted_after_s": time.monotonic() - killed, "killed": victim.index + 1,
                        "shown_by": survivor.index + 1, "statuses": seen, "error": body["error"]}
            time.sleep(0.1)
    return {"ok": False, "error": f"still {seen[-1] if seen else '?'} {seconds:g} s after the kill",
            "statuses": seen, "killed": victim.index + 1}
