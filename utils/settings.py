"""Settings read from the environment and `.env`, with the original backend's names."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values


class SettingsError(ValueError):
    """A setting in `.env` or the environment has a value the app cannot use."""


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


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0,
             maximum: float = float("inf")) -> int:
    value = _number(env, name, default, minimum=minimum, maximum=maximum)
    if value != int(value):
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


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in {"none", "off", "false", "0"}:
        return ()
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _encryption_key(env: Mapping[str, str], name: str) -> str:
    # Checked here, not only where it is used, so the page says which variable is wrong before
    # anything is stored. One Fernet key, or several comma-separated (the first encrypts).
    raw = _text(env, name)
    for part in (p.strip() for p in raw.split(",")):
        try:
            valid = len(base64.urlsafe_b64decode(part.encode("ascii"))) == 32 and len(part) == 44
        except (ValueError, UnicodeError):
            valid = False
        if part and not valid:  # the value is a secret: never repeated in the message
            raise SettingsError(f"{name} must be a Fernet key (44 characters); generate one with: python -c "
                                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"')
    return raw


def _seconds_or_auto(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip().lower()
    if raw in {"", "auto"}:
        return None
    if raw in {"off", "never", "false"}:
        return 0.0
    return _number(env, name, 0.0)


@dataclass(frozen=True)
class Settings:
    """Every knob of the app; built once from the environment by `load_settings`."""

    openai_api_key: str = field(default="", repr=False)
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str = ""
    runpod_api_key: str = field(default="", repr=False)
    runpod_base_url: str = ""
    runpod_model_name: str = ""
    local_base_url: str = ""
    local_model: str = ""
    local_api_key: str = field(default="", repr=False)
    local_accepts_images: bool = True

    # Text to the fast hosted model, photos to the clinic's fine-tuned vision model (see README).
    text_provider: str = "openai"
    image_provider: str = "runpod"

    request_timeout: float = 30.0
    max_tokens: int = 700
    temperature: float = 0.1
    max_retries: int = 1
    retry_base_delay: float = 0.5
    stream: bool = True
    text_budget_seconds: float = 15.0
    image_budget_seconds: float = 30.0
    max_text_chars: int = 4000

    # None: every other configured provider, in registry order; (): no fallback.
    provider_fallbacks: tuple[str, ...] | None = None
    # None: derived from each provider's recent first-token times; 0: never hedge.
    hedge_after_seconds: float | None = None
    hedge_min_seconds: float = 0.75
    hedge_max_seconds: float = 4.0
    health_failures: int = 3
    health_cooldown_seconds: float = 60.0
    cold_start_seconds: float = 10.0
    serverless_idle_seconds: float = 5.0
    warm_up: bool = True
    warm_up_seconds: float = 20.0
    keep_warm_seconds: float = 0.0
    keep_warm_active_seconds: float = 600.0

    image_max_side: int = 512
    image_jpeg_quality: int = 70
    image_max_upload_mb: float = 25.0
    image_max_pixels: int = 100_000_000

    data_dir: Path = Path(".data")
    cache_ttl_seconds: float = 1800.0
    cache_enabled: bool = True

    history_enabled: bool = True
    history_keep_images: bool = False
    history_retention_days: float = 365.0
    job_workers: int = 4
    demo_mode: bool = False

    auth_mode: str = "accounts"            # accounts (the app's own), oidc (st.login), off (development only)
    login_max_failures: int = 5
    login_lockout_seconds: float = 900.0
    session_timeout_minutes: float = 30.0
    redis_url: str = field(default="", repr=False)
    data_encryption_key: str = field(default="", repr=False)


def load_settings(env: Mapping[str, str] | None = None, env_file: str | os.PathLike | None = ".env") -> Settings:
    """Build `Settings` from `env` (default: `.env` overlaid by the process environment).

    Variables set in the process environment win over `.env`, so an operator can
    override one value without editing the file. Raises `SettingsError` with the
    variable's name when a value cannot be used.
    """
    if env is None:
        merged: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        merged.update(os.environ)
        env = merged
    return Settings(
        openai_api_key=_text(env, "OPENAI_API_KEY"),
        openai_model=_text(env, "OPENAI_MODEL", "gpt-4o-mini"),
        openai_base_url=_text(env, "OPENAI_BASE_URL"),
        runpod_api_key=_text(env, "RUNPOD_API_KEY"),
        runpod_base_url=_text(env, "RUNPOD_BASE_URL"),
        runpod_model_name=_text(env, "RUNPOD_MODEL_NAME"),
        local_base_url=_text(env, "LOCAL_BASE_URL"),
        local_model=_text(env, "LOCAL_MODEL"),
        local_api_key=_text(env, "LOCAL_API_KEY"),
        local_accepts_images=_flag(env, "LOCAL_ACCEPTS_IMAGES", True),
        text_provider=_text(env, "SKIN_DIAGNOSIS_PROVIDER", "openai").lower(),
        image_provider=_text(env, "SKIN_DIAGNOSIS_IMAGE_PROVIDER", "runpod").lower(),
        request_timeout=_number(env, "REQUEST_TIMEOUT", 30.0, minimum=0.1),
        max_tokens=_integer(env, "MAX_TOKENS", 700, minimum=64),
        temperature=_number(env, "TEMPERATURE", 0.1),
        max_retries=_integer(env, "LLM_MAX_RETRIES", 1),
        retry_base_delay=_number(env, "LLM_RETRY_BASE_DELAY", 0.5),
        stream=_flag(env, "LLM_STREAM", True),
        text_budget_seconds=_number(env, "TEXT_BUDGET_SECONDS", 15.0, minimum=0.1),
        image_budget_seconds=_number(env, "IMAGE_BUDGET_SECONDS", 30.0, minimum=0.1),
        max_text_chars=_integer(env, "MAX_TEXT_CHARS", 4000, minimum=100),
        provider_fallbacks=_names(env, "PROVIDER_FALLBACKS"),
        hedge_after_seconds=_seconds_or_auto(env, "HEDGE_AFTER_SECONDS"),
        hedge_min_seconds=_number(env, "HEDGE_MIN_SECONDS", 0.75),
        hedge_max_seconds=_number(env, "HEDGE_MAX_SECONDS", 4.0),
        health_failures=_integer(env, "HEALTH_FAILURES", 3, minimum=1),
        health_cooldown_seconds=_number(env, "HEALTH_COOLDOWN_SECONDS", 60.0),
        cold_start_seconds=_number(env, "COLD_START_SECONDS", 10.0, minimum=0.1),
        serverless_idle_seconds=_number(env, "SERVERLESS_IDLE_SECONDS", 5.0),
        warm_up=_flag(env, "WARM_UP", True),
        warm_up_seconds=_number(env, "WARM_UP_SECONDS", 20.0),
        keep_warm_seconds=_number(env, "KEEP_WARM_SECONDS", 0.0),
        keep_warm_active_seconds=_number(env, "KEEP_WARM_ACTIVE_SECONDS", 600.0),
        image_max_side=_integer(env, "IMAGE_MAX_SIDE", 512, minimum=64),
        image_jpeg_quality=_integer(env, "IMAGE_JPEG_QUALITY", 70, minimum=10, maximum=95),
        image_max_upload_mb=_number(env, "IMAGE_MAX_UPLOAD_MB", 25.0, minimum=0.1),
        image_max_pixels=_integer(env, "IMAGE_MAX_PIXELS", 100_000_000, minimum=1_000_000),
        data_dir=Path(_text(env, "DATA_DIR", ".data")),
        cache_ttl_seconds=_number(env, "CACHE_TTL_SECONDS", 1800.0),
        cache_enabled=_flag(env, "CACHE_ENABLED", True),
        history_enabled=_flag(env, "HISTORY_ENABLED", True),
        history_keep_images=_flag(env, "HISTORY_KEEP_IMAGES", False),
        history_retention_days=_number(env, "HISTORY_RETENTION_DAYS", 365.0, minimum=0.01),
        job_workers=_integer(env, "JOB_WORKERS", 4, minimum=1, maximum=64),
        demo_mode=_flag(env, "DEMO_MODE", False),
        auth_mode=_choice(env, "AUTH_MODE", ("accounts", "oidc", "off"), "accounts"),
        login_max_failures=_integer(env, "LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_seconds=_number(env, "LOGIN_LOCKOUT_SECONDS", 900.0),
        session_timeout_minutes=_number(env, "SESSION_TIMEOUT_MINUTES", 30.0, minimum=0.1),
        redis_url=_text(env, "REDIS_URL"),
        data_encryption_key=_encryption_key(env, "DATA_ENCRYPTION_KEY"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; `get_settings.cache_clear()` re-reads them."""
    return load_settings()
