"""Settings read from the environment and `.env`, with the original backend's names.

Each setting is declared once, as a field of `Settings`: its variable, how its value is read,
its default and a one-line description. The loader, the README's table
(`python -m utils.settings --markdown`) and the tests' isolation list (`ENV_NAMES`) all come
from those declarations.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import EllipsisType
from typing import Any, Literal

from dotenv import dotenv_values

from utils.score_calibration import CalibrationInvalid, read_calibration
from utils.urls import url_problem, without_password

# Where `load_settings` looks for `.env` unless told otherwise; read at call time, so the tests
# can point it at a file that does not exist (tests/conftest.py).
ENV_FILE: str | os.PathLike[str] = ".env"

Kind = Literal["text", "secret", "name", "path", "number", "integer", "flag", "choice", "names", "list",
               "seconds_or_auto", "encryption_key", "url", "secret_url", "calibration_file"]
_SECRET_KINDS = frozenset({"secret", "encryption_key", "secret_url"})


class SettingsError(ValueError):
    """A setting in `.env` or the environment has a value the app cannot use."""


@dataclass(frozen=True)
class Setting:
    """How one environment variable is read: its parser kind, bounds and README line."""

    env: str
    kind: Kind
    doc: str
    minimum: float = 0.0
    maximum: float = float("inf")
    choices: tuple[str, ...] = ()
    unset: str = ""  # what an empty value means, for the README, when the default alone does not say it


def setting(env: str, default: Any, doc: str, kind: Kind = "text", *, minimum: float = 0.0,
            maximum: float = float("inf"), choices: tuple[str, ...] = (), unset: str = "") -> Any:
    """A `Settings` field read from `env`; secrets are left out of the dataclass's repr."""
    spec = Setting(env, kind, doc, minimum=minimum, maximum=maximum, choices=choices, unset=unset)
    return field(default=default, repr=kind not in _SECRET_KINDS, metadata={"setting": spec})


# -- parsers, one per kind ---------------------------------------------------------------------

def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0,
            maximum: float = float("inf")) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}: fix it in .env") from None
    if not minimum <= value <= maximum:
        bounds = f"at least {minimum:g}" if maximum == float("inf") else f"between {minimum:g} and {maximum:g}"
        raise SettingsError(f"{name} must be {bounds}, got {raw!r}: fix it in .env")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: float = 0,
             maximum: float = float("inf")) -> int:
    value = _number(env, name, default, minimum=minimum, maximum=maximum)
    if not math.isfinite(value) or value != int(value):  # int(inf) would raise OverflowError, not say which variable
        raise SettingsError(f"{name} must be a whole number, got {env[name]!r}: fix it in .env")
    return int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}: fix it in .env")


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}: fix it in .env")
    return raw


def _names(env: Mapping[str, str], name: str, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"none", "off", "false", "0"}:
        return ()
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    parts = tuple(part.strip().lower() for part in env.get(name, "").split(",") if part.strip())
    return parts or default


