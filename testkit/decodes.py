"""Holding every photo decode at a gate the test opens, to observe how many run at once (not to time them)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PIL import ImageFile


class HeldDecodes:
    """Patches Pillow's `ImageFile.load` so that each decode waits, counted, until `release()`."""

    def __init__(self, monkeypatch) -> None:
        self._inside = threading.Condition()
        self.now = 0     # decodes waiting here right now
        self.most = 0    # the most that ever waited here at once
        self._open = False
        real_load = ImageFile.ImageFile.load

        def held_load(image, *args, **kwargs):
            with self._inside:
                self.now += 1
                self.most = max(self.most, self.now)
                self._inside.notify_all()
                self._inside.wait_for(lambda: self._open, timeout=30)
            try:
                return real_load(image, *args, **kwargs)
            finally:
                with self._inside:
                    self.now -= 1

        monkeypatch.setattr(ImageFile.ImageFile, "load", held_load)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> bool:
        """True once `condition()` holds (checked whenever a decode arrives), False after `timeout` s."""
        with self._inside:
            return self._inside.wait_for(condition, timeout=timeout)

    def release(self) -> None:
        """Let every held decode, and every later one, run."""
        with self._inside:
            self._open = True
            self._inside.notify_all()
