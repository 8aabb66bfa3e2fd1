"""`cli.py users`, `sessions` and `tokens`: sign-in accounts, who is signed in where, and the HTTP API's tokens.

Exit codes: 0 done, 2 bad input (a name, a password, an unknown or existing user, no such
session or token, an ambiguous id).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from commands import trail
from commands.exits import EXIT_INPUT, EXIT_OK, positive
from domain.audit import Action

if TYPE_CHECKING:
    from storage.accounts import AccountStore
    from storage.sessions import SessionStore
    from storage.tokens import ApiToken, TokenStore


def _accounts() -> AccountStore:
    import startup

    # The store the app uses (DATABASE_URL's, else DATA_DIR's), without starting the engine's job workers.
    return startup.accounts()


def _read_password() -> str | None:
    """The password: typed twice without echo on a terminal, else one line, all of stdin. None: nothing usable came."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            print("error: the two passwords differ; nothing was changed.", file=sys.stderr)
            return None
        return first
    from storage.accounts import MAX_PASSWORD_CHARS

    limit = 4 * MAX_PASSWORD_CHARS + 2  # the longest password in UTF-8, and a line ending
    data = sys.stdin.buffer.read(limit + 1)  # to the end, so a second line is seen rather than silently cut
    if len(data) > limit:
        print(f"error: the password on stdin is longer than {MAX_PASSWORD_CHARS} characters.", file=sys.stderr)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        print("error: the password on stdin is not UTF-8 text: send it as UTF-8, e.g. from a password manager.",
              file=sys.stderr)
        return None
    # Only one line ending (as `echo` adds) is dropped: spaces may be part of a passphrase.
    password = text.removesuffix("\n").removesuffix("\r")
    if "\n" in password or "\r" in password:
        print("error: the password on stdin has more than one line: send the password alone, as one line.",
              file=sys.stderr)
        return None
    if not password:
        print("error: no password on stdin: send it as one line, e.g. from a password manager.", file=sys.stderr)
        return None
    return password


def _password_from(args: argparse.Namespace) -> str | None:
    """The password for `users add` and `set-password`, from stdin only (an argument shows in `ps`); None: said why."""
    if not args.password_stdin:
        print("error: pass --password-stdin and send the password on stdin (never as an argument).",
              file=sys.stderr)
        return None
    return _read_password()


def cmd_users_add(args: argparse.Namespace) -> int:
    """Create an account; the password comes from stdin, never from the command line (it would show in `ps`)."""
    from storage.accounts import AccountError

    password = _password_from(args)
    if password is None:
        return EXIT_INPUT
    try:
        user = _accounts().add_user(args.name, password, admin=args.admin)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.USER_ADDED, user=user.name, admin=user.is_admin)
    print(f"added {user.name}{' (admin)' if user.is_admin else ''}")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    """Every account: name, admin, and whether failed sign-ins have locked it."""
    import time

    users = _accounts().list_users()
    if not users:
        print("no users yet: python cli.py users add NAME --admin --password-stdin", file=sys.stderr)
        return EXIT_OK
    now = time.time()
    width = max(len("name"), *(len(u.name) for u in users))
    print(f"{'name':<{width}}  admin  locked")
    for u in users:
        locked = (f"until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(u.locked_until))}"
                  if u.locked(now) else "no")
        print(f"{u.name:<{width}}  {'yes' if u.is_admin else 'no':<5}  {locked}")
    return EXIT_OK


def cmd_users_remove(args: argparse.Namespace) -> int:
    """Delete an account (its assessments and jobs stay, under its name)."""
    from storage.accounts import AccountError

    try:
        _accounts().remove_user(args.name)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.USER_REMOVED, user=args.name.strip())
    print(f"removed {args.name.strip()}; every session of the account has ended")
    return EXIT_OK


def cmd_users_set_password(args: argparse.Namespace) -> int:
    """Give an account a new password (from stdin) and end its sessions; also opens a locked account."""
    from storage.accounts import AccountError

    password = _password_from(args)
    if password is None:
        return EXIT_INPUT
    try:
        user = _accounts().set_password(args.name, password)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.PASSWORD_SET, user=user.name)
    print(f"new password for {user.name}; every session of the account has ended")
    return EXIT_OK


