"""Who is at the other end of this Streamlit session: the client's address and its browser's User-Agent.

The address is the connection's (`st.context.ip_address`; Streamlit hides a loopback peer, which
reads as None: this machine), or with TRUSTED_PROXY_HOPS=N the N-th from the right of
X-Forwarded-For: each trusted proxy appends the address it was reached from, so what a client
writes there itself lies further left and is never read. The sign-in throttle counts failures by
this address (`storage/sign_in_throttle.py`), and a session records both at sign-in.
"""

from __future__ import annotations

import streamlit as st

from storage.sign_in_throttle import normalise_address
from utils.settings import get_settings


def forwarded_client(forwarded_for: list[str], hops: int) -> str | None:
    """The client's address from X-Forwarded-For behind `hops` trusted proxies; None if the header cannot say.

    `forwarded_for` holds every X-Forwarded-For header of the request, in order. Fewer entries
    than proxies means the header did not come through them all: it is not believed.
    """
    entries = [part.strip() for value in forwarded_for for part in value.split(",") if part.strip()]
    if hops < 1 or len(entries) < hops:
        return None
    return normalise_address(entries[-hops])


def client_address() -> str | None:
    """This session's client address (None: this machine); X-Forwarded-For only with TRUSTED_PROXY_HOPS."""
    hops = get_settings().trusted_proxy_hops
    if hops:
        forwarded = forwarded_client(st.context.headers.get_all("X-Forwarded-For"), hops)
        if forwarded is not None:
            return forwarded
    return normalise_address(st.context.ip_address)


def user_agent() -> str:
    """The browser's User-Agent header ("" when none came)."""
    agent = st.context.headers.get("User-Agent")
    return agent if isinstance(agent, str) else ""


__all__ = ["client_address", "forwarded_client", "user_agent"]
