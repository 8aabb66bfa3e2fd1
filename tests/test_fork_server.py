"""The tests' app servers, forked from one warm interpreter (testkit/fork_server.py): each runs with exactly the
environment it was given and imports the app afresh; one that cannot start is reported with its log; one that is
stopped is gone."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import pytest
import streamlit

import startup
from testkit import fork_server as forking
from testkit.app_server import ROOT, app_env, serve_app, wait_http
from testkit.processes import stop


def test_two_servers_at_once_each_run_with_their_own_environment_and_end_when_stopped(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with serve_app(app_env(DATA_DIR=str(first / "data"), AUTH_MODE="off"), first) as one, \
            serve_app(app_env(DATA_DIR=str(second / "data"), AUTH_MODE="accounts"), second) as other:
        assert one != other
        # Each migrated its own store at start, as its own DATA_DIR said (the log line names the file).
        for cwd in (first, second):
            log = (cwd / "streamlit.log").read_text()
            assert f"store {cwd / 'data' / 'app.db'} at revision" in log, log
        assert (first / "data" / "app.db").exists() and (second / "data" / "app.db").exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(one + "/healthz", timeout=5)


def test_a_server_that_cannot_start_is_reported_with_its_log(fork_server, tmp_path):
    log = tmp_path / "streamlit.log"
    proc = fork_server.spawn(["run", str(tmp_path / "no-such-app.py")], tmp_path, app_env(), log)
    try:
        with pytest.raises(RuntimeError, match="(?s)the server stopped: .*does not exist"):
            wait_http("http://127.0.0.1:9/healthz", proc, log, seconds=30)
        assert proc.poll() == -1
    finally:
        stop(proc)


def test_the_warm_interpreter_forgets_the_apps_modules_and_keeps_the_libraries():
    assert forking._is_app_module(startup) and forking._is_app_module(sys.modules["storage.store"])
    assert not forking._is_app_module(streamlit) and not forking._is_app_module(forking)
    assert (ROOT / "app.py").exists()  # the modules are told apart by where they are: under the project, not .venv
