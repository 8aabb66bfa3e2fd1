"""Devices a clinician has signed in from: a long-lived cookie set at each successful sign-in.

Failed sign-ins from strangers slow down sign-in at the account they guess (storage/sign_in_throttle.py);
a browser that carries this cookie for the account is exempt from that per-account wait (never from its
own address's), so nobody can keep a clinician out of the app on the device she always uses. The cookie
is 256 random bits (HttpOnly, set by `/auth/session` with the session cookie, DEVICE_DAYS long); only its
SHA-256 is stored, with the account it was earned for, as sessions are (storage/sessions.py). Removing the
account, or `forget_user` (a new password), forgets its devices.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from storage.schema import sign_in_devices
from storage.sessions import new_secret, session_key
from storage.store import Store

DEVICE_COOKIE = "skinai_device"
DEVICE_DAYS = 365  # a device unused this long is forgotten: its next sign-in counts as a new device's


class KnownDevices:
    """The devices of `store`'s accounts (table `sign_in_devices`)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    @property
    def max_age_seconds(self) -> int:
        """How long the cookie lives, and how long an unused device is remembered."""
        return DEVICE_DAYS * 86_400

    def remember(self, user: str, secret: str | None = None) -> str:
        """The cookie's value for a device that just signed in as `user`: `secret` again when it already names
        this account's device (its use is noted), else a new one."""
        now = self.clock()
        if secret and self.known(secret, user):
            with self.store.connect() as conn:
                conn.execute(sign_in_devices.update().where(sign_in_devices.c.key == session_key(secret))
                             .values(last_used=now))
            return secret
        fresh = new_secret()
        with self.store.connect() as conn:
            conn.execute(sign_in_devices.delete().where(sign_in_devices.c.last_used <= now - self.max_age_seconds))
            conn.execute(sign_in_devices.insert().values(key=session_key(fresh), user=user, created_at=now,
                                                         last_used=now))
        return fresh

    def known(self, secret: str | None, user: str) -> bool:
        """Whether the cookie `secret` names a device that signed in as `user` (any spelling) within DEVICE_DAYS."""
        if not secret or not user:
            return False
        query = (sa.select(sign_in_devices.c.user).where(sign_in_devices.c.key == session_key(secret),
                                                         sign_in_devices.c.last_used > self.clock()
                                                         - self.max_age_seconds))
        with self.store.connect() as conn:
            owner = conn.execute(query).scalar()
        return owner is not None and owner.casefold() == user.strip().casefold()

    def forget_user(self, user: str) -> int:
        """Forget every device of `user` (the account was removed or its password set anew)."""
        with self.store.connect() as conn:
            return conn.execute(sign_in_devices.delete()
                                .where(sa.func.lower(sign_in_devices.c.user) == user.strip().lower())).rowcount


__all__ = ["DEVICE_COOKIE", "DEVICE_DAYS", "KnownDevices"]
