"""DATA_DIR kept private to the app's user: created 0700, and tightened when found open to others.

History, accounts and the answer cache live there (their files are 0600). A folder that other
users may write to would let them delete or replace those files, or plant links where the app
writes, so such a folder is made private before anything is stored in it, or refused.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class DataDirUnsafe(PermissionError):
    """A data folder other users may write to, which the app could not make private; says how to fix it."""


def private_dir(path: Path) -> Path:
    """Create `path` with mode 0700, or make an existing one that others may write to 0700.

    Raises `DataDirUnsafe` (a `PermissionError`) when an open folder cannot be tightened
    (it belongs to another user, a read-only mount...), and `OSError` when it cannot be made.
    """
    path = Path(path)
    # `parents=True` gives missing parents the umask's mode; only the folder itself holds the data.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & _OTHERS_WRITE:
        return path
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        message = (f"The data folder {path} can be written by other users (mode {mode:o}) and the app cannot make "
                   f"it private ({type(exc).__name__}): run `chmod 700 {path}` as its owner, or set DATA_DIR to a "
                   "folder of the app's own.")
        log.error("%s", message)
        raise DataDirUnsafe(message) from None
    log.warning("data folder %s could be written by other users (mode %o); made private (700)", path, mode)
    return path
