"""The clinician's language and clock, fast: which language a session starts in, how a choice is kept with the
account (SQLite and PostgreSQL), and times in the reader's zone with its name, through AppTest.

The browser side (Accept-Language, the cookie, `<html lang>`, tab titles, Chromium's time zone) is in
tests/test_browser_language.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import startup
from storage.accounts import Accounts
from storage.preferences import Preferences
from storage.schema import user_preferences
from tests.app_scripts import APP, HISTORY_WRAPPER, wait_done
from ui.language import browser_language
from utils.times import iso, shown, start_of_day, zone_label, zone_named, zone_offset_minutes

PASSWORD = "correct horse battery"
LANGUAGES = ("ko", "en")
# 2026-12-07 05:05:09 UTC: 14:05 in Seoul, 00:05 in New York (winter, EST), 10:35 in Kolkata.
STAMP = datetime(2026, 12, 7, 5, 5, 9, tzinfo=UTC).timestamp()


# -- the browser's language ------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "locale", "expected"), [
    ("en-US,en;q=0.9", None, "en"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8", "ko-KR", "ko"),
    ("fr-FR,fr;q=0.9,en;q=0.8,ko;q=0.7", None, "en"),       # the first the app speaks, by the browser's order
    ("ko;q=0.4, en;q=0.6", None, "en"),                      # q-values before order
    ("en;q=0, ko", None, "ko"),                              # q=0: "not this one"
    ("EN-gb", None, "en"),
    (None, "en-US", "en"),                                   # no header: navigator.language
    ("", "ko_KR", "ko"),
    ("fr-FR,de;q=0.9", "ja-JP", None),                       # nothing the app speaks: the caller's default
    ("en;q=banana, ko", None, "ko"),                         # a broken q-value counts as 0
    (None, None, None),
])
def test_the_browsers_language_is_its_first_one_the_app_speaks(accept, locale, expected):
    assert browser_language(accept, locale, LANGUAGES) == expected


def _main(locale: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=20)
    at.context = {"locale": locale}
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _title(at: AppTest) -> str:
    return at.title[0].value


@pytest.mark.parametrize(("locale", "title", "lang"), [
    ("en-US", "Skin lesion AI assessment", "en"),
    ("ko-KR", "피부 병변 AI 평가", "ko"),
    ("fr-FR", "피부 병변 AI 평가", "ko"),   # a language the app does not speak: the clinic's
    (None, "피부 병변 AI 평가", "ko"),
])
def test_a_first_visit_follows_the_browsers_language(engine_env, locale, title, lang):
    at = _main(locale)
    assert not at.exception and _title(at) == title
    assert at.session_state["lang"] == lang and at.segmented_control(key="lang_picker").value == lang
    at.run()  # the language is settled once: later runs keep it
    assert _title(at) == title


def test_a_language_chosen_in_the_session_stays_whatever_the_browser_asks(engine_env):
    at = _main("ko-KR")
    at.segmented_control(key="lang_picker").set_value("en").run()
    assert _title(at) == "Skin lesion AI assessment" and at.session_state["lang_source"] == "picked"
    at.switch_page("app_pages/history.py").run()
    assert not at.exception and at.session_state["lang"] == "en"
    assert _main("en-US", lang="ko").session_state["lang"] == "ko"  # set before the first run (as tests do)


# -- kept with the account -------------------------------------------------------------------

def test_preferences_keep_one_language_per_user_whatever_the_case_of_the_name(store):
    preferences = Preferences(store, languages=LANGUAGES, clock=lambda: 1_700_000_000.0)
    assert preferences.language("dr.kim") is None
    preferences.set_language("Dr.Kim", "en")
    assert preferences.language("dr.kim") == preferences.language(" DR.KIM ") == "en"
    preferences.set_language("dr.kim", "ko")  # a second choice replaces the first, on both databases
    assert preferences.language("Dr.Kim") == "ko"
    with pytest.raises(ValueError):
        preferences.set_language("dr.kim", "fr")
    with store.connect() as conn:
        assert conn.execute(user_preferences.select()).all() == [("dr.kim", "ko", 1_700_000_000.0)]
        conn.execute(user_preferences.update().values(language="fr"))  # a newer release's language
    assert preferences.language("dr.kim") is None  # reads as no choice, never breaks the page
    assert preferences.forget("DR.KIM") == 1 and preferences.forget("dr.kim") == 0


def test_removing_an_account_forgets_its_language(store):
    accounts = Accounts(store)
    accounts.add_user("dr.kim", PASSWORD)
    preferences = Preferences(store, languages=LANGUAGES)
    preferences.set_language("dr.kim", "en")
    preferences.set_language("dr.lee", "en")
    accounts.remove_user("Dr.Kim")
    assert preferences.language("dr.kim") is None and preferences.language("dr.lee") == "en"


@pytest.fixture
def clinic(reconfigure):
    """AUTH_MODE=accounts with two accounts; dr.kim chose English on some other browser, dr.lee chose nothing."""
    reconfigure(AUTH_MODE="accounts")
    accounts = startup.accounts()
    accounts.add_user("dr.kim", PASSWORD)
    accounts.add_user("dr.lee", PASSWORD)
    startup.preferences().set_language("dr.kim", "en")
    return startup.preferences()


def _sign_in(at: AppTest, name: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    return at.button(key="login_submit").click().run()


def test_signing_in_brings_the_users_own_language(clinic):
    at = _main("ko-KR")
    assert _title(at) == "로그인"
    _sign_in(at, "dr.kim")
    assert not at.exception and _title(at) == "Skin lesion AI assessment"
    assert at.segmented_control(key="lang_picker").value == "en"


def test_a_choice_made_while_signed_in_is_stored_with_the_account(clinic):
    at = _sign_in(_main("en-US"), "dr.lee")
    assert _title(at) == "Skin lesion AI assessment" and clinic.language("dr.lee") is None  # guessed: not stored
    at.segmented_control(key="lang_picker").set_value("ko").run()
    assert _title(at) == "피부 병변 AI 평가" and clinic.language("dr.lee") == "ko"


def test_a_pick_on_the_sign_in_screen_becomes_the_users_only_when_she_has_none(clinic):
    at = _main("ko-KR")
    at.segmented_control(key="lang_picker").set_value("en").run()
    assert _title(at) == "Sign in"
    _sign_in(at, "dr.lee")
    assert _title(at) == "Skin lesion AI assessment" and clinic.language("dr.lee") == "en"
    # At a shared workstation the last person's pick must not overwrite the next one's own language.
    clinic.set_language("dr.kim", "ko")
    at = _main("en-US")
    at.segmented_control(key="lang_picker").set_value("en").run()
    _sign_in(at, "dr.kim")
    assert _title(at) == "피부 병변 AI 평가" and clinic.language("dr.kim") == "ko"


def test_signing_out_keeps_the_language_until_the_next_user_signs_in(clinic):
    at = _sign_in(_main("ko-KR"), "dr.kim")
    at.button(key="sign_out").click().run()
    assert _title(at) == "Sign in"  # the browser's last language, for the sign-in screen
    _sign_in(at, "dr.lee")
    # dr.lee has no language of her own: she keeps what the screen shows, and nothing is stored for her.
    assert _title(at) == "Skin lesion AI assessment" and clinic.language("dr.lee") is None


def test_an_identity_providers_user_opens_in_her_own_language_at_once(reconfigure):
    reconfigure(AUTH_MODE="oidc")
    startup.preferences().set_language("nurse@clinic.org", "en")
    at = AppTest.from_file(APP, default_timeout=20)
    at.context = {"locale": "ko-KR"}
    at.user = {"is_logged_in": True, "email": "nurse@clinic.org"}
    at.run()
    # The gate signs her in after the sidebar was drawn in the browser's Korean: the run is drawn again.
    assert not at.exception and _title(at) == "Skin lesion AI assessment"
    assert at.segmented_control(key="lang_picker").value == "en" and at.sidebar.segmented_control[0].label == "Language"


# -- times in the reader's zone ---------------------------------------------------------------

def test_times_are_shown_in_a_zone_and_say_which():
    seoul, new_york = zone_named("Asia/Seoul"), zone_named("America/New_York")
    assert shown(STAMP, seoul) == "2026-12-07 14:05 KST"
    assert shown(STAMP, new_york, seconds=True) == "2026-12-07 00:05:09 EST"
    assert shown(datetime(2026, 7, 1, tzinfo=UTC).timestamp(), new_york) == "2026-06-30 20:00 EDT"  # summer
    assert shown(STAMP, zone_named("Asia/Kolkata")) == "2026-12-07 10:35 IST"
    assert shown(STAMP, zone_named("Asia/Dubai")) == "2026-12-07 09:05 UTC+04:00"  # a zone with no letters
    assert shown(STAMP, zone_offset_minutes(-570)) == "2026-12-07 14:35 UTC+09:30"  # a browser's offset only
    assert shown(STAMP, zone_named("UTC")) == "2026-12-07 05:05 UTC"
    assert zone_label(datetime(2026, 1, 1, tzinfo=zone_offset_minutes(210))) == "UTC-03:30"


def test_exported_times_are_iso_8601_with_the_offset():
    assert iso(STAMP) == "2026-12-07T05:05:09+00:00"
    assert iso(STAMP, zone_named("Asia/Seoul")) == "2026-12-07T14:05:09+09:00"
    assert datetime.fromisoformat(iso(STAMP, zone_named("America/New_York"))).timestamp() == STAMP
    seoul_midnight = datetime(2026, 12, 6, 15, tzinfo=UTC).timestamp()
    assert start_of_day(date(2026, 12, 7), zone_named("Asia/Seoul")) == seoul_midnight


@pytest.mark.parametrize("name", ["", None, "Mars/Olympus", "../../../etc/passwd", "/etc/localtime", "Asia/Seoul\x00",
                                  "x" * 100])
def test_a_zone_name_that_is_not_a_zone_is_refused(name):
    assert zone_named(name) is None


@pytest.mark.parametrize(("context", "expected", "exported"), [
    ({"timezone": "Asia/Seoul"}, "2026-12-07 14:05 KST", "2026-12-07T14:05:09+09:00"),
    ({"timezone": "America/New_York"}, "2026-12-07 00:05 EST", "2026-12-07T00:05:09-05:00"),
    ({"timezone": "Not/AZone", "timezone_offset": -540}, "2026-12-07 14:05 UTC+09:00",  # the offset, if need be
     "2026-12-07T14:05:09+09:00"),
])
def test_the_history_shows_and_exports_times_in_the_readers_zone(engine_env, monkeypatch, context, expected,
                                                                   exported):
    served: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        served[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    startup.get_engine().history.record({"kind": "text", "language": "en", "text": "pearly papule", "source": "page",
                                         "created_at": STAMP})
    at = AppTest.from_string(HISTORY_WRAPPER, default_timeout=20)
    at.context = context
    at.run()
    table = next(d for d in at.dataframe if d.key == "hist_table")
    assert not at.exception and list(table.value["time"]) == [expected]
    csv_file = next(data for name, data in served.items() if name.endswith(".csv"))
    json_file = next(data for name, data in served.items() if name.endswith(".json"))
    assert [r["created_at"] for r in csv.DictReader(io.StringIO(csv_file.decode("utf-8-sig")))] == [exported]
    assert [r["created"] for r in json.loads(json_file)] == [exported]
    at.session_state["hist_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()  # the case's own caption: to the second
    assert any(c.value.startswith(f"{expected[:16]}:09{expected[16:]} · page") for c in at.caption)


def test_the_jobs_page_shows_when_a_job_was_sent_in_the_readers_zone(engine_env):
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request("pearly papule"))
    wait_done(job_id)
    sent = engine.jobs.get(job_id).created_at
    at = AppTest.from_file(APP, default_timeout=20)
    at.context = {"timezone": "Asia/Seoul"}
    at.run()
    at.switch_page("app_pages/jobs.py").run()
    table = at.dataframe[0].value  # the list of jobs; its first column says when each was sent
    assert not at.exception and list(table.iloc[:, 0]) == [shown(sent, zone_named("Asia/Seoul"), seconds=True)]
    assert table.iloc[0, 0].endswith(" KST")
