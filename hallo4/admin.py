"""Who may run admin actions (train, activate a round, change settings, download weights).

The rule, in one place:
- HALLO4_ADMIN_TOKEN set: the caller must give that token (compared in constant time).
- No token set: allowed only when the server listens on loopback (127.0.0.1 / ::1 / localhost) and is
  not public (no Space, no share link); anywhere else admin actions are refused with a message that
  says how to set the token.
- Failed guesses are rate-limited per client and globally: after `MAX_FAILURES` wrong tokens within
  `WINDOW_S` seconds, every attempt from that client (or from anyone, past the global limit) is
  refused for the rest of the window, right token or not, so guessing is slow.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import Hallo4Error

LOOPBACK = {"127.0.0.1", "::1", "localhost", "0:0:0:0:0:0:0:1"}
MAX_FAILURES = int(os.environ.get("HALLO4_ADMIN_MAX_FAILURES", "5"))  # per client per window
MAX_FAILURES_GLOBAL = int(os.environ.get("HALLO4_ADMIN_MAX_FAILURES_GLOBAL", "50"))
WINDOW_S = float(os.environ.get("HALLO4_ADMIN_WINDOW_S", "300"))

_listen_host: str | None = None
_failures: dict[str, deque[float]] = {}
_lock = threading.Lock()


class AdminError(Hallo4Error):
    """An admin action was refused; the message says why and what to do."""


def set_listen_host(host: str) -> None:
    """The address the server listens on (app.py calls this before launching)."""
    global _listen_host
    _listen_host = host


def listen_host() -> str:
    return _listen_host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")


def is_public() -> bool:
    """True on a Hugging Face Space or when launched with a public share link (HALLO4_SHARE=1)."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("HALLO4_SHARE") == "1"


def local_only() -> bool:
    """No token needed: listening on loopback only, not a Space, no share link."""
    return listen_host() in LOOPBACK and not is_public()


def _token_matches(token: str | None, expected: str) -> bool:
    return bool(token) and hmac.compare_digest(
        hashlib.sha256(str(token).encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def check(token: str | None, *, action: str = "This admin action", client: str | None = None) -> None:
    """Raise AdminError unless `token` (or the loopback rule) allows the action; count failures."""
    expected = os.environ.get("HALLO4_ADMIN_TOKEN")
    if not expected:
        if local_only():
            return
        where = "a public Space / share link" if is_public() else f"{listen_host()} (not loopback)"
        raise AdminError(
            f"{action} is locked: the server is reachable on {where} and no admin token is set.",
            hint="Set HALLO4_ADMIN_TOKEN to a long random secret (e.g. `export HALLO4_ADMIN_TOKEN=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')`, or a Space secret), restart, and "
            "enter it in the Admin token field.",
        )
    key = client or "?"
    now = time.monotonic()
    with _lock:
        mine = _failures.setdefault(key, deque())
        everyone = _failures.setdefault("*", deque())
        for q in (mine, everyone):
            while q and now - q[0] > WINDOW_S:
                q.popleft()
        locked = len(mine) >= MAX_FAILURES or len(everyone) >= MAX_FAILURES_GLOBAL
        if locked:
            wait = WINDOW_S - (now - (mine[0] if len(mine) >= MAX_FAILURES else everyone[0]))
            raise AdminError(
                f"{action}: too many wrong admin tokens; admin actions are paused.",
                hint=f"Try again in {max(1, int(wait))} s.",
            )
        if _token_matches(token, expected):
            return
        mine.append(now)
        everyone.append(now)
    raise AdminError(
        f"{action}: wrong or missing admin token.", hint="Enter the HALLO4_ADMIN_TOKEN set on the server."
    )


def allowed(token: str | None, client: str | None = None) -> bool:
    """check() as a bool (for status lines); counts a wrong token like check()."""
    try:
        check(token, client=client)
        return True
    except AdminError:
        return False


def reset_failures() -> None:
    with _lock:
        _failures.clear()


def client_of(request: Any) -> str | None:
    """A client key for rate limits only (never stored): the proxy's first forwarded address on a
    Space (where the proxy sets it), else the socket's peer."""
    if request is None:
        return None
    headers = getattr(request, "headers", None) or {}
    if is_public():
        fwd = headers.get("x-forwarded-for") if hasattr(headers, "get") else None
        if fwd:
            return fwd.split(",")[0].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def required(action: str, *, token_param: str | None = None) -> Callable:
    """Decorator for every admin-only app handler: the one place the token is checked.

    The handler's `token_param` parameter (default: its first) is the admin token; its `request` parameter
    (Gradio fills it, positionally or by name) identifies the client for the rate limit."""

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        name = token_param or next(iter(sig.parameters))
        if name not in sig.parameters:
            raise TypeError(f"{fn.__name__} has no parameter {name!r} for the admin token")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind_partial(*args, **kwargs)
            check(bound.arguments.get(name), action=action, client=client_of(bound.arguments.get("request")))
            return fn(*args, **kwargs)

        return wrapper

    return deco
