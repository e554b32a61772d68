"""The I/O layer: the only code that knows paths, formats, fsspec and atomic writes.

Open one :class:`Store` on the storage root and ask it for tables by meaning.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from schemas.errors import InvalidInput

from storage.forecasts import ForecastStore, MetricsStore
from storage.fs import Root
from storage.locks import Lease, LockPolicy, StorageLocks
from storage.regimes import RegimeStore
from storage.reports import ReportStore
from storage.ridership import RidershipStore
from storage.weather import WeatherStore

INTERRUPTED_WRITE_AGE_SECONDS = 3600
BACKTESTS = "backtests"
BACKTEST_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def check_backtest_name(name: str) -> None:
    if not BACKTEST_NAME.fullmatch(name):
        raise InvalidInput(f"backtest name {name!r}: use letters, digits, '.', '_' or '-' (not starting with '.')")


@dataclass(frozen=True)
class Store:
    """``root`` holds what a run writes; ``data_root`` (default: the same) the ingested data. A
    backtest store writes under ``<root>/backtests/<name>/`` and reads the main clean series."""

    root: Root
    data_root: Root | None = None
    lock_policy: LockPolicy = field(default_factory=LockPolicy)

    @classmethod
    def open(cls, url: str, lock_policy: LockPolicy | None = None) -> "Store":
        return cls(root=Root.from_url(url), lock_policy=lock_policy or LockPolicy())

    @classmethod
    def open_writable(cls, url: str, lock_policy: LockPolicy | None = None) -> "Store":
        """Open a root a run will write to; raises ``StorageUnavailable`` (one line) up front
        rather than after hours of fitting."""
        store = cls.open(url, lock_policy)
        store.root.check_writable()
        return store

    def lock(self, name: str, purpose: str) -> AbstractContextManager[Lease]:
        """A lease on ``name`` under this root for a read-merge-write section that another run
        on the same root may also be in (see :mod:`storage.locks`)."""
        return StorageLocks(self.root, self.lock_policy).hold(name, purpose)

    def remove_interrupted_writes(self) -> list[str]:
        """Temporary files of writes cut by a crash, older than an hour: deleted, their URLs returned."""
        return self.root.remove_interrupted_writes(older_than_seconds=INTERRUPTED_WRITE_AGE_SECONDS)

    @property
    def url(self) -> str:
        return self.root.url(self.root.path)

    def backtest(self, name: str) -> "Store":
        """The store of backtest ``name``: its own forecasts, metrics, reports and model registry
        (so production forecasts and champions are never touched), the main clean series."""
        check_backtest_name(name)
        root = Root(fs=self.root.fs, path=self.root.join(BACKTESTS, name))
        return Store(root=root, data_root=self.data_root or self.root, lock_policy=self.lock_policy)

    @property
    def ridership(self) -> RidershipStore:
        return RidershipStore(self.data_root or self.root)

    @property
    def weather(self) -> WeatherStore:
        # Data, like the ridership: a backtest reads the main store's weather.
        return WeatherStore(self.data_root or self.root)

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
    def regimes(self) -> RegimeStore:
        return RegimeStore(self.root)

    @property
    def registry(self):
        # Imported here: the registry loads Keras, which SARIMA-only runs never need.
        from storage.registry import ModelRegistry

        return ModelRegistry(self.root)
