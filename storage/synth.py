"""Writing synthetic portal files (made by :mod:`tasks.core.data.synth`) as CSV.

The core returns the files' text cells; this module owns the portal's file names and the CSV
format (header, commas, ``\\n`` line ends, no index, quotes only where a cell needs them) and
writes each file atomically under a folder, local or any fsspec URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from storage.fs import Root

# Keys as in tasks.core.data.synth (TOTALS, ROUTES, STATIONS), in the order they are written.
PORTAL_FILE_NAMES = {
    "totals": "CTA_-_Ridership_-_Daily_Boarding_Totals.csv",
    "routes": "CTA_-_Ridership_-_Bus_Routes_-_Daily_Totals_by_Route.csv",
    "stations": "CTA_-_Ridership_-__L__Station_Entries_-_Daily_totals.csv",
}


@dataclass(frozen=True)
class WrittenFile:
    key: str
    path: str
    size: int


def portal_csv(frame: pd.DataFrame) -> bytes:
    """A frame of text cells as the file's bytes."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_portal_files(out: str, frames: Mapping[str, pd.DataFrame]) -> list[WrittenFile]:
    """Write each frame (keyed like ``PORTAL_FILE_NAMES``) under ``out``, created if missing;
    a file of the same name is replaced atomically. Raises ``StorageUnavailable`` (exit 3) if
    ``out`` is not writable."""
    root = Root.from_url(out)
    root.check_writable()
    written = []
    for key, name in PORTAL_FILE_NAMES.items():
        if key not in frames:
            continue
        path = root.join(name)
        content = portal_csv(frames[key])
        root.write_bytes_atomic(path, content)
        written.append(WrittenFile(key, root.url(path), len(content)))
    return written
