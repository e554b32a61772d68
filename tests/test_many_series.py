"""Issue 12: route and station series in one long-format store — recognised by their header,
validated with their own rules, merged by (series, date), named in a catalog; an old wide store
migrated on first use; series chosen by id or pattern; a backfill over them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.backfill import backfill
from flows.ingest import ingest
from flows.series import model_series, resolve_settings_series
from flows.settings import Settings
from schemas.errors import InvalidInput
from schemas.series import empty_long
from storage import Store
from storage.synth import PORTAL_FILE_NAMES, write_portal_files
from tasks.core.data.activity import active_at, group_by_activity, history_from_series, resolve_series
from tasks.core.data.series_cleaning import (
    ROUTES, STATIONS, TOTALS, merge_series, read_series_csv, series_catalog, source_kind, validate_series_batch,
)  # fmt: skip
from tasks.core.data.synth import synthesize
from tests.synthetic import as_raw_csv, synthetic_clean

ROUTE_HEADER = "route,date,daytype,rides\n"
STATION_HEADER = "station_id,stationname,date,daytype,rides\n"
AS_OF = pd.Timestamp("2019-12-31")


def batch(text: str, kind: str):
    data = text.encode()
    assert source_kind(data) == kind
    return validate_series_batch(read_series_csv(data, "f.csv", kind), kind, as_of=AS_OF)


# -- pure: recognising, validating, merging ------------------------------------------------------


def test_a_file_is_recognised_by_its_header():
    assert source_kind(b"route,date,daytype,rides\n9,01/01/2019,U,5\n") == ROUTES
    assert source_kind(b"\xef\xbb\xbfStation_ID,stationname,date,daytype,rides\r\n") == STATIONS
    assert source_kind(as_raw_csv(synthetic_clean(end="2018-01-10")).encode()) == TOTALS
    assert source_kind(b"date,riders\n") == TOTALS  # whose reader then names the missing columns


def test_route_rows_break_the_documented_rules_and_the_rest_is_long():
    rows = batch(
        ROUTE_HEADER
        + "9,01/01/2019,U,5000\n9,01/02/2019,W,0\n9,01/03/2019,W,-4\n9,01/04/2019,W,1.5\n9,01/05/2019,A,n/a\n"
        + "9/X,01/06/2019,U,10\n9,02/30/2019,W,7\n9,01/07/2020,W,7\n9,01/08/2019,X,7\n"
        + "X9,01/01/2019,U,300\nX9,01/01/2019,U,300\nX9,01/02/2019,W,400\nX9,01/02/2019,W,401\n",
        ROUTES,
    )
    rules = dict(zip(batch_lines(rows), rows.quarantined["rules"]))
    assert rules[4].startswith("rides:greater_than_or_equal_to(0)")
    assert rules[5].startswith("rides:whole_number")
    assert rules[6] == "rides:not_a_number('n/a')"
    assert rules[7] == "route:invalid_id('9/X')"
    assert rules[8] == "date:unparseable_date('02/30/2019')"
    assert rules[9] == "date:after_ingest_date(2019-12-31)"
    assert rules[10].startswith("daytype:isin")
    assert rules[13] == rules[14] == "date:conflicting_duplicate"
    assert rows.duplicates_dropped == 1
    assert rows.valid.to_dict("list") == {
        "unique_id": ["route:9", "route:9", "route:X9"],
        "service_date": list(pd.to_datetime(["2019-01-01", "2019-01-02", "2019-01-01"])),
        "day_type": ["U", "W", "U"], "y": [5000, 0, 300],  # a zero-ride day is a valid day
    }  # fmt: skip


def batch_lines(rows) -> list[int]:
    return list(rows.quarantined["source_line"])


def test_a_renamed_station_keeps_its_id_and_the_catalog_its_latest_name():
    rows = batch(
        STATION_HEADER + "40380,Clark/Lake,01/01/2019,U,100\n40380,Clark-Lake Transit Center,01/02/2019,W,200\n"
        + "41450,Chicago,01/02/2019,W,50\n",
        STATIONS,
    )
    merged = merge_series(empty_long(), rows.valid)
    catalog = series_catalog(merged.clean, rows.names, pd.DataFrame(columns=["unique_id", "name"]))
    assert catalog.set_index("unique_id")["name"].to_dict() == {
        "station:40380": "Clark-Lake Transit Center", "station:41450": "Chicago",
    }
    assert catalog.set_index("unique_id")["rows"].to_dict() == {"station:40380": 2, "station:41450": 1}


def test_a_newer_file_revises_adds_and_never_deletes():
    first = batch(ROUTE_HEADER + "9,01/01/2019,U,500\n9,01/02/2019,W,600\n", ROUTES).valid
    stations = batch(STATION_HEADER + "40380,Clark/Lake,01/01/2019,U,100\n", STATIONS).valid
    store = merge_series(merge_series(first.iloc[0:0], first).clean, stations).clean
    newer = batch(ROUTE_HEADER + "9,01/02/2019,W,650\n9,01/03/2019,W,700\n", ROUTES).valid
    merged = merge_series(store, newer)
    assert (merged.added, merged.revised) == (1, 1)
    assert merged.revisions[["unique_id", "column", "old_value", "new_value"]].values.tolist() == [["route:9", "y", "600", "650"]]
    y = merged.clean.set_index(["unique_id", "service_date"])["y"]
    assert y[("route:9", pd.Timestamp("2019-01-01"))] == 500  # missing from the newer file: kept
    assert y[("station:40380", pd.Timestamp("2019-01-01"))] == 100  # another file's series: kept
    assert len(merged.clean) == 4


# -- pure: choosing series and when they have data -----------------------------------------------


def test_series_are_chosen_by_id_or_pattern_and_an_unknown_one_is_one_line():
    available = ["station:40380", "route:9", "bus", "route:X9", "rail"]
    assert resolve_series(["route:*"], available) == ["route:9", "route:X9"]
    assert resolve_series(["*"], available) == ["bus", "rail", "route:9", "route:X9", "station:40380"]
    assert resolve_series(["rail", "bus", "rail"], available) == ["bus", "rail"]
    with pytest.raises(InvalidInput) as caught:
        resolve_series(["bus", "tram", "route:55"], available)
    assert str(caught.value) == "unknown series tram, route:55; the store has bus, rail, route:* (2), station:* (1)"
    with pytest.raises(InvalidInput):
        resolve_series(["../etc"], available)


def test_the_default_series_list_skips_what_the_store_lacks_but_an_explicit_one_does_not():
    totals_only = ["bus", "rail"]
    defaults = Settings()
    assert resolve_settings_series(None, totals_only, defaults) == ["bus", "rail"]
    with_stations = ["bus", "rail", "rail_entries", "station:40380", "station:41700", "route:9"]
    assert resolve_settings_series(None, with_stations, defaults) == [
        "bus", "rail", "rail_entries", "station:40380", "station:41700",
    ]  # fmt: skip
    chosen = Settings.from_env({"RIDERSHIP_SERIES": "bus,station:*"})
    assert chosen.series_from_env
    with pytest.raises(InvalidInput, match="unknown series station:"):
        resolve_settings_series(None, totals_only, chosen)
    with pytest.raises(InvalidInput, match="unknown series route:"):
        resolve_settings_series(["route:*"], totals_only, defaults)  # a flow parameter is explicit too
    with pytest.raises(InvalidInput, match="unknown series"):
        resolve_series(["tram", "metro"], totals_only, skip_unmatched=True)  # nothing at all matched


def test_on_the_production_sets_only_the_many_series_models_forecast_the_stations():
    series = ["bus", "rail", "rail_entries", "station:40380"]
    many = Settings().many_series_models
    assert model_series("ridge", series, many) == series
    assert model_series("naive", series, many) == series
    assert model_series("sarimax_log", series, many) == ["bus", "rail"]
    assert model_series("ensemble", series, many) == ["bus", "rail"]
    assert model_series("multitask_rnn", series, many) == ["bus", "rail"]
    assert model_series("sarimax_log", series) == series  # an explicit model list: every series
    assert model_series("multitask_rnn", series) == ["bus", "rail"]  # the RNNs: the totals, always


def test_a_series_is_forecast_only_where_it_has_recent_data_and_enough_history():
    days = pd.date_range("2019-01-01", "2019-03-31")
    long = pd.DataFrame(
        {
            "unique_id": ["bus"] * len(days) + ["route:1"] * 40 + ["route:2"] * 30,
            "service_date": [*days, *days[:40], *days[-30:]],  # route:1 closes on Feb 9, route:2 opens on Mar 2
            "day_type": "W", "y": 1,
        }
    )
    history = history_from_series(long)
    assert list(history.columns) == ["bus", "route:1", "route:2", "day_type"]
    cutoffs = list(pd.to_datetime(["2019-02-05", "2019-02-17", "2019-03-27", "2019-03-31"]))
    active = {s: active_at(history, s, cutoffs) for s in ("bus", "route:1", "route:2")}
    assert active == {
        "bus": cutoffs, "route:1": cutoffs[:1], "route:2": cutoffs[-1:],  # route:2: 28 values on Mar 29
    }
    assert group_by_activity(["bus", "route:1", "route:2"], cutoffs, active) == [
        (["bus"], cutoffs), (["route:1"], cutoffs[:1]), (["route:2"], cutoffs[-1:]),
    ]


# -- flows: ingest, migration, backfill ------------------------------------------------------------


@pytest.fixture
def synthetic_files(tmp_path: Path) -> Path:
    data = synthesize(7, 5, date(2018, 1, 1), date(2019, 6, 30), seed=3)
    folder = tmp_path / "portal"
    write_portal_files(str(folder), {TOTALS: data.totals, ROUTES: data.routes, STATIONS: data.stations})
    return folder


@pytest.mark.usefixtures("prefect_harness")
def test_three_files_ingest_into_one_long_store_readable_with_pandas(synthetic_files: Path, storage_root: str):
    summaries = {kind: ingest(source=str(synthetic_files / PORTAL_FILE_NAMES[kind]), storage=storage_root) for kind in (ROUTES, STATIONS, TOTALS)}
    assert {k: s.kind for k, s in summaries.items()} == {ROUTES: ROUTES, STATIONS: STATIONS, TOTALS: TOTALS}
    clean = pd.read_parquet(Path(storage_root) / "clean")
    assert list(clean.columns) == ["unique_id", "service_date", "day_type", "y"]
    kinds = clean["unique_id"].str.partition(":")[0].replace({"bus": "total", "rail": "total"})
    kinds = kinds.replace({"rail_entries": "derived"})  # Σ station:*, derived at the station file's ingest
    assert clean.groupby(kinds)["unique_id"].nunique().to_dict() == {"derived": 1, "route": 8, "station": 5, "total": 2}  # route 4 renumbered
    assert not clean.duplicated(["unique_id", "service_date"]).any()
    store = Store.open(storage_root)
    quarantined = store.ridership.read_series_quarantine()
    assert len(quarantined) == 10 and summaries[ROUTES].quarantined == summaries[STATIONS].quarantined == 5
    assert quarantined["rules"].str.contains("date:conflicting_duplicate").sum() == 4
    catalog = store.ridership.read_catalog()
    assert len(catalog) == 14 and set(catalog["kind"]) == {"derived", "route", "station"}
    before = (Path(storage_root) / "clean" / "ridership.parquet").read_bytes()
    again = ingest(source=str(synthetic_files / PORTAL_FILE_NAMES[STATIONS]), storage=storage_root)
    assert (again.added, again.revised) == (0, 0)
    assert (Path(storage_root) / "clean" / "ridership.parquet").read_bytes() == before


@pytest.mark.usefixtures("prefect_harness")
def test_a_wide_store_is_read_as_is_and_migrated_by_the_next_ingest(tmp_path: Path, storage_root: str):
    published = synthetic_clean(end="2019-04-10")
    wide = published[published["service_date"] <= "2019-03-31"].reset_index(drop=True)
    path = Path(storage_root) / "clean" / "ridership.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(wide.assign(service_date=wide["service_date"].dt.date), preserve_index=False), path)
    store = Store.open(storage_root)
    assert store.ridership.is_wide()
    pd.testing.assert_frame_equal(store.ridership.read_clean(), wide, check_dtype=False)
    source = tmp_path / "newer.csv"
    source.write_text(as_raw_csv(published))
    summary = ingest(source=str(source), storage=storage_root)
    assert (summary.added, summary.revised) == (10, 0)
    assert not store.ridership.is_wide()
    migrated = store.ridership.read_clean()
    pd.testing.assert_frame_equal(migrated[migrated["service_date"] <= "2019-03-31"], wide, check_dtype=False)


@pytest.mark.usefixtures("prefect_harness")
def test_a_backfill_over_a_pattern_forecasts_each_series_while_it_runs(synthetic_files: Path, storage_root: str, monkeypatch):
    for kind in (TOTALS, ROUTES):
        ingest(source=str(synthetic_files / PORTAL_FILE_NAMES[kind]), storage=storage_root)
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_WORKERS", "1")
    store = Store.open(storage_root)
    history = history_from_series(store.ridership.read_series())
    start, end = date(2019, 6, 1), date(2019, 6, 10)
    cutoffs = list(pd.date_range("2019-05-31", "2019-06-09"))
    summary = backfill(start=start, end=end, models=["naive"], series=["route:*"])
    routes = [s for s in history.columns if s.startswith("route:")]
    assert summary.series == routes
    forecasts = store.forecasts.read()
    for unique_id in routes:
        stored = set(forecasts.loc[forecasts["unique_id"] == unique_id, "cutoff"])
        assert stored == set(active_at(history, unique_id, cutoffs)), unique_id
    assert forecasts["y_hat"].notna().all()
    again = backfill(start=start, end=end, models=["naive"], series=["route:*"])
    assert again.progress.stored == {"naive": 0}
    metrics = store.metrics.read()
    assert set(metrics["unique_id"]) == set(forecasts["unique_id"])  # route actuals score them
    assert (metrics.loc[metrics["h"] == 0, "count"] > 0).all()
