"""The command line's sub-commands beyond assessing: accounts, sessions and API tokens (`cli.py` is the entry)."""
