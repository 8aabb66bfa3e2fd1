"""Korean: one flat table of every key's text, the same keys and {placeholders} as English (domain/locales/en/)."""

from domain.locales.ko import app, auth, demo, history, messages, performance, qa, streamlit
from domain.locales.table import merged

TEXT: dict[str, str] = merged(messages.TEXT, app.TEXT, history.TEXT, performance.TEXT, qa.TEXT, auth.TEXT,
                              streamlit.TEXT, demo.TEXT)
