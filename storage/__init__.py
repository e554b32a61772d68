"""The I/O layer: the only code that knows paths, formats, fsspec and atomic writes.

Open one :class:`Store` on the storage root and ask it for tables by meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.fs import Root
from storage.ridership import RidershipStore


@dataclass(frozen=True)
class Store:
    root: Root

    @classmethod
    def open(cls, url: str) -> "Store":
        return cls(root=Root.from_url(url))

    @property
    def ridership(self) -> RidershipStore:
        return RidershipStore(self.root)
