"""Progress reporting with cancellation, shared by every long job (generation, extraction, training).

One object carries both: long work calls `progress(fraction, message)` at natural points
(per frame, per segment, per denoising step) and that call raises `CancelledError` once the user
asked to stop. So cancel is always honoured at the next report, and the UI needs no other hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import CancelledError

ProgressCallback = Callable[[float, str], None]


class Progress:
    """Reports a fraction in [0, 1] plus a message; raises CancelledError when cancelled.

    `sub(a, b)` gives a child that maps its own [0, 1] onto [a, b] of the parent, so nested stages
    (segments -> steps) report one overall fraction. `eta()` estimates the seconds left from the
    elapsed time and the last fraction reported.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        *,
        _parent: Progress | None = None,
        _span: tuple[float, float] = (0.0, 1.0),
    ):
        self._callback = callback
        self.cancel_event = (
            cancel_event
            if cancel_event is not None
            else (_parent.cancel_event if _parent is not None else threading.Event())
        )
        self._parent = _parent
        self._span = _span
        self._start = time.monotonic()
        self.fraction = 0.0
        self.message = ""

    def set_callback(self, callback: ProgressCallback | None) -> None:
        """Where a root Progress reports (e.g. a UI progress bar built after the Progress, because the
        callback reads this Progress's own ETA)."""
        self._callback = callback

    # -- cancellation -------------------------------------------------------------------------
    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise CancelledError if cancellation was requested."""
        if self.cancel_event.is_set():
            raise CancelledError()

    # -- reporting ----------------------------------------------------------------------------
    def __call__(self, fraction: float, message: str = "") -> None:
        self.check()
        fraction = min(1.0, max(0.0, float(fraction)))
        self.fraction = fraction
        self.message = message
        if self._parent is not None:
            a, b = self._span
            self._parent(a + (b - a) * fraction, message)
        elif self._callback is not None:
            self._callback(fraction, message)

    def sub(self, start: float, end: float) -> Progress:
        return Progress(_parent=self, _span=(start, end))

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the time so far; None until something was reported."""
        root = self
        while root._parent is not None:
            root = root._parent
        if root.fraction <= 0.0:
            return None
        elapsed = time.monotonic() - root._start
        return elapsed * (1.0 - root.fraction) / root.fraction


def as_progress(progress: Progress | ProgressCallback | None) -> Progress:
    """Accept a Progress, a plain callback(fraction, message) or None."""
    if isinstance(progress, Progress):
        return progress
    return Progress(progress)
