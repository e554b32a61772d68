"""The weather flow against answers served on 127.0.0.1: a 5xx is retried, an unreachable or
stalled source leaves the bundled history and a notice, a malformed answer changes nothing stored
and says why in one line, a forecast is stored once as the run date's vintage."""

from __future__ import annotations

import time
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from flows.settings import Settings
from flows.weather import weather
from storage import Store
from tests.test_source import closed_port
from tests.test_weather import NCEI_ANSWER, OPEN_METEO_ANSWER, observed
from tests.local_http import serving

RUN_DATE = date(2024, 12, 1)  # the recorded forecast's first day
HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


class _Weather(BaseHTTPRequestHandler):
    """``/<name>``: the answer of that name; ``/flaky-<name>``: HTTP 500 first, then the answer;
    ``/stall``: headers, then nothing for longer than the tests' timeout."""

    answers = {"ncei": NCEI_ANSWER, "open-meteo": OPEN_METEO_ANSWER, "html": HTML}
    hits: dict[str, int] = {}
    queries: dict[str, dict[str, list[str]]] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        name = url.path.strip("/")
        _Weather.hits[name] = _Weather.hits.get(name, 0) + 1
        _Weather.queries[name] = parse_qs(url.query)
        if name == "stall":
            self._answer(200, b"", length=100)
            time.sleep(3)
        elif name.startswith("flaky-") and _Weather.hits[name] == 1:
            self._answer(500, b"")
        else:
            self._answer(200, self.answers[name.removeprefix("flaky-")])

    def _answer(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with serving(_Weather) as url:
        yield url


@pytest.fixture
def sources(storage_root: str, monkeypatch, prefect_harness):
    """Point the weather at the server (each test names its paths); fast retries and timeouts."""
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_SOURCE_TIMEOUT_S", "1")
    monkeypatch.setenv("RIDERSHIP_SOURCE_RETRY_DELAY_S", "0.1")
    monkeypatch.setenv("RIDERSHIP_WEATHER_OBSERVED_DAYS", "14")
    _Weather.hits.clear()

    def use(observed: str, forecast: str, snapshot: str = "") -> Store:
        monkeypatch.setenv("RIDERSHIP_WEATHER_OBSERVED_SOURCE", observed)
        monkeypatch.setenv("RIDERSHIP_WEATHER_FORECAST_SOURCE", forecast)
        monkeypatch.setenv("RIDERSHIP_WEATHER_OFFLINE_SNAPSHOT", snapshot)
        return Store.open(storage_root)

    return use


def test_a_5xx_is_retried_and_the_forecast_kept_once_as_the_run_dates_vintage(server: str, sources):
    store = sources(f"{server}/flaky-ncei", f"{server}/open-meteo")
    summary = weather(run_date=RUN_DATE)

    assert _Weather.hits["flaky-ncei"] == 2  # HTTP 500, then the answer
    asked = _Weather.queries["flaky-ncei"]
    assert (asked["startDate"], asked["endDate"], asked["stations"], asked["units"]) == (
        ["2024-11-17"], ["2024-11-30"], ["USW00094846"], ["standard"]
    )
    stored = store.weather.read_observed()
    assert stored["date"].tolist() == list(pd.date_range("2024-11-17", "2024-11-30"))
    pd.testing.assert_frame_equal(
        stored.tail(1).reset_index(drop=True), observed([("2024-11-30", 25, 14, 0.0, 0.0, float("nan"), float("nan"))])
    )
    assert summary.observed_through == "2024-11-30" and summary.vintage_issued == "2024-12-01"
    assert summary.line == (
        "Weather: observed through 2024-11-30 (NCEI asked for 2024-11-17 .. 2024-11-30: 14 day(s) answered, 14 added, "
        "0 value(s) revised); forecast vintage issued 2024-12-01, 16 day(s) to 2024-12-16."
    )
    vintage = store.weather.read_vintages()
    assert store.weather.vintage_dates() == [pd.Timestamp("2024-12-01")] and len(vintage) == 16
    assert _Weather.queries["open-meteo"]["forecast_days"] == ["16"]
    assert (Path(store.root.path) / "weather" / "forecast" / "issued=2024-12-01" / "part.parquet").is_file()

    again = weather(run_date=RUN_DATE)  # a rerun keeps the vintage its forecasts were made with
    assert again.forecast == "forecast vintage issued 2024-12-01 (already stored, kept)"
    assert _Weather.hits["open-meteo"] == 1
    pd.testing.assert_frame_equal(store.weather.read_vintages(), vintage)
    assert "14 day(s) answered, 0 added, 0 value(s) revised" in again.observed


@pytest.mark.parametrize("how", ["unreachable", "stalled"])
def test_a_failing_source_leaves_the_bundled_history_and_says_so(server: str, sources, how: str):
    down = f"http://127.0.0.1:{closed_port()}/x" if how == "unreachable" else f"{server}/stall"
    store = sources(down, down, snapshot=Settings().weather_offline_snapshot)
    summary = weather(run_date=date(2019, 4, 8))

    history = store.weather.read_observed()
    assert (history["date"].min(), history["date"].max()) == (pd.Timestamp("1995-01-01"), pd.Timestamp("2024-12-31"))
    assert summary.observed_through == "2019-04-07" and summary.vintage_issued is None
    assert store.weather.vintage_dates() == []
    reason = "Connection refused" if how == "unreachable" else "timed out"
    assert summary.line.startswith(
        "Weather: observed through 2019-04-07 (bundled weather snapshot seeded the empty store with 1995-01-01 .. 2024-12-31; "
        "the observed source failed: "
    )
    assert reason in summary.observed and reason in summary.forecast
    assert summary.forecast.startswith("no forecast vintage for 2019-04-08 (the forecast source failed: ")
    if how == "stalled":
        assert _Weather.hits["stall"] == 8  # observed and forecast: 1 try + 3 retries each


def test_a_malformed_answer_changes_nothing_stored(server: str, sources):
    store = sources(f"{server}/ncei", f"{server}/open-meteo")
    weather(run_date=RUN_DATE)
    kept_observed, kept_vintages = store.weather.read_observed(), store.weather.read_vintages()

    sources(f"{server}/html", f"{server}/html")
    summary = weather(run_date=date(2024, 12, 2))
    assert summary.observed == (
        f"observed through 2024-11-30 (the observed source failed: {server}/html?dataset=daily-summaries&stations=USW00094846"
        "&startDate=2024-11-18&endDate=2024-12-01&dataTypes=TMAX,TMIN,PRCP,SNOW,SNWD,AWND&units=standard&format=csv: "
        "not an NCEI daily-summaries CSV: missing DATE or every data type (found: <!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>))"
    )
    assert summary.forecast.startswith(f"no forecast vintage for 2024-12-02 (the forecast source failed: {server}/html?latitude=")
    assert summary.forecast.endswith(": not JSON (Expecting value at line 1))")
    pd.testing.assert_frame_equal(store.weather.read_observed(), kept_observed)
    pd.testing.assert_frame_equal(store.weather.read_vintages(), kept_vintages)
