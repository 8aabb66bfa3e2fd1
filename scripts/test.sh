#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then pytest.
# Arguments are passed to pytest (e.g. `bash scripts/test.sh -k parser`).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's Chromium drives the browser test (Playwright never downloads a browser here);
# Debian's redis-server backs the "more than one server" tests (tests/test_redis.py);
# Debian's postgresql gives initdb/pg_ctl for the throw-away clusters of the store tests (testkit/postgres.py).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v pg_ctl >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# pip is asked again only when the requirements have changed since it last installed them into this .venv: asking it
# to find every package already there costs ~2 s a run. A new .venv has no stamp.
stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" > "$stamp"
fi

# Python's bytecode cache on for the run, whatever the shell says (PYTHONDONTWRITEBYTECODE=1 here): otherwise every
# worker, app server and command-line run compiles the app again, and pytest rewrites every test module's asserts
# again (collecting the suite took 12 CPU-seconds in each worker, 5.5 with the cache).
unset PYTHONDONTWRITEBYTECODE

# Four workers on two cores: much of a test's time is spent waiting (servers, browsers, budgets), not computing.
# One file stays in one worker (--dist loadfile), so a module's server starts once; files are handed out in the
# order tests/conftest.py gives them, longest first (--no-loadscope-reorder: xdist would put the files with the
# most tests first, and the long browser files, with few tests each, last); `-n 0` runs in one process.
exec .venv/bin/python -m pytest -n 4 --dist loadfile --no-loadscope-reorder "$@"
