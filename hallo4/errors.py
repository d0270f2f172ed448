"""User-facing errors.

Every error a user can cause raises one of these. The message names the input, says what is wrong and
what to do, so the UI and the CLIs can show it as-is (no traceback). Programming errors stay ordinary
exceptions.
"""

from __future__ import annotations


class Hallo4Error(Exception):
    """Base class: an error whose message is written for the user."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class InputError(Hallo4Error, ValueError):
    """A user-supplied input (file, parameter) is unusable.

    `input_name` is what the user calls it ("portrait", "audio", "skeleton", "steps"),
    `problem` what is wrong with it, `fix` what to do about it.
    """

    def __init__(self, input_name: str, problem: str, fix: str | None = None, *, path: str | None = None):
        self.input_name = input_name
        self.problem = problem
        self.fix = fix
        self.path = path
        where = f"{input_name} ({path})" if path else input_name
        super().__init__(f"{where}: {problem}.", hint=fix)


class MissingWeightsError(Hallo4Error):
    """Model weights are not present; the message says what is missing and how to fetch it."""


class CancelledError(Hallo4Error):
    """The user cancelled a long-running job."""

    def __init__(self, message: str = "Cancelled by the user."):
        super().__init__(message)


class ResourceError(Hallo4Error):
    """Not enough memory / no suitable device for the requested settings."""
