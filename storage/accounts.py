"""The app's own user accounts (AUTH_MODE=accounts): names, scrypt password hashes, sign-in.

No Streamlit here: the sign-in gate (`ui/auth.py`) and the command line (`cli.py users ...`)
share this module, through the `AccountStore` contract. Accounts live in the `users` table of the
app's store (SQLite or PostgreSQL: `Accounts`), so every server sharing the database knows the same people.
Failed sign-ins slow down the client address they come from, and the account they guess from devices
that never signed in to it; nothing locks an account (`storage/sign_in_throttle.py` explains why).

Passwords are hashed with the standard library's scrypt and a random salt, stored as a
self-describing string `scrypt$n$r$p$salt$hash` (base64), so the cost can be raised later
without breaking the hashes already stored. A wrong name and a wrong password get the same
error, after the same work, so the sign-in form does not tell who has an account.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from storage.devices import KnownDevices
from storage.preferences import user_key
from storage.schema import user_preferences, users
from storage.sessions import SessionStore, SqlSessionStore, sessions_for
from storage.sign_in_throttle import LOCAL, SignInThrottle
from storage.store import Store
from utils.settings import Settings

log = logging.getLogger(__name__)

SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2 ** 14, 8, 1, 32  # ~16 MiB and ~60 ms per hash
SALT_BYTES = 16
MIN_PASSWORD_CHARS = 8
# Far above any passphrase; only stops a pasted megabyte from being hashed on every attempt.
MAX_PASSWORD_CHARS = 1024
MAX_NAME_CHARS = 64
# ASCII only: look-alike letters from other scripts would let two accounts read the same.
NAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")

# Bounds on parameters read back from the store: a tampered row must not cost gigabytes.
_MAX_N, _MAX_R, _MAX_P = 2 ** 20, 32, 16


class AccountError(ValueError):
    """Something about an account request cannot be done; the message says what to do instead."""


class InvalidName(AccountError):
    """The user name has characters or a length the app does not accept."""


class WeakPassword(AccountError):
    """The password is too short (or absurdly long)."""


class UserExists(AccountError):
    """An account with this name (ignoring case) already exists."""


class NoSuchUser(AccountError):
    """No account has this name."""


class SignInError(AccountError):
    """A sign-in was refused."""


class WrongCredentials(SignInError):
    """The name or the password is wrong; deliberately does not say which.

    `retry_at`: when the client's address may try again (epoch seconds), if it must wait now.
    """

    def __init__(self, retry_at: float | None = None) -> None:
        self.retry_at = retry_at
        super().__init__("Wrong user name or password.")


class AccountLocked(SignInError):
    """A lock set by an earlier version of the app (which locked on failures from many addresses): the account
    opens again at `until` (epoch seconds). No lock is set any more."""

    def __init__(self, until: float) -> None:
        self.until = until
        opens = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until))
        super().__init__(f"Too many failed sign-ins: this account is locked until {opens}.")


class TooManyAttempts(SignInError):
    """The client's address failed too often: its next attempt is allowed at `until`, `wait_seconds` from now."""

    def __init__(self, until: float, now: float) -> None:
        self.until = until
        self.wait_seconds = max(0.0, until - now)
        super().__init__(f"Too many failed sign-ins from this address: wait {math.ceil(self.wait_seconds)} s, "
                         "then try again.")


class AccountThrottled(TooManyAttempts):
    """Many failed sign-ins at this account from devices it does not know: a device that signed in to it before
    may try at once; others at `until`."""

    def __init__(self, until: float, now: float) -> None:
        super().__init__(until, now)
        self.args = (f"Too many failed sign-ins at this account from new devices: wait "
                     f"{math.ceil(self.wait_seconds)} s, or sign in on a device you have used before.",)


@dataclass(frozen=True)
class User:
    """One account as the app sees it; the password hash never leaves this module."""

    name: str
    is_admin: bool
    failed_count: int
    locked_until: float | None
    created_at: float
    last_login: float | None

    def locked(self, now: float) -> bool:
        """Whether sign-in is refused at `now` because of earlier failures."""
        return self.lock_ends(now) is not None

    def lock_ends(self, now: float) -> float | None:
        """When the lock-out that refuses sign-in at `now` ends; None when the account is open."""
        return self.locked_until if self.locked_until is not None and self.locked_until > now else None


