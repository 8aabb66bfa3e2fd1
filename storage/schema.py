"""The store's tables as SQLAlchemy Core sees them: one schema for SQLite and PostgreSQL.

This is the shape at the newest migration (storage/migrations/versions). Queries are built from
these tables, never from SQL strings, so one code path runs on both databases: identifiers such
as `user` (a keyword in PostgreSQL) are quoted for each, and types map to each one's own.
A migration changes the database; this file is then changed to match, and the test
`test_schema_matches_migrations` compares the two on both databases.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Epoch seconds need a double: PostgreSQL's REAL is 4 bytes, which would round timestamps to minutes.
Seconds = sa.Double
# SQLite's own tables compare names ignoring case with COLLATE NOCASE; every query also compares
# lower(name), which a unique index backs on both databases (migration 0006).
Name = sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite")

assessments = sa.Table(
    "assessments", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("user", sa.Text),
    sa.Column("source", sa.Text, nullable=False, server_default="page"),  # page, job, cli, qa, batch
    sa.Column("qa_case", sa.Text),              # groups the answers of one QA comparison
    sa.Column("kind", sa.Text, nullable=False),  # text or image
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("info", sa.Text, nullable=False, server_default="{}"),
    sa.Column("thumbnail", sa.LargeBinary),     # only with HISTORY_KEEP_IMAGES
    sa.Column("provider", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("complete", sa.Integer, nullable=False, server_default="0"),
    sa.Column("label_code", sa.Integer),
    sa.Column("label_score", Seconds),
    sa.Column("risk", sa.Text),                 # the card's flag: malignant, premalignant or NULL
    sa.Column("summary", sa.Text, nullable=False, server_default=""),
    sa.Column("similar", sa.Text, nullable=False, server_default="[]"),
    sa.Column("raw", sa.Text, nullable=False, server_default=""),
    sa.Column("error", sa.Text),                # the error class when no answer came
    sa.Column("latency_ms", Seconds),
    sa.Column("first_token_ms", Seconds),
    sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cached", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fallback", sa.Integer, nullable=False, server_default="0"),
    sa.Column("hedged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tried", sa.Text, nullable=False, server_default=""),
    sa.Column("cache_key", sa.Text),
    sa.Column("pinned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("photo", sa.LargeBinary),         # the shrunk photo of a QA case, only with HISTORY_KEEP_IMAGES (0009)
)
sa.Index("assessments_created", assessments.c.created_at)
sa.Index("assessments_cache_key", assessments.c.cache_key)
sa.Index("assessments_qa_case", assessments.c.qa_case)
# The History page of one clinician, newest first, and the pinned demo cases.
sa.Index("assessments_user_created", assessments.c.user, assessments.c.created_at)
sa.Index("assessments_pinned", assessments.c.pinned, assessments.c.created_at)
# The History page's substring search (ILIKE '%…%'): trigram indexes, PostgreSQL only (migration 0008).
sa.Index("assessments_text_trgm", assessments.c.text, postgresql_using="gin",
         postgresql_ops={"text": "gin_trgm_ops"}).ddl_if(dialect="postgresql")
sa.Index("assessments_summary_trgm", assessments.c.summary, postgresql_using="gin",
         postgresql_ops={"summary": "gin_trgm_ops"}).ddl_if(dialect="postgresql")

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("updated_at", Seconds, nullable=False),
    sa.Column("user", sa.Text),
    sa.Column("status", sa.Text, nullable=False),  # queued, running, done, failed, interrupted
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("provider", sa.Text),
    sa.Column("request", sa.Text, nullable=False),  # JSON: text, info, language, provider, use_cache
    sa.Column("image", sa.LargeBinary),             # the shrunk photo, so the job can run again
    sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="SET NULL")),
    sa.Column("result", sa.Text),                   # JSON: the result's to_dict(), so jobs work without history
    sa.Column("error", sa.Text),                    # the English text of why it failed or was interrupted
    sa.Column("error_message", sa.Text),            # JSON: the same as a message id and its values (0010)
    sa.Column("elapsed_ms", Seconds),
    # Several servers on one database (migration 0007): the process that took or runs the job, and until when
    # (the database's clock) it is taken to be alive; it renews this while it lives.
    sa.Column("owner", sa.Text),
    sa.Column("lease_until", Seconds),
)
sa.Index("jobs_created", jobs.c.created_at)
sa.Index("jobs_status", jobs.c.status)
sa.Index("jobs_assessment", jobs.c.assessment_id)

reviews = sa.Table(
    "reviews", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("reviewer", sa.Text),
    sa.Column("verdict", sa.Text, sa.CheckConstraint("verdict IN ('correct', 'incorrect')"), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("expected_code", sa.Integer),     # the class the reviewer says it is, when given (0009)
    sa.Column("basis", sa.Text),                # what that class rests on: histology, clinician (0014)
)
sa.Index("reviews_assessment", reviews.c.assessment_id)

users = sa.Table(
    "users", metadata,
    sa.Column("name", Name, primary_key=True),             # 'Kim' and 'kim' are one account
    sa.Column("password_hash", sa.Text, nullable=False),   # scrypt$n$r$p$salt$hash, never the password
    sa.Column("is_admin", sa.Integer, nullable=False, server_default="0"),  # sees every user's jobs and history
    sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),  # failed sign-ins in a row
    sa.Column("locked_until", Seconds),                    # sign-in refused until then (epoch seconds)
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("last_login", Seconds),
)
sa.Index("users_name_lower", sa.func.lower(users.c.name), unique=True)

install_keys = sa.Table(
    "install_keys", metadata,
    sa.Column("purpose", sa.Text, primary_key=True),
    sa.Column("key", sa.LargeBinary, nullable=False),  # random, made here once per install
)

sign_in_failures = sa.Table(
    "sign_in_failures", metadata,
    sa.Column("address", sa.Text, primary_key=True),   # the client's address (IPv6: its /64), or 'local'
    sa.Column("name_key", sa.Text, primary_key=True),  # keyed hash of the name typed, never the name
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", Seconds, nullable=False),     # the latest attempt (epoch seconds)
)
sa.Index("sign_in_failures_name", sign_in_failures.c.name_key, sign_in_failures.c.last_at)
sa.Index("sign_in_failures_last", sign_in_failures.c.last_at)

sign_in_locks = sa.Table(  # imitation locks of names with no account
    "sign_in_locks", metadata,
    sa.Column("name_key", sa.Text, primary_key=True),
    sa.Column("locked_until", Seconds, nullable=False),
)

sign_in_devices = sa.Table(  # devices that signed in before: exempt from the per-account wait (storage/devices.py)
    "sign_in_devices", metadata,
    sa.Column("key", sa.Text, primary_key=True),   # SHA-256 of the device cookie; the cookie only in the browser
    sa.Column("user", Name, nullable=False),       # the account it signed in as
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("last_used", Seconds, nullable=False),
)
sa.Index("sign_in_devices_user", sign_in_devices.c.user)

user_preferences = sa.Table(  # what a user chose that follows them to any browser (storage/preferences.py)
    "user_preferences", metadata,
    # Lower case, as every query compares names: one key per account on both databases, for accounts and OIDC
    # alike (an OIDC user has no row in `users`), so no foreign key.
    sa.Column("user", sa.Text, primary_key=True),
    sa.Column("language", sa.Text, nullable=False),  # a key of domain.locales.TABLES: 'ko', 'en'
    sa.Column("updated_at", Seconds, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("key", sa.Text, primary_key=True),   # SHA-256 of the session id; the id is only in the cookie
    sa.Column("user", Name, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("last_seen", Seconds, nullable=False),  # written at most once a minute
    sa.Column("address", sa.Text),                 # the client's address at sign-in
    sa.Column("agent", sa.Text, nullable=False, server_default=""),  # the browser's User-Agent at sign-in
    sa.Column("grant_key", sa.Text, unique=True),  # SHA-256 of the one-use sign-in grant, until traded
    sa.Column("grant_until", Seconds),
    sa.Column("ended", sa.Text),                   # NULL while live; revoked, idle or lifetime
)
sa.Index("sessions_user", sessions.c.user, sessions.c.ended)
sa.Index("sessions_created", sessions.c.created_at)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Text, primary_key=True),    # shown by `cli.py tokens list`, used to revoke
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),  # SHA-256 of the token, hex; never the token
    sa.Column("user", sa.Text, nullable=False),    # the token acts as this user
    sa.Column("name", sa.Text, nullable=False, server_default=""),  # a label: which system holds it
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("expires_at", Seconds),              # NULL: never
    sa.Column("revoked_at", Seconds),
    sa.Column("last_used_at", Seconds),
)
sa.Index("api_tokens_user", api_tokens.c.user)

# Double reading (0013): the second reader's reading of a case and a clinician's arbitration, one each per case.
second_readings = sa.Table(
    "second_readings", metadata,
    sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),   # pending, done or unavailable
    sa.Column("job_id", sa.Text),                  # the background job making it
    sa.Column("asked_at", Seconds, nullable=False),
    sa.Column("at", Seconds),                      # when it was answered or given up
    sa.Column("elapsed_ms", Seconds),
    sa.Column("label_code", sa.Integer),
    sa.Column("label_score", Seconds),
    sa.Column("similar", sa.Text, nullable=False, server_default="[]"),  # sealed like the history's
    sa.Column("summary", sa.Text, nullable=False, server_default=""),    # sealed like the history's
    sa.Column("reason", sa.Text),                  # why unavailable: a message id and its values, as JSON
    sa.Column("cached", sa.Integer, nullable=False, server_default="0"),
    sa.Column("concordance", sa.Text),             # agree, differ, differ_risk, pending or unavailable
)
sa.Index("second_readings_concordance", second_readings.c.concordance)

arbitrations = sa.Table(
    "arbitrations", metadata,
    sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),  # sealed: a clinician's note may name the patient
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("at", Seconds, nullable=False),
)

# The audit trail (0014, storage/audit.py): append-only, each event's hash covering the previous one's.
audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),  # 1, 2, 3…: the chain's order
    sa.Column("at", Seconds, nullable=False),
    sa.Column("action", sa.Text, nullable=False),      # domain.audit.Action
    sa.Column("actor_kind", sa.Text, nullable=False),  # user, token, cli or system
    sa.Column("actor", sa.Text, nullable=False),       # a user name, a token's id (never the token), an OS account
    sa.Column("user", sa.Text),                        # the account acted as (a token's user); NULL: none
    sa.Column("address", sa.Text),                     # the client's address; NULL: this machine
    sa.Column("outcome", sa.Text, nullable=False),     # success or failure
    sa.Column("cases", sa.Text, nullable=False, server_default="[]"),   # JSON: the assessment ids touched
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),  # JSON: counts, filters; never patient text
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)
sa.Index("audit_events_at", audit_events.c.at)
sa.Index("audit_events_user", sa.func.lower(audit_events.c.user), audit_events.c.at)

audit_head = sa.Table(  # one row: the newest event's number and hash, written with it (a removed tail shows)
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)

# What `cli.py db copy` moves, parents before children (the foreign keys), and the column each is ordered by
# for its checksum. Sessions and sign-in throttling are not moved: they are short-lived, and a copy signs
# everyone out rather than carrying live session keys to a new database.
DURABLE_TABLES = (users, user_preferences, assessments, reviews, jobs, api_tokens, second_readings,
                  arbitrations, audit_events, audit_head)
