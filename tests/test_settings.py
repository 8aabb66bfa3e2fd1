"""Settings are declared once: the loader, the README's table, `.env.example` and the tests' isolation follow."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import runpy
import sys
import typing
import warnings
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dotenv import dotenv_values

import utils.settings
from tests.conftest import PROJECT_ROOT, SDK_VARS
from tests.layout import app_modules
from ui.auth import admin_users
from utils.settings import (
    ENV_NAMES,
    Kind,
    Settings,
    SettingsError,
    declarations,
    get_settings,
    load_settings,
    markdown_table,
)

README = PROJECT_ROOT / "README.md"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
CALIBRATION_SAMPLE = PROJECT_ROOT / "testkit" / "calibration.json"  # as `cli.py qa calibrate` writes one
TABLE = re.compile(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", re.S)
SECRETS = {"openai_api_key", "runpod_api_key", "local_api_key", "redis_url", "database_url", "data_encryption_key",
           "metrics_token"}


# -- the declarations ------------------------------------------------------------------------

def test_every_field_is_declared_once_with_its_own_variable():
    assert len(declarations()) == len(dataclasses.fields(Settings))  # a field without `setting(...)` fails earlier
    assert len(set(ENV_NAMES)) == len(ENV_NAMES)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in ENV_NAMES)
    assert "ADMIN_USERS" in ENV_NAMES


def test_defaults_come_from_the_declarations():
    loaded = load_settings(env={})
    assert loaded == Settings()
    for f, spec in declarations():
        assert getattr(loaded, f.name) == f.default, spec.env
    assert (loaded.max_tokens, loaded.auth_mode, loaded.provider_fallbacks, loaded.data_dir) == (
        700, "accounts", None, Path(".data"))


def test_secrets_stay_out_of_the_repr():
    secret = Fernet.generate_key().decode()
    values = {f.name: f"redis://:{secret}@host/0" if spec.kind == "secret_url" else secret
              for f, spec in declarations() if f.name in SECRETS}  # a URL's secret is its password
    loaded = load_settings(env={spec.env: values[f.name] for f, spec in declarations() if f.name in SECRETS})
    assert all(getattr(loaded, name) == values[name] for name in SECRETS)
    assert secret not in repr(loaded)
    assert {f.name for f in dataclasses.fields(Settings) if not f.repr} == SECRETS


# -- each parser kind ------------------------------------------------------------------------

GOOD = [
    ("text", "OPENAI_MODEL", "  gpt-4.1 ", "openai_model", "gpt-4.1"),
    ("secret", "LOCAL_API_KEY", " key ", "local_api_key", "key"),
    ("name", "SKIN_DIAGNOSIS_PROVIDER", "RunPod", "text_provider", "runpod"),
    ("path", "DATA_DIR", "/srv/lesions", "data_dir", Path("/srv/lesions")),
    ("calibration_file", "CALIBRATION_FILE", str(CALIBRATION_SAMPLE), "calibration_file", CALIBRATION_SAMPLE),
    ("number", "REQUEST_TIMEOUT", "2.5", "request_timeout", 2.5),
    ("integer", "MAX_TOKENS", "1000.0", "max_tokens", 1000),
    ("flag", "LLM_STREAM", "Off", "stream", False),
    ("flag", "HISTORY_KEEP_IMAGES", "yes", "history_keep_images", True),
    ("choice", "AUTH_MODE", "OIDC", "auth_mode", "oidc"),
    ("names", "PROVIDER_FALLBACKS", "OpenAI, local,", "provider_fallbacks", ("openai", "local")),
    ("names", "PROVIDER_FALLBACKS", "none", "provider_fallbacks", ()),
    ("list", "ADMIN_USERS", " Boss@Clinic.org, ,other@clinic.org", "admin_users", ("boss@clinic.org",
                                                                                   "other@clinic.org")),
    ("seconds_or_auto", "HEDGE_AFTER_SECONDS", "auto", "hedge_after_seconds", None),
    ("seconds_or_auto", "HEDGE_AFTER_SECONDS", "never", "hedge_after_seconds", 0.0),
    ("seconds_or_auto", "HEDGE_AFTER_SECONDS", "1.5", "hedge_after_seconds", 1.5),
    ("encryption_key", "DATA_ENCRYPTION_KEY", "K1,K2", "data_encryption_key", "K1,K2"),
    ("url", "LOCAL_BASE_URL", " http://localhost:11434/v1 ", "local_base_url", "http://localhost:11434/v1"),
    ("secret_url", "DATABASE_URL", "postgresql://u:p@db:5432/skin", "database_url", "postgresql://u:p@db:5432/skin"),
    ("secret_url", "REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
]
KEYS = {"K1": Fernet.generate_key().decode(), "K2": Fernet.generate_key().decode()}

BAD = [
    ("calibration_file", "CALIBRATION_FILE", "/nonexistent/calibration.json", "CALIBRATION_FILE "
     "(/nonexistent/calibration.json) cannot be used: no such file. Make it with `python cli.py qa calibrate "
     "RESULTS_DIR --out calibration.json`, or unset it in .env"),
    ("number", "REQUEST_TIMEOUT", "soon", "REQUEST_TIMEOUT must be a number, got 'soon': fix it in .env"),
    ("number", "REQUEST_TIMEOUT", "0.05", "REQUEST_TIMEOUT must be at least 0.1, got '0.05': fix it in .env"),
    ("number", "TEMPERATURE", "-1", "TEMPERATURE must be at least 0, got '-1': fix it in .env"),
    ("integer", "MAX_TOKENS", "7.5", "MAX_TOKENS must be at least 64, got '7.5': fix it in .env"),
    ("integer", "MAX_TOKENS", "700.5", "MAX_TOKENS must be a whole number, got '700.5': fix it in .env"),
    ("integer", "MAX_TOKENS", "inf", "MAX_TOKENS must be a whole number, got 'inf': fix it in .env"),
    ("integer", "IMAGE_JPEG_QUALITY", "99", "IMAGE_JPEG_QUALITY must be between 10 and 95, got '99': fix it in .env"),
    ("integer", "JOB_WORKERS", "many", "JOB_WORKERS must be a number, got 'many': fix it in .env"),
    ("flag", "LLM_STREAM", "Maybe", "LLM_STREAM must be true or false, got 'maybe': fix it in .env"),
    ("choice", "AUTH_MODE", "LDAP", "AUTH_MODE must be one of accounts, oidc, off, got 'ldap': fix it in .env"),
    ("seconds_or_auto", "HEDGE_AFTER_SECONDS", "later",
     "HEDGE_AFTER_SECONDS must be a number, got 'later': fix it in .env"),
    ("encryption_key", "DATA_ENCRYPTION_KEY", "hunter2-not-a-key",
     "DATA_ENCRYPTION_KEY must be a Fernet key (44 characters); generate one with: python -c "
     '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'),
    # A malformed port is one line naming the variable, with the URL's password hidden (it was a traceback at
    # the first use, and every API call a 500).
    ("secret_url", "DATABASE_URL", "postgresql://u:s3cret@host:99999/db", "DATABASE_URL cannot be used: its port is "
     "not a number from 1 to 65535 (postgresql://u:***@host:99999/db): fix it in .env"),
    ("secret_url", "REDIS_URL", "redis://host:abc", "REDIS_URL cannot be used: its port is not a number from 1 to "
     "65535 (redis://host:abc): fix it in .env"),
    ("secret_url", "REDIS_URL", "redis://:pa/ss@host:0/0", "REDIS_URL cannot be used: its port is not a number "
     "from 1 to 65535 (redis://:***@host:0/0): fix it in .env"),
    ("url", "OPENAI_BASE_URL", "https://proxy-user:s3cret@proxy:80800/v1", "OPENAI_BASE_URL cannot be used: its "
     "port is not a number from 1 to 65535 (https://proxy-user:***@proxy:80800/v1): fix it in .env"),
    ("url", "LOCAL_BASE_URL", "localhost:11434/v1", "LOCAL_BASE_URL cannot be used: it does not start with a "
     "scheme such as postgresql://, redis:// or https://: fix it in .env"),  # not a URL: maybe a secret, not repeated
]


@pytest.mark.parametrize(("kind", "name", "raw", "attribute", "expected"), GOOD, ids=[f"{g[0]}-{g[2]}" for g in GOOD])
def test_each_kind_reads_its_values(kind, name, raw, attribute, expected):
    assert dict((spec.env, spec.kind) for _, spec in declarations())[name] == kind
    if kind == "encryption_key":
        raw, expected = (",".join(KEYS[part] for part in text.split(",")) for text in (raw, expected))
    assert getattr(load_settings(env={name: raw}), attribute) == expected


@pytest.mark.parametrize(("kind", "name", "raw", "message"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_each_kind_names_the_variable_when_a_value_is_wrong(kind, name, raw, message):
    assert dict((spec.env, spec.kind) for _, spec in declarations())[name] == kind
    with pytest.raises(SettingsError) as caught:
        load_settings(env={name: raw})
    assert str(caught.value) == message


def test_every_kind_is_declared_and_tested():
    kinds = set(typing.get_args(Kind))
    assert {spec.kind for _, spec in declarations()} == kinds
    assert {g[0] for g in GOOD} == kinds
    # Text-like kinds accept anything; every other kind has a value it refuses.
    assert {b[0] for b in BAD} == kinds - {"text", "secret", "name", "path", "names", "list"}


def test_an_empty_value_means_the_default():
    blank = {name: "  " for name in ENV_NAMES}
    assert load_settings(env=blank) == Settings()


# -- where values come from ------------------------------------------------------------------

def test_the_environment_wins_over_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / "custom.env"
    env_file.write_text("MAX_TOKENS=800\nOPENAI_MODEL=from-file\nADMIN_USERS=a@clinic.org\n", encoding="utf-8")
    monkeypatch.setenv("MAX_TOKENS", "900")
    loaded = load_settings(env_file=env_file)
    assert (loaded.max_tokens, loaded.openai_model, loaded.admin_users) == (900, "from-file", ("a@clinic.org",))
    assert load_settings(env_file=None).openai_model == "gpt-4o-mini"  # None: no file at all
    monkeypatch.setattr(utils.settings, "ENV_FILE", env_file)  # the default file is looked up at call time
    assert load_settings().openai_model == "from-file"


def test_admin_users_are_read_through_the_settings(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("ADMIN_USERS=Boss@Clinic.org, other@clinic.org\n", encoding="utf-8")
    assert admin_users() == set()
    monkeypatch.setattr(utils.settings, "ENV_FILE", env_file)
    get_settings.cache_clear()
    assert admin_users() == {"boss@clinic.org", "other@clinic.org"}


def _environment_reads(path: Path) -> set[str]:
    """Names `path` reads with os.environ.get / os.environ[...] / os.getenv, plus 'dotenv' if it imports dotenv."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {"dotenv" for m in modules if m.split(".")[0] == "dotenv"}
        target = node.func if isinstance(node, ast.Call) else node.value if isinstance(node, ast.Subscript) else None
        text = ast.unparse(target) if target is not None else ""
        if text in {"os.environ.get", "os.getenv", "getenv", "environ.get", "os.environ", "environ"}:
            args = node.args if isinstance(node, ast.Call) else [node.slice]  # type: ignore[union-attr]
            found |= {a.value for a in args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return found


def test_the_environment_read_detector_sees_each_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import os\nfrom dotenv import load_dotenv\n'
                      'a = os.environ.get("A")\nb = os.getenv("B", "")\nc = os.environ["C"]\n', encoding="utf-8")
    assert _environment_reads(sample) == {"dotenv", "A", "B", "C"}