def _sessions() -> SessionStore:
    import startup

    return startup.sessions()


def cmd_sessions_list(args: argparse.Namespace) -> int:
    """Every live sign-in session (of --user): id prefix, user, started, last seen, address, browser."""
    import time

    def when(stamp: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))

    live = _sessions().live(args.user)
    if not live:
        print("no live sessions" + (f" of {args.user.strip()}" if args.user else ""), file=sys.stderr)
        return EXIT_OK
    width = max(len("user"), *(len(s.user) for s in live))
    print(f"{'id':<12}  {'user':<{width}}  {'started':<16}  {'last seen':<16}  {'address':<15}  browser")
    for s in live:
        agent = s.agent if len(s.agent) <= 60 else s.agent[:59] + "…"
        print(f"{s.key[:12]}  {s.user:<{width}}  {when(s.created_at)}  {when(s.last_seen)}  "
              f"{s.address or 'local':<15}  {agent}")
    return EXIT_OK


def cmd_sessions_revoke(args: argparse.Namespace) -> int:
    """End one session (by the id `sessions list` shows) or every session of --user, at their next click."""
    from storage.sessions import AmbiguousPrefix

    sessions = _sessions()
    if args.user:
        count = sessions.revoke_user(args.user)
        trail.record(Action.SESSION_REVOKED, user=args.user.strip(), count=count)
        print(f"ended {count} session{'s' * (count != 1)} of {args.user.strip()}")
        return EXIT_OK
    if not args.id:
        print("error: give a session id (from `cli.py sessions list`) or --user NAME.", file=sys.stderr)
        return EXIT_INPUT
    try:
        ended = sessions.revoke_prefix(args.id)
    except AmbiguousPrefix as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if not ended:
        print(f"error: no live session has the id {args.id.strip()!r}; see `cli.py sessions list`.", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.SESSION_REVOKED, user=ended[0].user, session=ended[0].key[:12], count=1)
    print(f"ended session {ended[0].key[:12]} of {ended[0].user}")
    return EXIT_OK


def cmd_users_set_admin(args: argparse.Namespace) -> int:
    """Make an account an administrator, or (--off) an ordinary user."""
    from storage.accounts import AccountError

    try:
        user = _accounts().set_admin(args.name, not args.off)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.ROLE_CHANGED, user=user.name, admin=user.is_admin)
    print(f"{user.name} is {'now an admin' if user.is_admin else 'no longer an admin'}")
    return EXIT_OK


def _tokens() -> TokenStore:
    import startup

    return startup.tokens()


def cmd_tokens_add(args: argparse.Namespace) -> int:
    """Make an API token for a user; the token is printed alone on the last line, this once (only a hash is kept)."""
    from storage.accounts import AccountError, check_name
    from utils.settings import get_settings

    try:
        name = check_name(args.user)
        if get_settings().auth_mode == "accounts":  # a token acts as an account: it must exist
            user = _accounts().get_user(name)
            if user is None:
                print(f"error: no user is named {name!r}: create it first (python cli.py users add {name} "
                      "--password-stdin).", file=sys.stderr)
                return EXIT_INPUT
            name = user.name
        record, token = _tokens().add(name, name=args.name or "", expires_days=args.expires_days)
    except (AccountError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.TOKEN_CREATED, token=record.id, user=record.user, expires_days=args.expires_days)
    until = "never expires" if record.expires_at is None else f"expires {_when(record.expires_at)}"
    print(f"token {record.id} for {record.user} ({until}); copy it now, it is not shown again:")
    print(token)
    return EXIT_OK


def _when(stamp: float | None) -> str:
    import time

    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def cmd_tokens_list(args: argparse.Namespace) -> int:
    """Every API token: id, user, label, state, when made, expires and was last used (never the token)."""
    import time

    tokens = _tokens().list()
    if not tokens:
        print("no API tokens yet: python cli.py tokens add USER", file=sys.stderr)
        return EXIT_OK
    now = time.time()
    states = [_token_state(t, t.state(now)) for t in tokens]
    width = max(7, *(len(state) for state in states))
    print(f"{'id':<16}  {'user':<20}  {'state':<{width}}  {'created':<16}  {'expires':<16}  {'last used':<16}  label")
    for t, state in zip(tokens, states, strict=True):
        print(f"{t.id:<16}  {t.user:<20}  {state:<{width}}  {_when(t.created_at):<16}  {_when(t.expires_at):<16}  "
              f"{_when(t.last_used_at):<16}  {t.name}")
    return EXIT_OK


