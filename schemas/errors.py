"""Failures the job expects, shared by every layer: each is explained in one line and maps to an
exit code of the ``ridership`` command (README, "Exit codes"). Anything else is a bug and keeps
its traceback."""

from __future__ import annotations


class ExpectedFailure(Exception):
    """A failure with a one-line explanation; ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class InvalidInput(ExpectedFailure, ValueError):
    """A raw file or a parameter is invalid; nothing stored was changed."""

    exit_code = 2


class Unavailable(ExpectedFailure, OSError):
    """The source or the storage cannot be reached or written; nothing stored was changed."""

    exit_code = 3


class DegradedRun(ExpectedFailure):
    """The run wrote its forecasts and report, but from older data than it should have (the
    source failed and the store already held data). ``outcome`` is what the run produced."""

    exit_code = 4

    def __init__(self, message: str, outcome: object = None) -> None:
        super().__init__(message)
        self.outcome = outcome
