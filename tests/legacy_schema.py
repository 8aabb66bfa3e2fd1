"""The store's schema as the release before Alembic made it: its five numbered SQLite migrations, verbatim.

Copied from `storage/store.py` at commit 572c9a8 (the last release that ran them), so the upgrade tests
start from a file such a release left behind: the tables these scripts made and `PRAGMA user_version = 5`.
Never edit the scripts: they are what is out there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Append only: a migration that has shipped is never edited, the next number fixes it.
MIGRATIONS: tuple[str, ...] = (
    # 1: history, jobs, reviews
    """
    CREATE TABLE assessments (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        user TEXT,
        source TEXT NOT NULL DEFAULT 'page',      -- page, job, cli, qa, batch
        qa_case TEXT,                              -- groups the answers of one QA comparison
        kind TEXT NOT NULL,                        -- text or image
        language TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        info TEXT NOT NULL DEFAULT '{}',
        thumbnail BLOB,                            -- only with HISTORY_KEEP_IMAGES
        provider TEXT,
        model TEXT,
        complete INTEGER NOT NULL DEFAULT 0,
        label_code INTEGER,
        label_score REAL,
        risk TEXT,                                 -- the card's flag: malignant, premalignant or NULL
        summary TEXT NOT NULL DEFAULT '',
        similar TEXT NOT NULL DEFAULT '[]',
        raw TEXT NOT NULL DEFAULT '',
        error TEXT,                                -- the error class when no answer came
        latency_ms REAL,
        first_token_ms REAL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        fallback INTEGER NOT NULL DEFAULT 0,
        hedged INTEGER NOT NULL DEFAULT 0,
        tried TEXT NOT NULL DEFAULT '',
        cache_key TEXT,
        pinned INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX assessments_created ON assessments (created_at);
    CREATE INDEX assessments_cache_key ON assessments (cache_key);
    CREATE INDEX assessments_qa_case ON assessments (qa_case);

    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        user TEXT,
        status TEXT NOT NULL,                      -- queued, running, done, failed, interrupted
        kind TEXT NOT NULL,
        provider TEXT,
        request TEXT NOT NULL,                     -- JSON: text, info, language, provider, use_cache
        image BLOB,                                -- the shrunk photo, so the job can run again
        assessment_id TEXT REFERENCES assessments (id) ON DELETE SET NULL,
        result TEXT,                               -- JSON: the result's to_dict(), so jobs work without history
        error TEXT,
        elapsed_ms REAL
    );
    CREATE INDEX jobs_created ON jobs (created_at);

    CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        assessment_id TEXT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        reviewer TEXT,
        verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect')),
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX reviews_assessment ON reviews (assessment_id);
    """,
    # 2: sign-in accounts (storage/accounts.py, AUTH_MODE=accounts)
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY COLLATE NOCASE,      -- 'Kim' and 'kim' are one account
        password_hash TEXT NOT NULL,               -- scrypt$n$r$p$salt$hash, never the password
        is_admin INTEGER NOT NULL DEFAULT 0,       -- sees every user's jobs and history
        failed_count INTEGER NOT NULL DEFAULT 0,   -- failed sign-ins in a row
        locked_until REAL,                         -- sign-in refused until then (epoch seconds)
        created_at REAL NOT NULL,
        last_login REAL
    );
    """,
    # 3: sign-in throttling per client address; locks only on failures from many addresses (storage/sign_in_throttle.py)
    """
    CREATE TABLE install_keys (
        purpose TEXT PRIMARY KEY,
        key BLOB NOT NULL                          -- random, made here once per install
    );
    INSERT INTO install_keys (purpose, key) VALUES ('sign_in_names', randomblob(32));
    CREATE TABLE sign_in_failures (
        address TEXT NOT NULL,                     -- the client's address (IPv6: its /64), or 'local'
        name_key TEXT NOT NULL,                    -- keyed hash of the name typed, never the name
        failures INTEGER NOT NULL,
        last_at REAL NOT NULL,                     -- the latest attempt (epoch seconds)
        PRIMARY KEY (address, name_key)
    );
    CREATE INDEX sign_in_failures_name ON sign_in_failures (name_key, last_at);
    CREATE INDEX sign_in_failures_last ON sign_in_failures (last_at);
    CREATE TABLE sign_in_locks (                   -- imitation locks of names with no account
        name_key TEXT PRIMARY KEY,
        locked_until REAL NOT NULL
    );
    """,
    # sign-in sessions behind the session cookie, and OIDC sign-ins' first and last use (storage/sessions.py)
    """
    CREATE TABLE sessions (
        key TEXT PRIMARY KEY,                      -- SHA-256 of the session id; the id is only in the cookie
        user TEXT NOT NULL COLLATE NOCASE,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,                   -- written at most once a minute
        address TEXT,                              -- the client's address at sign-in
        agent TEXT NOT NULL DEFAULT '',            -- the browser's User-Agent at sign-in
        grant_key TEXT UNIQUE,                     -- SHA-256 of the one-use sign-in grant, until traded
        grant_until REAL,
        ended TEXT                                 -- NULL while live; revoked, idle or lifetime
    );
    CREATE INDEX sessions_user ON sessions (user, ended);
    CREATE INDEX sessions_created ON sessions (created_at);
    """,
    # bearer tokens of the HTTP API (storage/tokens.py); only a hash of each token is kept
    """
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,                       -- shown by `cli.py tokens list`, used to revoke
        token_hash TEXT NOT NULL UNIQUE,           -- SHA-256 of the token, hex; never the token
        user TEXT NOT NULL,                        -- the token acts as this user
        name TEXT NOT NULL DEFAULT '',             -- a label: which system holds it
        created_at REAL NOT NULL,
        expires_at REAL,                           -- NULL: never
        revoked_at REAL,
        last_used_at REAL
    );
    CREATE INDEX api_tokens_user ON api_tokens (user);
    """,
)


def make_legacy_database(path: Path) -> Path:
    """A SQLite file at `path` as that release made it: every numbered migration run, user_version 5."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as that release left its files
        for number, script in enumerate(MIGRATIONS, start=1):
            conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    finally:
        conn.close()
    return path