def _token_state(token: ApiToken, state: str) -> str:
    """`state`, or why an active token is unusable all the same: the API refuses a token whose user has no
    account, or whose account was made again after the token (web/api/auth.py); only with AUTH_MODE=accounts."""
    from utils.settings import get_settings

    if state != "active" or get_settings().auth_mode != "accounts":
        return state
    user = _accounts().get_user(token.user)
    if user is None:
        return "unusable (user removed)"
    if user.created_at > token.created_at:
        return "unusable (user made again after the token)"
    return state


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    """Revoke an API token for good: its next request gets 401."""
    record = _tokens().revoke(args.id)
    if record is None:
        print(f"error: no API token has the id {args.id.strip()!r}: see python cli.py tokens list.", file=sys.stderr)
        return EXIT_INPUT
    trail.record(Action.TOKEN_REVOKED, token=record.id, user=record.user)
    print(f"revoked token {record.id} of {record.user}")
    return EXIT_OK


def _add_tokens_parser(sub) -> None:
    t = sub.add_parser("tokens", help="bearer tokens of the HTTP API (/api/v1)")
    tokens = t.add_subparsers(dest="tokens_command", required=True)
    add = tokens.add_parser("add", help="make a token acting as USER; printed once, on the last line")
    add.add_argument("user", help="the account the token acts as")
    add.add_argument("--name", help="a label: which system holds the token")
    add.add_argument("--expires-days", type=positive, metavar="N", help="expire after N days (default: never)")
    add.set_defaults(func=cmd_tokens_add)
    tokens.add_parser("list", help="every token, without the token itself").set_defaults(func=cmd_tokens_list)
    rv = tokens.add_parser("revoke", help="revoke a token for good")
    rv.add_argument("id", help="the token's id, from tokens list")
    rv.set_defaults(func=cmd_tokens_revoke)


def add_parsers(sub) -> None:
    """The `users`, `sessions` and `tokens` sub-commands, each bound to its handler through `func`."""
    u = sub.add_parser("users", help="sign-in accounts (AUTH_MODE=accounts)")
    users = u.add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="create an account")
    add.add_argument("name", help="1-64 characters: letters, digits and . _ - @")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password (8 characters or more) as one line from stdin; prompted without "
                          "echo on a terminal")
    add.add_argument("--admin", action="store_true", help="an administrator sees every user's jobs and history")
    add.set_defaults(func=cmd_users_add)
    users.add_parser("list", help="name, admin and lock-out of every account").set_defaults(func=cmd_users_list)
    rm = users.add_parser("remove", help="delete an account")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_users_remove)
    adm = users.add_parser("set-admin", help="make an account an administrator")
    adm.add_argument("name")
    adm.add_argument("--off", action="store_true", help="make it an ordinary user again")
    adm.set_defaults(func=cmd_users_set_admin)
    pw = users.add_parser("set-password", help="give an account a new password; ends its sessions")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the new password as one line from stdin; prompted without echo on a terminal")
    pw.set_defaults(func=cmd_users_set_password)
    _add_sessions_parser(sub)
    _add_tokens_parser(sub)


def _add_sessions_parser(sub) -> None:
    """The `sessions list|revoke` sub-commands."""
    s = sub.add_parser("sessions", help="sign-in sessions: who is signed in where; end a session")
    sessions = s.add_subparsers(dest="sessions_command", required=True)
    ls = sessions.add_parser("list", help="every live session: id, user, started, last seen, address, browser")
    ls.add_argument("--user", help="only this user's")
    ls.set_defaults(func=cmd_sessions_list)
    rv = sessions.add_parser("revoke", help="end a session (signed out at its next click)")
    rv.add_argument("id", nargs="?", help="the id (or its start) that `sessions list` shows")
    rv.add_argument("--user", help="end every session of this user instead")
    rv.set_defaults(func=cmd_sessions_revoke)
