"""Sign-in throttling: failures slow down the client address they come from, and the account they guess from
devices it has never signed in from; nothing locks an account (NIST SP 800-63B: throttling, no hard lock-out).

A lock-out lets anyone who reaches the form keep every clinician and administrator out with a few wrong
passwords each; a lock on failures from several addresses, bought with a handful of addresses, still did.
The policy here (state in the store's table `sign_in_failures`, so every process and server sharing the
database sees the same counts):

- **Per client address** (an IPv4 address; an IPv6 address by its /64, which one subscriber
  usually holds whole). The first LOGIN_MAX_FAILURES failures are free; after them each further
  attempt must come 2, 4, 8 ... seconds after the address's previous one, at most
  LOGIN_LOCKOUT_SECONDS. An attempt made too early is refused without checking the password and
  is not counted. Every attempt is counted *before* its password is checked (so a burst of
  parallel attempts cannot all slip through), and a successful sign-in refunds what that address
  spent on that one name: a clinician's own typos, never failures against other names, so an
  account holder cannot reset their budget to guess colleagues' passwords.
- **Per account, for unknown devices**: the failures at one name from every address (within the
  memory below) count too. After LOGIN_MAX_FAILURES of them, an attempt from a device that has
  never signed in to that account must come 2, 4, 8 ... seconds after the name's previous attempt,
  up to a cap of at least LOGIN_LOCKOUT_SECONDS and large enough that 1,000 guesses take at least a
  day however many addresses they come from (`GUESSES`, `account_cap`). A browser that signed in to
  the account before (its device cookie, storage/devices.py) skips this wait, never its address's:
  an attacker with any number of addresses cannot keep a clinician out on her own device. Names
  without an account are throttled the same way, so the waits do not tell who has an account.
- Counts are forgotten after a day without attempts (twice LOGIN_LOCKOUT_SECONDS if that is longer).

Behind a reverse proxy every client has the proxy's address unless the app is told to trust
X-Forwarded-For (TRUSTED_PROXY_HOPS, read by `ui/auth.py`): then one stranger slows everyone's
sign-in, though still locks no account.

Names are stored and logged only as `name_key`: HMAC-SHA256 under a random per-install key
(made by the migration, kept in the store), 16 hex digits. A password typed into the name field
is never kept or logged in clear, and a reader of the logs who does not hold the store cannot
test a list of likely names against them (whoever holds the store, and so the key, can).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from storage.schema import install_keys, sign_in_failures
from storage.store import Store
from storage.upsert import upsert

LOCAL = "local"  # no address known: the same machine (Streamlit hides loopback) or a caller that gave none
DAY_SECONDS = 86_400.0
_MAX_DOUBLINGS = 40  # 2**40 s is far above any cap; bounds the float before min()
GUESSES = 1_000  # at one account, from any number of addresses and unknown devices, take at least DAY_SECONDS

_keys: dict[str, bytes] = {}  # per database (`Store.name`): read once per process, it never changes
_keys_lock = threading.Lock()
_KEY_PURPOSE = "sign_in_names"


def normalise_address(text: str | None) -> str | None:
    """`text` as a canonical IP address ("203.0.113.7", "2001:db8::1"), without port or brackets; None if not one."""
    if not text:
        return None
    value = text.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:443, as some load balancers send it
        value = value.split(":", 1)[0]
    value = value.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names an interface, not a client
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def address_bucket(address: str | None) -> str:
    """The key one client's failures are counted under: the IPv4 address, the IPv6 /64, or `local`."""
    canonical = normalise_address(address)
    if canonical is None:
        return LOCAL
    ip = ipaddress.ip_address(canonical)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return canonical


@dataclass(frozen=True)
class Wait:
    """An attempt refused unchecked: the next one may come at `until`; `account` when the name's wait, not the
    address's, refused it."""

    until: float
    account: bool = False