def _encryption_key(env: Mapping[str, str], name: str, default: str) -> str:
    # Checked here, not only where it is used, so the page says which variable is wrong before
    # anything is stored. One Fernet key, or several comma-separated (the first encrypts).
    raw = _text(env, name, default)
    for part in (p.strip() for p in raw.split(",")):
        try:
            valid = len(base64.urlsafe_b64decode(part.encode("ascii"))) == 32 and len(part) == 44
        except (ValueError, UnicodeError):
            valid = False
        if part and not valid:  # the value is a secret: never repeated in the message
            raise SettingsError(f"{name} must be a Fernet key (44 characters); generate one with: python -c "
                                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"')
    return raw


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    # Checked at load, so a port like 99999 or 'abc' is one line naming the variable, not a traceback (or a 500 on
    # every request) wherever the URL is first used; the URL is shown without its password.
    raw = _text(env, name, default)
    if raw and (problem := url_problem(raw)):
        # Without "://" the value may be a bare password pasted in the wrong place: it is not repeated then.
        shown = f" ({without_password(raw)})" if "://" in raw else ""
        raise SettingsError(f"{name} cannot be used: {problem}{shown}: fix it in .env")
    return raw


def _calibration_file(env: Mapping[str, str], name: str) -> Path | None:
    # Read here, so a missing or malformed file is one line naming the variable, not a traceback in the engine.
    try:
        return Path(read_calibration(raw).source) if (raw := _text(env, name)) else None
    except CalibrationInvalid as exc:
        raise SettingsError(f"{name} ({raw}) cannot be used: {exc}. Make it with `python cli.py qa calibrate "
                            "RESULTS_DIR --out calibration.json`, or unset it in .env") from None


def _seconds_or_auto(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw == "auto":
        return None
    if raw in {"off", "never", "false"}:
        return 0.0
    return _number(env, name, 0.0)


_PARSERS: dict[str, Callable[[Mapping[str, str], Setting, Any], Any]] = {
    "text": lambda env, s, default: _text(env, s.env, default),
    "secret": lambda env, s, default: _text(env, s.env, default),
    "name": lambda env, s, default: _text(env, s.env, default).lower(),
    "path": lambda env, s, default: Path(_text(env, s.env, str(default))),
    "number": lambda env, s, default: _number(env, s.env, default, minimum=s.minimum, maximum=s.maximum),
    "integer": lambda env, s, default: _integer(env, s.env, default, minimum=s.minimum, maximum=s.maximum),
    "flag": lambda env, s, default: _flag(env, s.env, default),
    "choice": lambda env, s, default: _choice(env, s.env, s.choices, default),
    "names": lambda env, s, default: _names(env, s.env, default),
    "list": lambda env, s, default: _list(env, s.env, default),
    "seconds_or_auto": lambda env, s, default: _seconds_or_auto(env, s.env, default),
    "encryption_key": lambda env, s, default: _encryption_key(env, s.env, default),
    "url": lambda env, s, default: _url(env, s.env, default),
    "secret_url": lambda env, s, default: _url(env, s.env, default),
    "calibration_file": lambda env, s, default: _calibration_file(env, s.env),
}


# -- the declarations --------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """Every knob of the app; built once from the environment by `load_settings`."""

    openai_api_key: str = setting("OPENAI_API_KEY", "", "OpenAI API key", "secret")
    openai_model: str = setting("OPENAI_MODEL", "gpt-4o-mini", "OpenAI model")
    openai_base_url: str = setting("OPENAI_BASE_URL", "", "OpenAI base URL, only for a proxy or an Azure-style "
                                   "gateway", "url", unset="OpenAI's own")
    runpod_api_key: str = setting("RUNPOD_API_KEY", "", "RunPod API key (the clinic's fine-tuned model)", "secret")
    runpod_base_url: str = setting("RUNPOD_BASE_URL", "", "RunPod endpoint: "
                                   "`https://api.runpod.ai/v2/<ENDPOINT_ID>/openai/v1`", "url")
    runpod_model_name: str = setting("RUNPOD_MODEL_NAME", "", "model name the RunPod endpoint serves")
    local_base_url: str = setting("LOCAL_BASE_URL", "", "any OpenAI-compatible server: Ollama "
                                  "(`http://localhost:11434/v1`), vLLM, llama.cpp", "url")
    local_model: str = setting("LOCAL_MODEL", "", "model name on the local server")
    local_api_key: str = setting("LOCAL_API_KEY", "", "API key of the local server, if it wants one", "secret")
    local_accepts_images: bool = setting("LOCAL_ACCEPTS_IMAGES", True, "the local model reads photos (false for a "
                                         "text-only model)", "flag")

    # Text to the fast hosted model, photos to the clinic's fine-tuned vision model (see README).
    text_provider: str = setting("SKIN_DIAGNOSIS_PROVIDER", "openai", "first provider for text (`runpod`, `openai` or "
                                 "`local`); an unconfigured one gives way to the first configured", "name")
    image_provider: str = setting("SKIN_DIAGNOSIS_IMAGE_PROVIDER", "runpod", "first provider for photos", "name")

    request_timeout: float = setting("REQUEST_TIMEOUT", 30.0, "seconds for one attempt", "number", minimum=0.1)
    max_tokens: int = setting("MAX_TOKENS", 700, "answer token limit (a complete answer needs 250-400), sent as "
                              "`max_completion_tokens` and, to RunPod and local servers, also as `max_tokens`",
                              "integer", minimum=64)
    temperature: float = setting("TEMPERATURE", 0.1, "sampling temperature", "number")
    max_retries: int = setting("LLM_MAX_RETRIES", 1, "retries on timeouts, connection errors and 408/409/429/5xx "
                               "only; `Retry-After` is honoured", "integer")
    retry_base_delay: float = setting("LLM_RETRY_BASE_DELAY", 0.5, "seconds before the first retry (doubling)",
                                      "number")
    stream: bool = setting("LLM_STREAM", True, "stream answers, so findings appear as they are written (false for "
                           "a server whose streaming is broken)", "flag")
    text_budget_seconds: float = setting("TEXT_BUDGET_SECONDS", 15.0, "seconds for a whole text assessment, retries "
                                         "and backoff included", "number", minimum=0.1)
    image_budget_seconds: float = setting("IMAGE_BUDGET_SECONDS", 30.0, "seconds for a whole photo assessment, "
                                          "retries and backoff included", "number", minimum=0.1)
    max_text_chars: int = setting("MAX_TEXT_CHARS", 4000, "longest description accepted, in characters", "integer",
                                  minimum=100)

    # None: every other configured provider, in registry order; (): no fallback.
    provider_fallbacks: tuple[str, ...] | None = setting(
        "PROVIDER_FALLBACKS", None, "order to fall back in, e.g. `runpod,openai`; `none` turns fallback off", "names",
        unset="every other configured provider")
    # None: derived from each provider's recent first-token times; 0: never hedge.
    hedge_after_seconds: float | None = setting(
        "HEDGE_AFTER_SECONDS", None, "no first token by then: the next provider starts in parallel; `off` never",
        "seconds_or_auto", unset="`auto`: 1.25 × the provider's recent p90 first-token time")
    hedge_min_seconds: float = setting("HEDGE_MIN_SECONDS", 0.75, "lower bound of the automatic hedge delay",
                                       "number")
    hedge_max_seconds: float = setting("HEDGE_MAX_SECONDS", 4.0, "upper bound of the automatic hedge delay", "number")
    health_failures: int = setting("HEALTH_FAILURES", 3, "failures in a row before a provider is skipped for a "
                                   "cool-down", "integer", minimum=1)
    health_cooldown_seconds: float = setting("HEALTH_COOLDOWN_SECONDS", 60.0, "first cool-down; doubles each time "
                                             "the provider is skipped again, up to 8×", "number")
    cold_start_seconds: float = setting("COLD_START_SECONDS", 10.0, "a first token this late means a worker had to "
                                        "boot: skip the provider for a cool-down", "number", minimum=0.1)
    serverless_idle_seconds: float = setting("SERVERLESS_IDLE_SECONDS", 5.0, "your RunPod endpoint's idle timeout "
                                             "(learned upwards when workers stay up longer)", "number")
    warm_up: bool = setting("WARM_UP", True, "wake RunPod when a clinician opens the page", "flag")
    warm_up_seconds: float = setting("WARM_UP_SECONDS", 20.0, "at most one wake-up ping per provider this often",
                                     "number")
    keep_warm_seconds: float = setting("KEEP_WARM_SECONDS", 0.0, "ping RunPod this often while sessions are active "
                                       "(**costs worker time**; 0 = off)", "number")
    keep_warm_active_seconds: float = setting("KEEP_WARM_ACTIVE_SECONDS", 600.0, "a session counts as active this "
                                              "long after its last use", "number")

    # Double reading (engine/second_reading.py): "auto" is RunPod when RunPod is configured, else off.
    second_reader: str = setting("SECOND_READER", "auto", "the provider that reads every case a second time, in the "
                                 "background, shown beside the first reading (never blended): `auto` = `runpod` "
                                 "when RunPod is configured, a provider name, or `off`", "name")
    second_reader_budget_seconds: float = setting("SECOND_READER_BUDGET_SECONDS", 300.0, "seconds the second "
                                                  "reading may take, a serverless worker's cold boot included",
                                                  "number", minimum=1)

    image_max_side: int = setting("IMAGE_MAX_SIDE", 512, "longest side of the photo sent, in pixels", "integer",
                                  minimum=64)
    image_jpeg_quality: int = setting("IMAGE_JPEG_QUALITY", 70, "JPEG quality of the photo sent", "integer",
                                      minimum=10, maximum=95)
    image_max_upload_mb: float = setting("IMAGE_MAX_UPLOAD_MB", 25.0, "largest photo accepted, in MB", "number",
                                         minimum=0.1)
    image_max_pixels: int = setting("IMAGE_MAX_PIXELS", 50_000_000, "most pixels a photo may have; phones write "
                                    "12-48 MP, a larger photo is refused with its size before decoding",
                                    "integer", minimum=1_000_000)
    image_decode_concurrency: int = setting("IMAGE_DECODE_CONCURRENCY", 2, "photos decoded at once per app process; "
                                            "a PNG or WebP takes 4-8 bytes a pixel while it is decoded (up to "
                                            "400 MB at 50 MP), a JPEG far less", "integer", minimum=1, maximum=64)

    data_dir: Path = setting("DATA_DIR", Path(".data"), "where the history, the accounts and the answer cache live",
                             "path")
    cache_ttl_seconds: float = setting("CACHE_TTL_SECONDS", 1800.0, "how long an answer is reused", "number")
    cache_enabled: bool = setting("CACHE_ENABLED", True, "reuse answers to identical requests", "flag")
    history_enabled: bool = setting("HISTORY_ENABLED", True, "record every assessment", "flag")
    history_keep_images: bool = setting("HISTORY_KEEP_IMAGES", False, "keep a 128 px thumbnail of each photo in the "
                                        "history, and the shrunk photo of Provider QA cases (for the labelled set)",
                                        "flag")
    history_retention_days: float = setting("HISTORY_RETENTION_DAYS", 365.0, "purge assessments after this many "
                                            "days (pinned cases stay)", "number", minimum=0.01)
    audit_retention_days: float = setting("AUDIT_RETENTION_DAYS", 2190.0, "purge audit events after this many "
                                          "days (six years; separate from the history's); an anchor event records "
                                          "each cut so the rest still verifies", "number", minimum=1)
    job_workers: int = setting("JOB_WORKERS", 4, "background jobs run at once", "integer", minimum=1, maximum=64)
    job_max_queued_per_user: int = setting("JOB_MAX_QUEUED_PER_USER", 20, "background jobs one user (or API token's "
                                           "user) may have waiting; more are refused (the API: 429) until some run "
                                           "(0 = no limit)", "integer", minimum=0)
    batch_max_cases: int = setting("BATCH_MAX_CASES", 2000, "most cases in one batch QA run, refused before any "
                                   "call (the command line's `--max-cases N` sets it for one run)", "integer",
                                   minimum=1)
    # Calibrated scores (utils/score_calibration.py); REFER_BELOW is the clinic's refer rule on them.
    calibration_file: Path | None = setting("CALIBRATION_FILE", None, "a `calibration.json` made by `cli.py qa "
                                            "calibrate` from a labelled batch: the card, the API, the command line "
                                            "and History show each provider's calibrated score beside its own",
                                            "calibration_file", unset="off")
    refer_below: float | None = setting("REFER_BELOW", None, "the card says \"refer: low confidence\" when the "
                                        "calibrated score is below this (needs `CALIBRATION_FILE`)", "number",
                                        maximum=100, unset="off")
    demo_mode: bool = setting("DEMO_MODE", False, "answer the demo pack's cases (`cli.py demo load`) and pinned cases, "
                              "any other \"not in the demo set\"; ask no provider (no key or network needed)", "flag")

    # The HTTP API (web/api/): the original backend's endpoints, with bearer tokens (`cli.py tokens add`).
    api_rate_per_minute: int = setting("API_RATE_PER_MINUTE", 60, "API requests one token may make a minute, per "
                                       "app process; more get 429 with `Retry-After` (0 = no limit)", "integer")
    api_max_concurrent: int = setting("API_MAX_CONCURRENT", 8, "API assessments (and refine/explain) run at once per "
                                      "app process; more wait up to 5 s, then get 503 with `Retry-After`", "integer",
                                      minimum=1, maximum=256)
    allowed_origins: tuple[str, ...] = setting("ALLOWED_ORIGINS", (), "web origins whose pages may call the API "
                                               "from a browser (CORS), e.g. `https://emr.example.org`", "list",
                                               unset="none: no CORS headers")

    auth_mode: str = setting("AUTH_MODE", "accounts", "`accounts` (the app's own), `oidc` (Streamlit's "
                             "`st.login`), `off` (development only)", "choice", choices=("accounts", "oidc", "off"))
    login_max_failures: int = setting("LOGIN_MAX_FAILURES", 5, "failed sign-ins from one client address, or at one "
                                      "account from devices that never signed in to it, before each further attempt "
                                      "must wait (2 s, doubling)", "integer", minimum=1)
    login_lockout_seconds: float = setting("LOGIN_LOCKOUT_SECONDS", 900.0, "the longest wait between attempts from "
                                           "one address; an account's wait for unknown devices grows at least this "
                                           "far, and further if needed so that 1,000 guesses take a day (no account "
                                           "is ever locked)", "number")
    trusted_proxy_hops: int = setting("TRUSTED_PROXY_HOPS", 0, "reverse proxies in front of the app that append "
                                      "`X-Forwarded-For`; 0 trusts no header (the connection's address counts)",
                                      "integer", minimum=0, maximum=10)
    session_timeout_minutes: float = setting("SESSION_TIMEOUT_MINUTES", 30.0, "idle minutes before a session is "
                                             "signed out", "number", minimum=0.1)
    session_max_hours: float = setting("SESSION_MAX_HOURS", 12.0, "hours after sign-in when a session ends however "
                                       "busy (one shift); sign in again", "number", minimum=0.1, maximum=720)
    admin_users: tuple[str, ...] = setting("ADMIN_USERS", (), "e-mail addresses of the administrators when "
                                           "`AUTH_MODE=oidc`", "list", unset="none")
    database_url: str = setting("DATABASE_URL", "", "`postgresql://user:password@host/db` to share accounts, "
                                "sessions, tokens, history, reviews and pins between servers (see *More than one "
                                "server*)", "secret_url", unset="SQLite file `app.db` under `DATA_DIR`")
    database_pool_size: int = setting("DATABASE_POOL_SIZE", 5, "connections each app process keeps open to "
                                      "PostgreSQL (up to twice as many under a burst)", "integer", minimum=1,
                                      maximum=100)
    database_timeout_seconds: float = setting("DATABASE_TIMEOUT_SECONDS", 5.0, "longest a database statement, "
                                              "a connection or a lock wait may take before it fails",
                                              "number", minimum=0.1, maximum=300)
    redis_url: str = setting("REDIS_URL", "", "share the cache, jobs and metrics between app processes (see *More "
                             "than one server*)", "secret_url", unset="off")
    metrics_token: str = setting("METRICS_TOKEN", "", "when set, `GET /metrics` wants `Authorization: Bearer` and "
                                 "this token (see *Health and metrics*)", "secret", unset="open")
    data_encryption_key: str = setting("DATA_ENCRYPTION_KEY", "", "Fernet key(s) sealing patient data at rest "
                                       "(see *Privacy*); `NEW,OLD` to rotate", "encryption_key", unset="off")

    @property
    def answer_max_bytes(self) -> int:
        """The most of one answer that is read: MAX_TOKENS at 16 bytes of UTF-8 a token, within 4-64 KB.

        A complete answer is 250-400 tokens (2-5 KB); a token is at most a few bytes, so only a runaway
        answer gets here. The ceiling keeps a misconfigured MAX_TOKENS from letting megabytes through.
        """
        return min(max(self.max_tokens * 16, 4_000), 64_000)  # several times the few bytes a token is

    @property
    def image_max_upload_bytes(self) -> int:
        """IMAGE_MAX_UPLOAD_MB in bytes: the one limit for an upload, a picked photo, a file or a ZIP entry."""
        return int(self.image_max_upload_mb * 1_000_000)


def declarations() -> tuple[tuple[dataclasses.Field[Any], Setting], ...]:
    """Every field of `Settings` with its declaration, in declaration order."""
    return tuple((f, f.metadata["setting"]) for f in dataclasses.fields(Settings))


ENV_NAMES: tuple[str, ...] = tuple(spec.env for _, spec in declarations())


def load_settings(env: Mapping[str, str] | None = None,
                  env_file: str | os.PathLike[str] | None | EllipsisType = ...) -> Settings:
    """Build `Settings` from `env` (default: `env_file` overlaid by the process environment).

    `env_file` defaults to `ENV_FILE` (`.env` in the working directory); None reads no file. Variables set in
    the process environment win over `.env`, so an operator can override one value without editing the file.
    Raises `SettingsError` with the variable's name when a value cannot be used.
    """
    if env is None:
        path = ENV_FILE if env_file is ... else env_file
        merged: dict[str, str] = {}
        if path and Path(path).is_file():
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
        merged.update(os.environ)
        env = merged
    settings = Settings(**{f.name: _PARSERS[spec.kind](env, spec, f.default) for f, spec in declarations()})
    if settings.refer_below is not None and settings.calibration_file is None:
        raise SettingsError("REFER_BELOW needs CALIBRATION_FILE (it applies to calibrated scores): fix it in .env")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; `get_settings.cache_clear()` re-reads them."""
    return load_settings()


# -- the README's table ------------------------------------------------------------------------

def _figure(value: float) -> str:
    """A number as the README writes it: 0.75, 30, 100 000 000."""
    if value == int(value) and abs(value) >= 100_000:
        return f"{int(value):,}".replace(",", " ")
    return f"{value:g}"


def _accepts(spec: Setting) -> str:
    low = _figure(spec.minimum)
    bounds = f"{low}–{_figure(spec.maximum)}" if spec.maximum != float("inf") else f"≥ {low}"
    return {
        "text": "text", "secret": "text (secret)", "name": "provider name", "path": "folder",
        "number": f"number {bounds}", "integer": f"whole number {bounds}", "flag": "true/false",
        "choice": ", ".join(f"`{c}`" for c in spec.choices),
        "names": "provider names, comma-separated, or `none`", "list": "comma-separated",
        "seconds_or_auto": "seconds, `auto` or `off`", "encryption_key": "Fernet key(s), comma-separated (secret)",
        "url": "URL", "secret_url": "URL (secret: its password is never shown)", "calibration_file": "path of a file",
    }[spec.kind]


def _shown(default: Any, spec: Setting) -> str:
    if spec.unset and default in (None, "", ()):
        return spec.unset
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (int, float)):
        return _figure(default)
    return f"`{default}`" if str(default) else "—"


def markdown_table() -> str:
    """The README's table of variables (between its `settings:start` and `settings:end` markers)."""
    rows = ["| variable | meaning | accepts | default |", "|---|---|---|---|"]
    rows += [f"| `{spec.env}` | {spec.doc} | {_accepts(spec)} | {_shown(f.default, spec)} |"
             for f, spec in declarations()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m utils.settings", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the README's table of variables")
    if parser.parse_args().markdown:
        print(markdown_table(), end="")
    else:
        print(load_settings())
