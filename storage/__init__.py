"""The I/O layer: the only code that knows paths, formats, fsspec and atomic writes.

Open one :class:`Store` on the storage root and ask it for tables by meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.forecasts import ForecastStore, MetricsStore
from storage.fs import Root
from storage.reports import ReportStore
from storage.ridership import RidershipStore


@dataclass(frozen=True)
class Store:
    root: Root

    @classmethod
    def open(cls, url: str) -> "Store":
        return cls(root=Root.from_url(url))

    @property
    def url(self) -> str:
        return self.root.url(self.root.path)

    @property
    def ridership(self) -> RidershipStore:
        return RidershipStore(self.root)

    @property
    def forecasts(self) -> ForecastStore:
        return ForecastStore(self.root)

    @property
    def metrics(self) -> MetricsStore:
        return MetricsStore(self.root)

    @property
    def reports(self) -> ReportStore:
        return ReportStore(self.root)

    @property
    def registry(self):
        # Imported here: the registry loads Keras, which SARIMA-only runs never need.
        from storage.registry import ModelRegistry

        return ModelRegistry(self.root)
