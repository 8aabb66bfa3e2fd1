"""The command line as a user runs it, against the local chat-completions server: in this process (`cli.main`),
and once as a real process (`python cli.py diagnose`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from testkit.answers import VALID
from testkit.fake_llm import Reply
from tests.cli_runs import run_cli

CLI = str(Path(__file__).resolve().parent.parent / "cli.py")
JSON_KEYS = {"label", "summary", "similar", "complete", "provider", "model", "cached", "elapsed_ms", "first_token_ms",
             "hedged", "fallback", "tried", "usage", "raw", "demo"}


def run_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CLI, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


def test_text_json_is_the_documented_shape(engine_env):
    done = run_cli("diagnose", "--text", "코 옆 진주빛 구진", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == JSON_KEYS
    assert out["label"] == {"code": 1, "name_ko": "기저세포암", "name_en": "Basal cell carcinoma", "score": 78.0,
                            "risk": "malignant"}
    assert set(out["usage"]) == {"prompt_tokens", "completion_tokens"}
    assert out["complete"] is True and out["cached"] is False and out["provider"] == "runpod"
    assert out["raw"] == VALID
    again = json.loads(run_cli("diagnose", "--text", "코 옆 진주빛 구진", "--json").stdout)
    assert again["cached"] is True and len(engine_env.requests) == 1
    fresh = json.loads(run_cli("diagnose", "--text", "코 옆 진주빛 구진", "--json", "--no-cache").stdout)
    assert fresh["cached"] is False and len(engine_env.requests) == 2


def test_image_and_provider_choice(engine_env, tmp_path):
    photo = tmp_path / "lesion.png"
    Image.new("RGB", (1200, 900), (120, 80, 60)).save(photo)
    done = run_process("diagnose", "--image", str(photo), "--provider", "openai")  # the real entry point, end to end
    assert done.returncode == 0, done.stderr
    assert "기저세포암" in done.stdout and "FLAG: malignant" in done.stdout
    assert engine_env.requests[-1].body["model"] == "gpt-4o-mini"


def test_bad_input_exits_2_with_one_line(engine_env, tmp_path):
    for args in (["diagnose"], ["diagnose", "--image", str(tmp_path / "missing.jpg")],
                 ["diagnose", "--image", __file__]):
        done = run_cli(*args)
        assert done.returncode == 2, args
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert engine_env.requests == []


def test_no_provider_answering_exits_3(engine_env, monkeypatch):
    engine_env.script(Reply(status=401))
    done = run_cli("diagnose", "--text", "papule")
    assert done.returncode == 3
    assert done.stderr.startswith("error: RunPod rejected the API key") and "Traceback" not in done.stderr
    assert "rpa-test" not in done.stderr
    monkeypatch.delenv("RUNPOD_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    done = run_cli("diagnose", "--text", "papule")
    assert done.returncode == 3 and "RUNPOD_API_KEY" in done.stderr


def test_bad_setting_names_the_variable(engine_env, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT", "soon")
    done = run_cli("diagnose", "--text", "papule")
    assert done.returncode == 2 and "REQUEST_TIMEOUT" in done.stderr


def test_fallback_is_shown_and_can_be_switched_off(engine_env, monkeypatch):
    monkeypatch.setenv("PROVIDER_FALLBACKS", "runpod,openai")
    engine_env.responder = lambda r: Reply(status=503) if r.body["model"] == "clinic-derm-v1" else None
    done = run_cli("diagnose", "--text", "papule")
    assert done.returncode == 0 and "fallback" in done.stdout and "tried runpod → openai" in done.stdout
    done = run_cli("diagnose", "--text", "papule", "--no-fallback", "--no-cache")
    assert done.returncode == 3 and "RunPod failed on its side (HTTP 503)" in done.stderr
