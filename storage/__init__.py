"""Everything the app keeps: the SQLite store, accounts, history, reviews, metrics, answer caches
and job stores, with their Redis twins for several app servers."""