def test_the_app_reads_its_variables_only_through_the_declarations():
    files = app_modules().values()
    reads = {str(f.relative_to(PROJECT_ROOT)): _environment_reads(f) for f in files}
    assert reads["utils/settings.py"] == {"dotenv"}  # the loader is the one place that reads `.env`
    elsewhere = {path: names for path, names in reads.items() if names and path != "utils/settings.py"}
    assert not elsewhere, f"declare these in utils/settings.py and read them through Settings: {elsewhere}"


# -- the README and .env.example -------------------------------------------------------------

def test_the_readme_table_is_generated_from_the_declarations():
    found = TABLE.search(README.read_text(encoding="utf-8"))
    assert found, "README.md lacks the <!-- settings:start --> ... <!-- settings:end --> markers"
    assert found.group(1) == markdown_table(), (
        "README.md's table of variables is out of date: replace the lines between its settings markers with the "
        "output of `python -m utils.settings --markdown`")


def test_the_table_has_one_line_per_variable_with_its_default():
    rows = markdown_table().splitlines()[2:]
    assert [re.match(r"\| `([A-Z_0-9]+)` \|", row).group(1) for row in rows] == list(ENV_NAMES)
    assert all(row.count("|") == 5 for row in rows)  # no `|` or newline inside a description
    row = dict(zip(ENV_NAMES, rows, strict=True))
    assert row["MAX_TOKENS"].endswith("| whole number ≥ 64 | 700 |")
    assert row["IMAGE_JPEG_QUALITY"].endswith("| whole number 10–95 | 70 |")
    assert row["IMAGE_MAX_PIXELS"].endswith("| whole number ≥ 1 000 000 | 50 000 000 |")
    assert row["AUTH_MODE"].endswith("| `accounts`, `oidc`, `off` | `accounts` |")
    assert row["HISTORY_KEEP_IMAGES"].endswith("| true/false | false |")
    assert all(spec.unset for f, spec in declarations() if f.default is None)  # never "None" in the README