class SignInThrottle:
    """The address and account throttles, kept in `store` (see the module docstring)."""

    def __init__(self, store: Store, *, free_failures: int = 5, max_wait_seconds: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.free_failures = free_failures
        self.max_wait_seconds = max_wait_seconds
        self.clock = clock
        self.memory_seconds = max(DAY_SECONDS, 2 * max_wait_seconds)
        self.account_cap = _account_cap(free_failures, max_wait_seconds)

    def account_delay(self, spent: int) -> float:
        """Seconds an unknown device must wait after the name's previous attempt, once the name has `spent`."""
        return _delay(spent, self.free_failures, self.account_cap)

    def guesses_take(self, guesses: int) -> float:
        """The least time `guesses` attempts at one name from unknown devices take, however many addresses."""
        return _took(guesses, self.free_failures, self.account_cap)

    def name_key(self, name: str) -> str:
        """The keyed hash a name is stored and logged under (the same for 'Kim' and ' kim ')."""
        digest = hmac.new(self._install_key(), name.strip().lower().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:16]

    def _install_key(self) -> bytes:
        database = self.store.name
        with _keys_lock:
            if database not in _keys:
                with self.store.connect() as conn:
                    key = conn.execute(sa.select(install_keys.c.key)
                                       .where(install_keys.c.purpose == _KEY_PURPOSE)).scalar_one()
                _keys[database] = bytes(key)
            return _keys[database]

    def delay(self, spent: int) -> float:
        """Seconds the next attempt must wait after the previous one, once an address has `spent` attempts."""
        if spent < self.free_failures:
            return 0.0
        return min(self.max_wait_seconds, 2.0 ** min(spent - self.free_failures + 1, _MAX_DOUBLINGS))

    def _open_at(self, conn: sa.Connection, bucket: str, now: float) -> float | None:
        t = sign_in_failures.c
        query = (sa.select(sa.func.coalesce(sa.func.sum(t.failures), 0), sa.func.max(t.last_at))
                 .where(t.address == bucket, t.last_at > now - self.memory_seconds))
        spent, last = conn.execute(query).one()
        if last is None:
            return None
        opens = last + self.delay(int(spent))
        return opens if opens > now else None

    def _account_open_at(self, conn: sa.Connection, name_key: str, now: float) -> float | None:
        t = sign_in_failures.c
        query = (sa.select(sa.func.coalesce(sa.func.sum(t.failures), 0), sa.func.max(t.last_at))
                 .where(t.name_key == name_key, t.last_at > now - self.memory_seconds))
        spent, last = conn.execute(query).one()
        if last is None:
            return None
        opens = last + self.account_delay(int(spent))
        return opens if opens > now else None

    def attempt(self, address: str | None, name_key: str, *, known_device: bool = False) -> Wait | None:
        """Count an attempt from `address` at `name_key`; when it must wait, count nothing and say until when.

        The address's wait always applies; the name's only to a device that has not signed in to it before
        (`known_device` False). Counted before the password is checked; `succeeded` refunds it.
        """
        bucket, now = address_bucket(address), self.clock()
        # The checks and the count are one step for every process and server sharing the database: parallel
        # guesses from many addresses at once cannot all slip past the name's wait.
        with self.store.connect(serialize="sign_in") as conn:
            if (opens := self._open_at(conn, bucket, now)) is not None:
                return Wait(opens)
            if not known_device and (opens := self._account_open_at(conn, name_key, now)) is not None:
                return Wait(opens, account=True)
            conn.execute(sign_in_failures.delete().where(sign_in_failures.c.last_at <= now - self.memory_seconds))
            count = upsert(self.store, sign_in_failures).values(address=bucket, name_key=name_key, failures=1,
                                                                last_at=now)
            conn.execute(count.on_conflict_do_update(
                index_elements=[sign_in_failures.c.address, sign_in_failures.c.name_key],
                set_={"failures": sign_in_failures.c.failures + 1, "last_at": count.excluded.last_at}))
        return None

    def next_attempt_at(self, address: str | None) -> float | None:
        """When `address` may try again, if it must wait; None when it may try at once."""
        with self.store.connect() as conn:
            return self._open_at(conn, address_bucket(address), self.clock())

    def succeeded(self, address: str | None, name_key: str) -> None:
        """A right password for `name_key` from `address`: refund what the address spent on that name."""
        with self.store.connect() as conn:
            conn.execute(sign_in_failures.delete().where(sign_in_failures.c.address == address_bucket(address),
                                                         sign_in_failures.c.name_key == name_key))

    def next_account_attempt_at(self, name_key: str) -> float | None:
        """When an unknown device may try `name_key` again, if it must wait; None when it may try at once."""
        with self.store.connect() as conn:
            return self._account_open_at(conn, name_key, self.clock())


def _delay(spent: int, free_failures: int, cap: float) -> float:
    if spent < free_failures:
        return 0.0
    return min(cap, 2.0 ** min(spent - free_failures + 1, _MAX_DOUBLINGS))


def _took(guesses: int, free_failures: int, cap: float) -> float:
    return sum(_delay(spent, free_failures, cap) for spent in range(guesses))


@functools.lru_cache(maxsize=16)
def _account_cap(free_failures: int, max_wait_seconds: float) -> float:
    # Found once per policy, not per throttle: the API builds one for every request (0.35 ms of summing each).
    cap = max_wait_seconds
    while _took(GUESSES, free_failures, cap) < DAY_SECONDS:  # a short LOGIN_LOCKOUT_SECONDS must not shorten the day
        cap *= 1.25
    return cap


__all__ = ["GUESSES", "LOCAL", "SignInThrottle", "Wait", "address_bucket", "normalise_address"]
