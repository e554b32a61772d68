"""Game schedules (Retrosheet's ``YYYYSKED.TXT`` rows, plain or gzip) read into event days: the
only place that knows where a schedule lives and how it is packed."""

from __future__ import annotations

import gzip

import pandas as pd

from schemas.errors import InvalidInput
from storage.source import fetch_source
from tasks.core.data.events import parse_schedule

_MAX_BYTES = 16 * 2**20  # a season of every team is 150 KB


def read_event_schedule(source: str) -> pd.DataFrame:
    """The schedule at ``source`` (a path or any URL :func:`storage.source.fetch_source` reads)
    as event days (``tasks.core.data.events.EVENT_COLUMNS``). Raises ``SourceUnavailable`` or
    ``InvalidInput``."""
    data = fetch_source(source, _MAX_BYTES)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise InvalidInput(f"{source}: not a readable gzip file ({error})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{source}: not UTF-8 text (byte {error.start})") from None
    return parse_schedule(text.splitlines(), source)