def test_the_markdown_command_prints_the_table(monkeypatch, capsys):
    # `python -m utils.settings --markdown`, run as __main__ in this process (a fresh module namespace).
    monkeypatch.setattr(sys, "argv", ["python -m utils.settings", "--markdown"])
    with warnings.catch_warnings():  # runpy: utils.settings is already imported (by this test module)
        warnings.simplefilter("ignore", RuntimeWarning)
        runpy.run_module("utils.settings", run_name="__main__", alter_sys=False)
    assert capsys.readouterr().out == markdown_table()


def test_env_example_lists_every_variable_and_nothing_else():
    listed = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    assert len(listed) == len(set(listed)), "a variable is listed twice in .env.example"
    assert set(listed) == set(ENV_NAMES), (f"missing from .env.example: {sorted(set(ENV_NAMES) - set(listed))}; "
                                           f"unknown: {sorted(set(listed) - set(ENV_NAMES))}")


def test_copying_env_example_changes_no_default():
    values = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    assert values, "the detector reads the uncommented lines"
    assert load_settings(env=values) == Settings()


# -- isolation from the developer's checkout -------------------------------------------------

BAIT = "leaked-from-the-developer"


@pytest.fixture(scope="class")
def developer_checkout(tmp_path_factory):
    """A working directory with a `.env` setting every variable, and every variable in os.environ.

    Class-scoped, so it is in place before the autouse `isolated_settings` fixture runs for each test:
    exactly what a developer's shell and checkout look like when they run pytest.
    """
    checkout = tmp_path_factory.mktemp("developer-checkout")
    (checkout / ".env").write_text("".join(f"{name}={BAIT}\n" for name in ENV_NAMES), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for name in (*ENV_NAMES, *SDK_VARS):
            patch.setenv(name, BAIT)
        patch.chdir(checkout)
        yield checkout


@pytest.mark.usefixtures("developer_checkout")
class TestIsolation:
    """The autouse fixture in tests/conftest.py keeps the bait above away from every test."""

    def test_no_variable_reaches_the_test(self):
        leaked = sorted(name for name in (*ENV_NAMES, *SDK_VARS) if name in os.environ)
        assert not leaked, f"tests/conftest.py's isolated_settings let these through: {leaked}"

    def test_the_settings_are_the_defaults(self):
        assert Path(".env").read_text(encoding="utf-8").startswith(f"{ENV_NAMES[0]}={BAIT}")
        assert get_settings() == Settings()
        assert admin_users() == set()

    def test_the_bait_would_be_read_without_the_redirect(self, monkeypatch):
        monkeypatch.setattr(utils.settings, "ENV_FILE", ".env")
        with pytest.raises(SettingsError):  # e.g. LOCAL_ACCEPTS_IMAGES must be true or false
            load_settings()
        assert load_settings(env_file=None) == Settings()