# -- passwords -------------------------------------------------------------------------------

def _normalise(password: str) -> bytes:
    # NFKC: the same password typed on another keyboard or IME (composed or decomposed
    # Hangul, full-width digits) must give the same bytes, or the clinician is locked out.
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL refuses above 32 MiB by default; allow what these parameters need, and no more.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def check_password_rules(password: str) -> None:
    """Raise `WeakPassword` unless `password` has 8 to 1024 characters."""
    length = len(unicodedata.normalize("NFKC", password))
    if length < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"The password must have at least {MIN_PASSWORD_CHARS} characters.")
    if length > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"The password must have at most {MAX_PASSWORD_CHARS} characters.")


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password`: `scrypt$n$r$p$salt$hash`, salt and hash in base64."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(_normalise(password), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P
            and salt and 16 <= len(digest) <= 64):
        return None
    return n, r, p, salt, digest


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (compared in constant time); False for a malformed hash."""
    parsed = _parse(stored)
    if parsed is None:
        log.warning("a stored password hash cannot be read; that account cannot sign in")
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(_normalise(password), salt, n, r, p, len(digest)), digest)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other parameters than today's (it is replaced at the next sign-in)."""
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (SCRYPT_N, SCRYPT_R, SCRYPT_P) or len(parsed[4]) != SCRYPT_DKLEN


# A well-formed hash no password matches (random salt and digest): checked for unknown names.
_DUMMY_HASH = (f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
               f"{_b64(secrets.token_bytes(SALT_BYTES))}${_b64(secrets.token_bytes(SCRYPT_DKLEN))}")


def _burn_time(password: str) -> None:
    # An unknown name costs one scrypt, like a known one, so timing does not tell them apart.
    check_password(password, _DUMMY_HASH)


# -- names -----------------------------------------------------------------------------------

def check_name(name: str) -> str:
    """`name` stripped, or `InvalidName` unless it has 1-64 of letters, digits and . _ - @."""
    cleaned = name.strip()
    if NAME_PATTERN.fullmatch(cleaned):
        return cleaned
    if not cleaned:
        raise InvalidName("A user name cannot be empty.")
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidName(f"A user name has at most {MAX_NAME_CHARS} characters; this one has {len(cleaned)}.")
    bad = " ".join(repr(c) for c in dict.fromkeys(c for c in cleaned if not NAME_PATTERN.fullmatch(c)))
    raise InvalidName(f"A user name may use letters a-z, digits and . _ - @ only, not {bad}.")


# -- the users table -------------------------------------------------------------------------

class AccountStore(Protocol):
    """Where accounts live and how a sign-in is checked; `Accounts` is the one implementation (the SQL store).

    Names are one account whatever their case ('Kim' and 'kim'); a method that changes an account raises
    `NoSuchUser` when there is none of that name.
    """

    def add_user(self, name: str, password: str, *, admin: bool = False) -> User:
        """Create an account; raises `InvalidName`, `WeakPassword` or `UserExists`."""
        ...

    def remove_user(self, name: str) -> None:
        """Delete an account and end its sessions."""
        ...

    def set_password(self, name: str, password: str) -> User:
        """Give an account a new password (and open it if locked); ends its sessions."""
        ...

    def set_admin(self, name: str, admin: bool = True) -> User:
        """Make an account an administrator, or not."""
        ...

    def list_users(self) -> list[User]:
        """Every account, by name."""
        ...

    def get_user(self, name: str) -> User | None:
        """One account (name matched ignoring case), or None."""
        ...

    def has_users(self) -> bool:
        """Whether any account exists."""
        ...

    def verify(self, name: str, password: str, address: str | None = None, *, device: str | None = None) -> User:
        """The account when `password` is right; else `WrongCredentials`, `TooManyAttempts` (`AccountThrottled`)."""
        ...


def _user(row: sa.RowMapping) -> User:
    return User(name=row["name"], is_admin=bool(row["is_admin"]), failed_count=row["failed_count"],
                locked_until=row["locked_until"], created_at=row["created_at"], last_login=row["last_login"])


def _named(name: str) -> sa.ColumnElement[bool]:
    """The WHERE of one account: its name ignoring case (the unique index on lower(name) serves it)."""
    return sa.func.lower(users.c.name) == name.strip().lower()


class Accounts:
    """`AccountStore` on the `users` table of `store`, with the sign-in throttle of `storage/sign_in_throttle.py`.

    `max_failures` (LOGIN_MAX_FAILURES): free failures per client address before it must wait;
    `lockout_seconds` (LOGIN_LOCKOUT_SECONDS): the longest wait of an address (an account's may be longer);
    `sessions`: the sign-in sessions a removed account or a new password ends (default: those of `store`);
    `devices`: the devices that signed in before, exempt from the account's wait (default: those of `store`).
    """

    def __init__(self, store: Store, *, max_failures: int = 5, lockout_seconds: float = 900.0,
                 clock: Callable[[], float] = time.time, sessions: SessionStore | None = None,
                 devices: KnownDevices | None = None) -> None:
        self.store = store
        self.sessions: SessionStore = sessions if sessions is not None else SqlSessionStore(store, clock=clock)
        self.devices = devices if devices is not None else KnownDevices(store, clock=clock)
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self.throttle = SignInThrottle(store, free_failures=max_failures, max_wait_seconds=lockout_seconds,
                                       clock=clock)

    def add_user(self, name: str, password: str, *, admin: bool = False) -> User:
        """Create an account; raises `InvalidName`, `WeakPassword` or `UserExists`."""
        name = check_name(name)
        check_password_rules(password)
        stamp = self.clock()
        hashed = hash_password(password)
        try:
            with self.store.connect() as conn:
                conn.execute(users.insert().values(name=name, password_hash=hashed, is_admin=int(admin),
                                                   created_at=stamp))
        except sa.exc.IntegrityError:  # unique ignoring case (the index on lower(name)): 'Kim' and 'kim' are one
            raise UserExists(f"A user named {name!r} already exists.") from None
        log.info("account added: %s%s", name, " (admin)" if admin else "")
        return User(name=name, is_admin=admin, failed_count=0, locked_until=None, created_at=stamp, last_login=None)

    def remove_user(self, name: str) -> None:
        """Delete an account, its preferences and its sessions (what it recorded stays, under its name); raises
        `NoSuchUser`."""
        with self.store.connect() as conn:
            if conn.execute(users.delete().where(_named(name))).rowcount == 0:
                raise NoSuchUser(f"No user is named {name.strip()!r}.")
            conn.execute(user_preferences.delete().where(user_preferences.c.user == user_key(name)))
        log.info("account removed: %s", name.strip())
        self.sessions.revoke_user(name)  # every browser signed in as it is signed out at its next click
        self.devices.forget_user(name)

    def set_password(self, name: str, password: str) -> User:
        """Give an account a new password and end its sessions (whoever knew the old one is signed out).

        Also opens a locked account: whoever sets the password has the right to. Raises `NoSuchUser`
        or `WeakPassword`.
        """
        check_password_rules(password)
        hashed = hash_password(password)
        change = users.update().where(_named(name)).values(password_hash=hashed, failed_count=0, locked_until=None)
        with self.store.connect() as conn:
            if conn.execute(change).rowcount == 0:
                raise NoSuchUser(f"No user is named {name.strip()!r}.")
        log.info("password changed: %s", name.strip())
        self.sessions.revoke_user(name)
        self.devices.forget_user(name)  # a device earns the exemption again by signing in with the new password
        found = self.get_user(name)
        assert found is not None
        return found

    def set_admin(self, name: str, admin: bool = True) -> User:
        """Make an account an administrator (sees everyone's jobs and history), or not; raises `NoSuchUser`."""
        with self.store.connect() as conn:
            if conn.execute(users.update().where(_named(name)).values(is_admin=int(admin))).rowcount == 0:
                raise NoSuchUser(f"No user is named {name.strip()!r}.")
        log.info("account %s: admin %s", name.strip(), "on" if admin else "off")
        found = self.get_user(name)
        assert found is not None
        return found

    def list_users(self) -> list[User]:
        """Every account, by name."""
        query = sa.select(users).order_by(sa.func.lower(users.c.name), users.c.name)  # the same order on both
        with self.store.connect() as conn:
            return [_user(r) for r in conn.execute(query).mappings()]

    def get_user(self, name: str) -> User | None:
        """One account (name matched ignoring case), or None."""
        with self.store.connect() as conn:
            row = conn.execute(sa.select(users).where(_named(name))).mappings().first()
        return _user(row) if row else None

    def has_users(self) -> bool:
        """Whether any account exists (with none, the app shows how to create the first)."""
        with self.store.connect() as conn:
            return conn.execute(sa.select(users.c.name).limit(1)).first() is not None

    def verify(self, name: str, password: str, address: str | None = None, *, device: str | None = None) -> User:
        """The account, when `password` is right; else `WrongCredentials` or `TooManyAttempts`.

        `address` is the client's (None: this machine); `device` the browser's device cookie, if any. An
        address that failed too often gets `TooManyAttempts`, a name that failed too often from unknown
        devices `AccountThrottled` (not a device that signed in to it before), both before any password
        is checked; otherwise every call hashes once, whether the name exists or not. Nothing locks.
        """
        now = self.clock()
        name = name.strip()
        key = self.throttle.name_key(name)
        known = self.devices.known(device, name)
        if (wait := self.throttle.attempt(address, key, known_device=known)) is not None:
            log.info("sign-in refused, the %s must wait %.0f s: name %s from %s",
                     "name" if wait.account else "address", wait.until - now, key, address or LOCAL)
            raise AccountThrottled(wait.until, now) if wait.account else TooManyAttempts(wait.until, now)
        with self.store.connect() as conn:
            row = conn.execute(sa.select(users).where(_named(name))).mappings().first()
        if row is None:
            _burn_time(password)
            raise self._failed(None, key, address, known)
        user, stored = _user(row), row["password_hash"]
        right = check_password(password, stored)  # before the lock check: a locked account costs the same
        if (until := user.lock_ends(now)) is not None:
            if not right:
                log.warning("failed sign-in (account locked): name %s from %s", key, address or LOCAL)
            raise AccountLocked(until)
        if not right:
            raise self._failed(user, key, address, known)
        # Conditional: a parallel wrong attempt may have locked the account meanwhile.
        open_now = sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= now)
        with self.store.connect() as conn:
            done = conn.execute(users.update().where(_named(user.name), open_now)
                                .values(failed_count=0, locked_until=None, last_login=now)).rowcount
            if done and needs_rehash(stored):
                conn.execute(users.update().where(_named(user.name)).values(password_hash=hash_password(password)))
        if not done:
            current = self.get_user(user.name)
            until = current.lock_ends(now) if current else None
            raise AccountLocked(until) if until is not None else WrongCredentials()
        self.throttle.succeeded(address, key)
        log.info("signed in: %s", user.name)
        return User(name=user.name, is_admin=user.is_admin, failed_count=0, locked_until=None,
                    created_at=user.created_at, last_login=now)

    def _failed(self, user: User | None, key: str, address: str | None, known: bool) -> WrongCredentials:
        """Record a wrong password for `user` (None: no such account); say when this client may try again."""
        # The name in clear could be a password typed into the wrong field: only its keyed hash is logged.
        log.warning("failed sign-in: name %s from %s", key, address or LOCAL)
        if user is not None:  # one statement increments, so parallel failures are all counted
            with self.store.connect() as conn:
                conn.execute(users.update().where(_named(user.name)).values(failed_count=users.c.failed_count + 1))
        waits = [self.throttle.next_attempt_at(address)]
        if not known:
            waits.append(self.throttle.next_account_attempt_at(key))
        return WrongCredentials(max((w for w in waits if w is not None), default=None))


def accounts_for(store: Store, settings: Settings) -> Accounts:
    """The accounts of `store` with the sign-in policy of `settings`."""
    return Accounts(store, max_failures=settings.login_max_failures, lockout_seconds=settings.login_lockout_seconds,
                    sessions=sessions_for(store, settings))


__all__ = ["AccountError", "AccountLocked", "AccountStore", "AccountThrottled", "Accounts", "InvalidName",
           "NoSuchUser", "SignInError", "TooManyAttempts", "User", "UserExists", "WeakPassword", "WrongCredentials",
           "accounts_for", "check_name", "check_password", "check_password_rules", "hash_password", "needs_rehash"]
