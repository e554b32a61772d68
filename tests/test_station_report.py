"""The report's station section and map: size groups, the change against the same weekday last
year and the stops list's coordinates by hand; the section and the map present with station
series and absent without."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from schemas.errors import InvalidInput
from storage.stations import parse_station_locations, read_station_locations
from tasks.core.evaluation.report import render_report
from tasks.core.evaluation.scoring import score_forecasts
from tasks.core.evaluation.stations import (
    MAP_FILE, change_vs_last_year, error_by_size, size_groups, station_names, station_wape,
)  # fmt: skip
from tests.conftest import REPO
from tests.test_report_at_scale import EVAL, build


def test_size_groups_cut_the_stations_ranked_by_size_into_groups_of_equal_count():
    levels = pd.Series({"station:5": 50.0, "station:2": 40.0, "station:3": 20.0, "station:4": 30.0, "station:1": 10.0})
    # Ranked 1 (10), 3 (20), 4 (30), 2 (40), 5 (50): group 1 + rank * 4 // 5 = 1, 1, 2, 3, 4.
    assert size_groups(levels).to_dict() == {"station:1": 1, "station:3": 1, "station:4": 2, "station:2": 3, "station:5": 4}
    # Ties go by id; fewer stations than groups: one group each.
    assert size_groups(pd.Series({"station:b": 7.0, "station:a": 7.0})).to_dict() == {"station:a": 1, "station:b": 2}
    assert size_groups(pd.Series({"station:a": np.nan}, dtype=float)).empty


def scores_frame(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    """Pooled (h=0) scores from (station, model, abs_error, abs_actual, level)."""
    frame = pd.DataFrame(rows, columns=["unique_id", "model", "abs_error", "abs_actual", "level"])
    return frame.assign(h=0, count=10, mae=frame["abs_error"] / 10, mape=np.nan)


def test_error_by_size_pools_the_error_of_each_group():
    scores = scores_frame([
        ("station:1", "naive", 30.0, 100.0, 10.0), ("station:2", "naive", 10.0, 300.0, 30.0),
        ("station:3", "naive", 50.0, 500.0, 50.0), ("station:4", "naive", 140.0, 700.0, 70.0),
        ("station:1", "ridge", 10.0, 100.0, 10.0), ("station:3", "ridge", 25.0, 500.0, 50.0),
        ("rail", "naive", 1e6, 1e6, 1e5),  # not a station: left out
    ])  # fmt: skip
    by_size = error_by_size(scores, groups=2).set_index("group")
    # Group 1: stations 1 and 2 (levels 10, 30); group 2: stations 3 and 4 (50, 70).
    assert by_size["stations"].tolist() == [2, 2]
    assert by_size.loc[1, ["level_min", "level_max"]].tolist() == [10.0, 30.0]
    assert by_size.loc[1, "naive"] == pytest.approx(100 * 40 / 400)
    assert by_size.loc[2, "naive"] == pytest.approx(100 * 190 / 1200)
    assert by_size.loc[1, "ridge"] == pytest.approx(10.0) and by_size.loc[2, "ridge"] == pytest.approx(5.0)
    per_station = station_wape(scores).set_index(["model", "unique_id"])["wape"]
    assert per_station[("naive", "station:4")] == pytest.approx(20.0) and ("naive", "rail") not in per_station


def forecast_rows(rows: list[tuple[str, str, str, int, float]]) -> pd.DataFrame:
    """Forecast contract rows from (series, model, cutoff, h, y_hat)."""
    frame = pd.DataFrame(rows, columns=["unique_id", "model", "cutoff", "h", "y_hat"])
    frame["cutoff"] = pd.to_datetime(frame["cutoff"])
    return frame.assign(ds=frame["cutoff"] + pd.to_timedelta(frame["h"], unit="D"))


def test_change_against_the_same_weekday_last_year():
    # Cutoff Sunday 2024-03-10: h=1 is Monday 2024-03-11; 364 days before is Monday 2023-03-13.
    forecasts = forecast_rows([
        ("station:1", "ridge", "2024-03-10", 1, 1100.0), ("station:2", "ridge", "2024-03-10", 1, 500.0),
        ("station:3", "ridge", "2024-03-10", 1, 80.0), ("station:1", "ridge", "2024-03-10", 2, 9999.0),
        ("station:1", "naive", "2024-03-10", 1, 9999.0), ("station:1", "ridge", "2024-03-09", 1, 9999.0),
        ("rail", "ridge", "2024-03-10", 1, 9999.0),
    ])  # fmt: skip
    actuals = pd.DataFrame({
        "unique_id": ["station:1", "station:3", "station:2"],
        "ds": pd.to_datetime(["2023-03-13", "2023-03-13", "2023-03-12"]),  # station 2: a Sunday, not the same weekday
        "y": [1000.0, 0.0, 400.0],
    })  # fmt: skip
    change = change_vs_last_year(forecasts, actuals, pd.Timestamp("2024-03-10"), "ridge").set_index("unique_id")
    assert list(change.index) == ["station:1", "station:2", "station:3"]
    assert change.loc["station:1", "y_last_year"] == 1000.0
    assert change.loc["station:1", "change"] == pytest.approx(10.0)
    assert np.isnan(change.loc["station:2", "change"])  # no actual on 2023-03-13
    assert np.isnan(change.loc["station:3", "change"])  # an actual of 0 gives no percentage


STOPS = b"""STOP_ID,DIRECTION_ID,STOP_NAME,STATION_NAME,STATION_DESCRIPTIVE_NAME,MAP_ID,ADA,Location
30001,E,Austin (O'Hare-bound),Austin,Austin (Blue Line),40010,false,"(41.870, -87.776)"
30002,W,Austin (Forest Pk-bound),Austin,Austin (Blue Line),40010,false,"(41.872, -87.778)"
30003,N,Harlem (Howard-bound),Harlem/Lake,Harlem/Lake (Green Line),40020,true,"(41.886848, -87.803176)"
30004,S,Nowhere,Somewhere,Somewhere,40030,true,
"""


def test_the_stops_list_gives_one_row_per_station_with_its_platforms_mean_position():
    stations = parse_station_locations(STOPS)
    assert stations["station_id"].tolist() == ["40010", "40020", "40030"]
    assert stations["name"].tolist() == ["Austin", "Harlem/Lake", "Somewhere"]
    assert stations.loc[0, "lat"] == pytest.approx(41.871) and stations.loc[0, "lon"] == pytest.approx(-87.777)
    assert stations.loc[1, ["lat", "lon"]].tolist() == [41.886848, -87.803176]
    assert stations.loc[2, ["lat", "lon"]].isna().all()  # kept, to be listed as not on the map
    with pytest.raises(InvalidInput, match="no column Location"):
        parse_station_locations(b"MAP_ID,STATION_NAME\n40010,Austin\n")


def test_the_bundled_stops_list_places_143_stations():
    stations = read_station_locations(str(REPO / "data" / "CTA_-_System_Information_-_List_of__L__Stops.csv"))
    assert len(stations) == 143 and stations[["lat", "lon"]].notna().all().all()
    assert stations["lat"].between(41.7, 42.1).all() and stations["lon"].between(-87.95, -87.6).all()


def test_station_names_prefer_the_store_then_the_stops_list():
    catalog = pd.DataFrame({"unique_id": ["station:40010"], "name": ["Austin-Forest Park"]})
    names = station_names(["station:40010", "station:40020", "station:49999"], catalog, parse_station_locations(STOPS))
    assert names == {"station:40010": "Austin-Forest Park", "station:40020": "Harlem/Lake", "station:49999": "49999"}


@pytest.fixture(scope="module")
def scored():
    """bus, rail, 4 routes and stations 40000, 40010, 40020, 40030, with actuals a year back."""
    forecasts, actuals = build(8)
    year_before = actuals.assign(ds=actuals["ds"] - pd.Timedelta(days=364), y=actuals["y"] * 0.8)
    actuals = pd.concat([year_before, actuals], ignore_index=True)
    return score_forecasts(forecasts, actuals, EVAL), forecasts, actuals


def test_station_section_and_map_appear_with_station_series(scored):
    metrics, forecasts, actuals = scored
    latest = EVAL - pd.Timedelta(days=1)
    report = render_report(
        metrics, forecasts, actuals, run_date="2024-05-01", eval_date=EVAL, latest_cutoff=latest,
        station_locations=parse_station_locations(STOPS), max_series_sections=0,
    )  # fmt: skip
    markdown = report.markdown
    assert "## Stations (4)" in markdown and "### Leaderboard over stations (h=1..2)" in markdown
    assert "Austin (40010)" in markdown and "### Error by station size" in markdown
    # Colour: the leader's forecast for EVAL against 364 days before (actuals there are 0.8 × level).
    assert "vs the same weekday 364 days before" in markdown and "![2 'L' stations coloured by" in markdown
    assert "Not on the map, no coordinates in the stops list (2): 40000, Somewhere (40030)." in markdown
    png = report.images[MAP_FILE]
    assert png.startswith(b"\x89PNG") and base64.b64encode(png).decode() in report.html
    # Without a stops list: the section stays, the map is said to be missing.
    no_map = render_report(metrics, forecasts, actuals, run_date="2024-05-01", eval_date=EVAL, max_series_sections=0)
    assert "## Stations (4)" in no_map.markdown and MAP_FILE not in no_map.images
    assert "No station coordinates were given: no map." in no_map.markdown


def test_no_station_section_without_station_series(scored):
    metrics, forecasts, actuals = scored
    routes = forecasts[~forecasts["unique_id"].str.startswith("station:")]
    report = render_report(
        metrics[~metrics["unique_id"].str.startswith("station:")], routes, actuals, run_date="2024-05-01",
        eval_date=EVAL, latest_cutoff=EVAL - pd.Timedelta(days=1), station_locations=parse_station_locations(STOPS),
        max_series_sections=0,
    )  # fmt: skip
    assert "## All other series (4)" in report.markdown
    assert "Stations" not in report.markdown and MAP_FILE not in report.images
