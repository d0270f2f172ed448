"""Fair use of the app's queue: a per-session cap on queued jobs, and jobs that stop when their client
goes away.

Gradio has one global queue size (`max_size`) and per-event concurrency, but no per-session limit,
and it does not stop a running synchronous handler when its client disconnects or cancels (it only
marks the event dead and drops its result). Both are added here on top of Gradio's queue:

- `install_session_limit(demo, n)`: a session with `n` jobs already queued or running gets a clear
  "wait for your jobs" message instead of another place in the queue, so one session cannot fill the
  queue (others would get "Queue is full").
- `watch(request, fn_name)`: a callable telling whether this job is still wanted (not cancelled, client
  still connected). The app's progress
  callback checks it at every progress report (every few frames / every step) and cancels the job
  (`Progress` raises `CancelledError`; `media.write_mp4` / `media.iter_frames` then kill their ffmpeg
  child processes) once the client disconnected or cancelled.

Both read Gradio's queue internals (`Blocks._queue`: `push`, `pending_event_ids_session`,
`active_jobs`, `Event.alive`; `gradio.routes.cancel_tasks`), which have no public equivalent in gradio 6.31; the test suite's
flood and disconnect tests (tests/test_fair_queue.py) pin that behaviour against the real server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hallo4.jobs")
_demo: Any = None
_claimed: set[str] = set()
_claim_lock = threading.Lock()


def per_session_limit() -> int:
    return max(1, int(os.environ.get("HALLO4_MAX_JOBS_PER_SESSION", "2")))


def install_session_limit(demo: Any, heavy: set[str], per_session: int | None = None) -> None:
    """Refuse a new `heavy` event (by handler name) from a session that already has `per_session`
    heavy events queued or running; cheap events (page loads, votes, status) are never counted.
    Call after demo.queue()."""
    global _demo
    _demo = demo
    limit = per_session or per_session_limit()
    queue = demo._queue
    original = queue.push

    def is_heavy(fn: Any) -> bool:
        return getattr(fn, "name", None) in heavy

    async def push(body, request, username):  # same signature as gradio.queueing.Queue.push
        session = getattr(body, "session_hash", None)
        fn_index = getattr(body, "fn_index", None)
        fn = demo.fns.get(fn_index) if fn_index is not None else None
        if session and is_heavy(fn):
            pending = [
                queue.event_ids_to_events.get(e) for e in list(queue.pending_event_ids_session.get(session, ()))
            ]
            n = sum(1 for ev in pending if ev is not None and is_heavy(ev.fn))
            if n >= limit:
                message = (
                    f"You already have {n} jobs waiting or running (the limit is {limit} per visitor). "
                    "Wait for one to finish, or cancel it, then try again."
                )
                # Gradio's "queue_full" answer carries no text to the clients; a validation answer shows ours.
                return (
                    False,
                    [{"__type__": "validate", "is_valid": False, "message": message, "parameter_name": "queue"}],
                    "validator_error",
                )
        return await original(body, request, username)

    queue.push = push
    install_cancel_hook()


def watch(request: Any, fn_name: str) -> Callable[[], bool] | None:
    """A `still_wanted()` check for the running job of `request`'s session named `fn_name` (None outside the app)."""
    if _demo is None or request is None or not getattr(request, "session_hash", None):
        return None
    queue = getattr(_demo, "_queue", None)
    if queue is None:
        return None
    session = request.session_hash
    with _claim_lock:
        active = {ev._id for job in list(queue.active_jobs) for ev in (job or ())}
        _claimed.intersection_update(active)  # finished jobs' claims
        _cancelled.intersection_update(active)
        event = None
        for job in list(queue.active_jobs):
            for ev in job or ():
                if ev.session_hash == session and getattr(ev.fn, "name", None) == fn_name and ev._id not in _claimed:
                    event = ev
                    break
            if event is not None:
                break
        if event is None:
            log.info("No running %s event found for a session: its cancel/disconnect cannot be watched", fn_name)
            return None
        _claimed.add(event._id)
    stopped: list[bool] = []

    def still_wanted() -> bool:
        # Cancel (/cancel): Gradio cancels the event's asyncio task, which cannot interrupt a handler
        # running in a worker thread (the task waits for it), so the cancel is noted by `_cancel_hook`.
        # Disconnect: Gradio marks the event dead.
        running = any(ev is event for job in list(queue.active_jobs) for ev in (job or ()))
        wanted = event._id not in _cancelled and running and event.alive
        if not wanted and not stopped:
            stopped.append(True)
            log.info(
                "Stopping %s (event %s): %s",
                fn_name,
                event._id,
                "cancelled" if event._id in _cancelled else "the client disconnected",
            )
        return wanted

    return still_wanted


_cancelled: set[str] = set()


def install_cancel_hook() -> None:
    """Note which events Gradio's /cancel route cancels, before it waits for them (see `watch`)."""
    from gradio import routes

    original = routes.cancel_tasks
    if getattr(original, "_hallo4", False):
        return

    async def cancel_tasks(task_ids: set[str]):
        for task in asyncio.all_tasks():
            name = task.get_name()
            if "<gradio-sep>" in name:
                task_id, event_id = name.split("<gradio-sep>", 1)
                if task_id in task_ids:
                    with _claim_lock:
                        _cancelled.add(event_id)
                    log.info("Cancel requested for event %s", event_id)
        return await original(task_ids)

    cancel_tasks._hallo4 = True  # type: ignore[attr-defined]
    routes.cancel_tasks = cancel_tasks
