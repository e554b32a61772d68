"""Shared fixtures: the real CTA file (optional), a tmp storage root, Prefect's test harness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_CSV_ENV = "RIDERSHIP_REAL_CSV"
REAL_CSV_FALLBACK = REPO.parent / "shared" / "data" / "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"

# The shipped default ingests the portal's 'L' station file (40 MB) or, offline, the bundled 5.8 MB
# snapshot on every nightly run; tests that want stations set their own small file. Set here, at
# import, so the flows run in this process and every subprocess built from os.environ see it.
os.environ.setdefault("RIDERSHIP_STATION_SOURCE", "")
# Likewise the weather: no test reaches NOAA or Open-Meteo, and none but the weather tests seeds
# the weather store from the bundled history (tests/test_weather*.py set their own sources).
os.environ.setdefault("RIDERSHIP_WEATHER_OBSERVED_SOURCE", "")
os.environ.setdefault("RIDERSHIP_WEATHER_FORECAST_SOURCE", "")
os.environ.setdefault("RIDERSHIP_WEATHER_OFFLINE_SNAPSHOT", "")


def real_csv_path() -> Path | None:
    candidate = Path(os.environ.get(REAL_CSV_ENV, REAL_CSV_FALLBACK))
    return candidate if candidate.is_file() else None


@pytest.fixture(scope="session")
def real_csv() -> Path:
    path = real_csv_path()
    if path is None:
        pytest.skip(f"real CTA file not found: set {REAL_CSV_ENV} or place it at {REAL_CSV_FALLBACK}")
    return path


@pytest.fixture
def storage_root(tmp_path: Path) -> str:
    return str(tmp_path / "storage")


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for flow tests (started once per session)."""
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness) -> str:
    """The harness server's API URL, for subprocesses that should use it too."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()
