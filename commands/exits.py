"""What the command line's exit codes mean, and the argument types its commands share."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_INPUT, EXIT_PROVIDER, EXIT_INTERRUPTED = 0, 2, 3, 130
# A service the command needs (the database, a provider) did not answer: the same code as a provider's failure.
EXIT_UNAVAILABLE = EXIT_PROVIDER


def positive(value: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("use a whole number of 1 or more")
    return number
