"""English, the app's source language: one flat table of every key's text (see domain/locales/__init__.py)."""

from domain.locales.en import (
                                   app,
                                   audit,
                                   auth,
                                   demo,
                                   history,
                                   messages,
                                   performance,
                                   provenance,
                                   qa,
                                   qa_stats,
                                   streamlit,
)
from domain.locales.table import merged

TEXT: dict[str, str] = merged(messages.TEXT, app.TEXT, history.TEXT, performance.TEXT, qa.TEXT, qa_stats.TEXT,
                              auth.TEXT, audit.TEXT, provenance.TEXT, streamlit.TEXT, demo.TEXT)
