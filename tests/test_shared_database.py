"""Two app servers on one PostgreSQL (DATABASE_URL), each with its own DATA_DIR, as two machines behind nginx:
an account added through one signs in on the other, and assessments written at once through both appear in both
histories."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from testkit.browser import CHROMIUM
from tests.api_server import PASSWORD, api_server
from tests.cli_runs import CliRun


@pytest.fixture(scope="module")
def servers(tmp_path_factory, postgres_server):
    """Two running servers sharing one fresh PostgreSQL database; yields (a, b, database URL)."""
    url = postgres_server.create_database()
    a_dir, b_dir = tmp_path_factory.mktemp("server-a"), tmp_path_factory.mktemp("server-b")
    with api_server(a_dir, DATABASE_URL=url) as a, api_server(b_dir, DATABASE_URL=url) as b:
        yield a, b, url
    postgres_server.drop_database(url)


def cli_on(server, database_url: str, *args: str, stdin: str = "") -> CliRun:
    """`cli.py ARGS` as an operator runs it on `server`'s machine (its DATA_DIR, the shared DATABASE_URL), in this
    process (tests/cli_runs.py)."""
    return server.cli(*args, stdin=stdin, DATABASE_URL=database_url)


def test_a_token_made_on_one_server_works_on_the_other(servers):
    a, b, url = servers
    added = cli_on(a, url, "users", "add", "dr.token", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    made = cli_on(a, url, "tokens", "add", "dr.token", "--name", "emr")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    with b.client(token) as c:
        assert c.get("/api/v1/analyses").status_code == 200
    assert not (b.data_dir / "app.db").exists()  # nothing durable on the machine itself


def test_twenty_assessments_at_once_through_both_appear_in_both_histories(servers):
    a, b, url = servers
    assert cli_on(a, url, "users", "add", "dr.busy", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    token = cli_on(b, url, "tokens", "add", "dr.busy").stdout.strip().splitlines()[-1]

    def assess(i: int) -> str:
        server = (a, b)[i % 2]
        with server.client(token) as c:
            r = c.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": f"case {i}: 등의 흑색 반점, 비대칭"})
        assert r.status_code == 200, r.text
        return r.json()["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        written = set(pool.map(assess, range(20)))
    assert len(written) == 20
    for server in (a, b):
        with server.client(token) as c:
            listed = c.get("/api/v1/analyses", params={"page_size": 50}).json()
        assert {item["id"] for item in listed["items"]} == written, server.url


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (scripts/test.sh installs it)")
def test_an_account_added_through_one_server_signs_in_on_the_other(servers, browser):
    from playwright.sync_api import expect

    a, b, url = servers
    added = cli_on(a, url, "users", "add", "dr.shared", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(b.url + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="사용자 이름").fill("dr.shared")
    page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
    page.get_by_role("button", name="로그인").click()
    expect(page.get_by_role("textbox", name="증상 및 소견")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", name="로그인")).to_have_count(0)
