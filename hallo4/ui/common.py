"""What every tab's handlers share: the error mapping (Hallo4Error -> the user's message, never a
traceback), job tracking for Cancel, progress with cancel and ETA, the session's rater id."""

from __future__ import annotations

import functools
import inspect
import logging
import threading

import gradio as gr

from .. import admin, jobs, paths, raters
from ..errors import CancelledError, Hallo4Error
from ..progress import Progress
from . import messages

log = logging.getLogger("hallo4.app")

_cancel_events: dict[str, threading.Event] = {}
_running: dict[str, int] = {}  # jobs running per browser session, so Cancel can say what it did
_running_lock = threading.Lock()


def user_errors(fn):
    """Show Hallo4Error messages as they are; never a traceback in the page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CancelledError as exc:
            raise gr.Error(str(exc), title="Cancelled") from None
        except Hallo4Error as exc:
            raise gr.Error(messages.public_message(exc)) from None  # the upload's own name, never a server path
        except gr.Error:
            raise
        except OSError as exc:  # a full disk or a read-only data folder: say so, not "something went wrong"
            err = paths.storage_error(exc)
            if err is None:
                raise unexpected(fn.__name__, exc) from None
            log.error("Storage error in %s: %s", fn.__name__, exc)
            raise gr.Error(str(err)) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence for the UI (logged with its traceback)
            raise unexpected(fn.__name__, exc) from None

    return wrapper


def unexpected(fn_name: str, exc: BaseException) -> gr.Error:
    """Log a bug with its traceback; the page gets a short message without internals."""
    log.error("Unexpected error in %s", fn_name, exc_info=exc)
    return gr.Error(
        f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
        "please try again or report it."
    )


def session(request: gr.Request | None) -> str:
    return request.session_hash if request is not None and request.session_hash else "local"


def tracked(fn):
    """Count the session's running jobs (Cancel says "Cancelled" or "nothing is running")."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key = session(sig.bind_partial(*args, **kwargs).arguments.get("request"))
        with _running_lock:
            _running[key] = _running.get(key, 0) + 1
        try:
            return fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running[key] -= 1

    return wrapper


def cancel_session_job(request: gr.Request | None) -> bool:
    """Set the session's cancel event; False when nothing of the session is running."""
    key = session(request)
    with _running_lock:
        running = _running.get(key, 0) > 0
    if running and key in _cancel_events:
        _cancel_events[key].set()
    return running


def progress_for(request: gr.Request | None, gr_progress: gr.Progress, handler: str) -> Progress:
    """Our Progress (with cancel) feeding Gradio's progress bar, with an ETA. `handler`: the event's function
    name (hallo4.jobs stops the job when that event's client disconnects or cancels)."""
    key = request.session_hash if request is not None else "local"
    event = _cancel_events.setdefault(key, threading.Event())
    event.clear()
    still_wanted = jobs.watch(request, handler)
    prog = Progress(cancel_event=event)

    def cb(fraction: float, message: str) -> None:
        if still_wanted is not None and not still_wanted():  # this job only: not the session's cancel event
            raise CancelledError("Stopped: the request was cancelled or its page was closed.")
        eta = prog.eta()
        gr_progress(fraction, desc=f"{message}" + (f" (about {eta:.0f} s left)" if eta and fraction < 1 else ""))

    prog.set_callback(cb)
    return prog


def require_inputs(portrait, audio) -> None:
    missing = messages.missing_inputs(portrait, audio)
    if missing:
        raise gr.Error(missing)


def seed_of(seed) -> int | None:
    """The seed field: empty or -1 = random (None)."""
    return None if seed in (None, "", -1) else int(seed)


def rater_of(request: gr.Request | None) -> str:
    """The rater id the server issued to this session (hallo4.raters): random, never client-chosen,
    never an IP; new ids are rate-limited per client so one person cannot vote as many raters."""
    return raters.registry().rater_for(request.session_hash if request is not None else None, admin.client_of(request))
