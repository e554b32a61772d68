"""The terminal's view of a run: expected failures (``schemas.errors.ExpectedFailure``) are told
in one line by the CLI, so Prefect's console handler drops the log records that would repeat
them with a traceback. The records still reach Prefect's API handler, so the UI keeps the full
story; unexpected errors keep their tracebacks everywhere."""

from __future__ import annotations

import logging

from schemas.errors import ExpectedFailure


class HideExpectedFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ExpectedFailure)


def hide_expected_failure_tracebacks() -> None:
    """Attach the filter to every Prefect console handler, setting Prefect's logging up first
    (it is otherwise configured lazily, at the first flow run, after this has run)."""
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, HideExpectedFailures) for f in handler.filters
            ):
                handler.addFilter(HideExpectedFailures())
