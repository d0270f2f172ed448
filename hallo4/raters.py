"""Arena rater ids issued by the server, so one person cannot vote as many raters by choosing ids.

A rater id is a random server-made token, bound to a server-side session (Gradio's session, whose
state lives on the server) the first time that session needs one. A client can still open new
sessions, so new ids are rate-limited per client address (HALLO4_NEW_RATERS_PER_HOUR, default 20):
past that, voting from a new session is refused with a message. The address is used only for this
in-memory count and never stored; the store sees only the random id. Together with the store's one
vote per pair per rater and its burst flags (`PreferenceStore.suspicious_votes`), stuffing needs many
networks and still shows up in the flags.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict, deque

from .errors import InputError

WINDOW_S = 3600.0
MAX_SESSIONS = 100_000  # remembered sessions (oldest forgotten first)


class RaterRegistry:
    def __init__(self, per_client_per_hour: int | None = None):
        self.per_client = int(
            per_client_per_hour
            if per_client_per_hour is not None
            else os.environ.get("HALLO4_NEW_RATERS_PER_HOUR", "20")
        )
        self._by_session: OrderedDict[str, str] = OrderedDict()
        self._issued: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def rater_for(self, session: str | None, client: str | None) -> str:
        """This session's rater id, issuing one (rate-limited per client) on first use."""
        key = session or f"client:{client or '?'}"
        now = time.monotonic()
        with self._lock:
            if key in self._by_session:
                self._by_session.move_to_end(key)
                return self._by_session[key]
            q = self._issued.setdefault(client or "?", deque())
            while q and now - q[0] > WINDOW_S:
                q.popleft()
            if len(q) >= self.per_client:
                raise InputError(
                    "vote",
                    f"too many new voting sessions from your network in the last hour ({self.per_client})",
                    "Keep voting in the browser tab you already used, or try again later.",
                )
            q.append(now)
            rater = "r-" + secrets.token_hex(12)
            self._by_session[key] = rater
            while len(self._by_session) > MAX_SESSIONS:
                self._by_session.popitem(last=False)
            return rater


_registry: RaterRegistry | None = None


def registry() -> RaterRegistry:
    global _registry
    if _registry is None:
        _registry = RaterRegistry()
    return _registry
