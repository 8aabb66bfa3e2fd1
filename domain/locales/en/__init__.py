"""English, the app's source language: one flat table of every key's text (see domain/locales/__init__.py)."""

from domain.locales.en import app, auth, demo, history, messages, performance, qa, streamlit
from domain.locales.table import merged

TEXT: dict[str, str] = merged(messages.TEXT, app.TEXT, history.TEXT, performance.TEXT, qa.TEXT, auth.TEXT,
                              streamlit.TEXT, demo.TEXT)
