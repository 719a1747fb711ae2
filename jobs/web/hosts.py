"""Which Host headers the app answers: its own loopback names, so DNS rebinding cannot read the lake.

A page on `evil.example` can rebind that name to 127.0.0.1 and then read the app's
responses as same-origin; its requests still carry `Host: evil.example:PORT`. Answering
only the names the user typed (`127.0.0.1`, `localhost`, `[::1]`, with the served port)
closes that door; `refinery serve --allow-host NAME` adds names for a deliberate setup.
"""

from __future__ import annotations

from collections.abc import Iterable

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def trusted_hosts(port: int | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host header values to accept. With a port, `name:port` (and the bare name for port 80, which
    browsers leave out); without one (an app not bound to a known port), the bare names only."""
    names = [*LOOPBACK_NAMES, *(name.strip().lower() for name in extra if name.strip())]
    if port is None:
        return frozenset(names)
    return frozenset([f"{name}:{port}" for name in names] + (names if port == 80 else []))


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether the request's Host header is one of `allowed` (compared case-insensitively)."""
    return header is not None and header.strip().lower() in allowed
