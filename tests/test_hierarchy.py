"""Issue 20, item 3: the hierarchy ``rail_entries`` = Σ ``station:*`` — derived at ingest (sums,
revisions, missing stations, day types), configured in settings, a normal series everywhere, and
a backfill over a synthetic station panel storing coherent ``<model>@reconciled`` forecasts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.backfill import backfill
from flows.ingest import ingest
from flows.settings import Settings
from schemas.errors import InvalidInput
from schemas.series import CleanSeries, SeriesInfo, empty_long, sort_long
from storage import Store
from storage.synth import PORTAL_FILE_NAMES, write_portal_files
from tasks.core.data.activity import describe_series, history_from_series, resolve_series
from tasks.core.data.derived import derive_parents, derived_names, with_derived
from tasks.core.data.series_cleaning import STATIONS, TOTALS, merge_series, series_catalog
from tasks.core.data.synth import synthesize
from tasks.core.evaluation.report import render_report
from tasks.core.evaluation.scoring import score_forecasts, trailing_windows
from tasks.core.models.catalog import model_family

HIERARCHY = (("rail_entries", "station:*"),)


def long_rows(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["unique_id", "service_date", "day_type", "y"])
    return sort_long(frame.assign(service_date=pd.to_datetime(frame["service_date"])))


STORE = long_rows(
    [
        ("rail", "2019-01-01", "U", 900), ("route:9", "2019-01-01", "U", 50),
        ("station:1", "2019-01-01", "U", 100), ("station:2", "2019-01-01", "U", 200), ("station:3", "2019-01-01", "U", 300),
        ("station:1", "2019-01-02", "W", 110), ("station:3", "2019-01-02", "W", 330),  # station:2 has no row
        ("station:1", "2019-01-03", "W", 120), ("station:2", "2019-01-03", "A", 0), ("station:3", "2019-01-03", "W", 5),
        ("rail", "2019-01-04", "W", 950),  # no station that day
    ]
)  # fmt: skip


def parent_values(clean: pd.DataFrame) -> dict[str, int]:
    rows = clean[clean["unique_id"] == "rail_entries"]
    return dict(zip(rows["service_date"].dt.strftime("%Y-%m-%d"), rows["y"]))


def test_the_parent_is_the_sum_of_the_stations_the_store_holds_each_day():
    parents = derive_parents(STORE, HIERARCHY)
    CleanSeries.validate(parents)
    stations = STORE[STORE["unique_id"].str.startswith("station:")]
    expected = stations.groupby(stations["service_date"].dt.strftime("%Y-%m-%d"))["y"].sum().to_dict()
    assert parent_values(parents) == expected == {"2019-01-01": 600, "2019-01-02": 440, "2019-01-03": 125}
    # the day type most stations carry that day (station:2 says A on Jan 3, two say W)
    assert parents["day_type"].tolist() == ["U", "W", "W"]


def test_a_revised_station_revises_the_parent_in_the_same_merge_and_it_is_recorded():
    store = with_derived(merge_series(empty_long(), STORE), HIERARCHY).clean
    newer = long_rows([("station:2", "2019-01-02", "W", 60), ("station:3", "2019-01-03", "W", 15)])
    merged = with_derived(merge_series(store, newer), HIERARCHY)
    assert (merged.added, merged.revised) == (1, 1)  # the file's own rows
    assert merged.derived_changes == 2 and merged.changed
    assert parent_values(merged.clean) == {"2019-01-01": 600, "2019-01-02": 500, "2019-01-03": 135}
    revisions = merged.revisions[merged.revisions["unique_id"] == "rail_entries"]
    assert revisions[["old_value", "new_value"]].values.tolist() == [["440", "500"], ["125", "135"]]
    again = with_derived(merge_series(merged.clean, newer), HIERARCHY)
    assert not again.changed and again.clean.equals(merged.clean)


def test_an_unchanged_file_still_writes_a_parent_the_store_lacks():
    merged = with_derived(merge_series(STORE, STORE[STORE["unique_id"] == "station:1"]), HIERARCHY)
    assert (merged.added, merged.revised, merged.derived_changes) == (0, 0, 3) and merged.changed
    assert with_derived(merge_series(STORE, STORE), ()).changed is False


def test_the_parent_is_a_normal_series_for_patterns_activity_and_the_catalog():
    clean = with_derived(merge_series(empty_long(), STORE), HIERARCHY).clean
    ids = clean["unique_id"].unique()
    assert resolve_series(["rail*"], ids) == ["rail", "rail_entries"]
    assert resolve_series(["*"], ids)[:3] == ["rail", "rail_entries", "route:9"]
    assert describe_series(resolve_series(["*"], ids)) == "rail, rail_entries, route:* (1), station:* (3)"
    assert "rail_entries" in history_from_series(clean).columns
    catalog = SeriesInfo.validate(series_catalog(clean, derived_names(HIERARCHY, clean), STORE.iloc[0:0].assign(name="")[["unique_id", "name"]]))
    row = catalog.set_index("unique_id").loc["rail_entries"]
    assert (row["kind"], row["name"], row["rows"]) == ("derived", "sum of station:* (3 series)", 3)
    assert model_family("ridge@reconciled") == "reconciled"


def test_hierarchies_and_the_method_are_read_from_settings():
    defaults = Settings.from_env({})
    assert (defaults.hierarchies, defaults.reconciliation) == (HIERARCHY, "mint_shrink_cc")
    custom = Settings.from_env({"RIDERSHIP_HIERARCHIES": " rail_entries = station:4* ", "RIDERSHIP_RECONCILIATION": "bottom_up"})
    assert (custom.hierarchies, custom.reconciliation) == ((("rail_entries", "station:4*"),), "bottom_up")
    assert Settings.from_env({"RIDERSHIP_HIERARCHIES": ""}).hierarchies == ()
    for value, message in (
        ("bus=route:*", "parent 'bus' is not a derived series"), ("rail_entries", "is not parent=pattern"),
        ("rail_entries=station:*,rail_entries=station:4*", "declared twice"),
    ):
        with pytest.raises(InvalidInput, match=message):
            Settings.from_env({"RIDERSHIP_HIERARCHIES": value})
    with pytest.raises(InvalidInput, match="RIDERSHIP_RECONCILIATION='mint'"):
        Settings.from_env({"RIDERSHIP_RECONCILIATION": "mint"})


def test_at_scale_the_parent_keeps_its_own_report_section_out_of_the_aggregate():
    cutoffs = pd.date_range("2019-05-01", "2019-05-31")
    stations = [f"station:{40000 + 10 * k}" for k in range(8)]
    forecasts, actuals = [], []
    for unique_id, level in [("rail_entries", 8_000.0), *((s, 1_000.0) for s in stations)]:
        actuals.append(pd.DataFrame({"unique_id": unique_id, "ds": pd.date_range("2019-05-01", "2019-06-02"), "y": level}))
        for cutoff in cutoffs:
            forecasts.append(pd.DataFrame({
                "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.Timedelta(days=1), "h": 1, "model": "naive",
                "y_hat": level * 1.1, "y_lo_80": np.nan, "y_hi_80": np.nan, "y_lo_95": np.nan, "y_hi_95": np.nan,
                "model_version": "v",
            }, index=[0]))  # fmt: skip
    forecasts, actuals = pd.concat(forecasts, ignore_index=True), pd.concat(actuals, ignore_index=True)
    eval_date = pd.Timestamp("2019-06-01")
    metrics = score_forecasts(forecasts, actuals, eval_date, trailing_windows(eval_date))
    report = render_report(metrics, forecasts, actuals, run_date="2019-06-02", eval_date=eval_date, hierarchies=HIERARCHY)
    assert "## Series rail_entries" in report.markdown
    assert "## All other series (8)" in report.markdown
    assert "## Hierarchy coherence" in report.markdown  # naive's 8 stations sum to 8,000 x 1.1: 0 before


# -- flows: ingest derives the parent; a backfill stores coherent reconciled forecasts ------------


@pytest.fixture
def station_files(tmp_path: Path) -> Path:
    data = synthesize(1, 5, date(2018, 1, 1), date(2019, 6, 30), seed=5)
    folder = tmp_path / "portal"
    write_portal_files(str(folder), {TOTALS: data.totals, STATIONS: data.stations})
    return folder


@pytest.mark.usefixtures("prefect_harness")
def test_a_backfill_stores_coherent_reconciled_forecasts_for_every_model(station_files: Path, storage_root: str, monkeypatch):
    monkeypatch.setenv("RIDERSHIP_STORAGE", storage_root)
    monkeypatch.setenv("RIDERSHIP_WORKERS", "1")
    for kind in (TOTALS, STATIONS):
        ingest(source=str(station_files / PORTAL_FILE_NAMES[kind]), storage=storage_root)
    store = Store.open(storage_root)
    clean = store.ridership.read_series()
    stations = clean[clean["unique_id"].str.startswith("station:")]
    assert parent_values(clean) == stations.groupby(stations["service_date"].dt.strftime("%Y-%m-%d"))["y"].sum().to_dict()

    summary = backfill(start=date(2019, 6, 1), end=date(2019, 6, 10), models=["naive", "ridge"], series=["rail_entries", "station:*"])
    forecasts = store.forecasts.read()
    for model in ("naive", "ridge"):
        reconciled = forecasts[forecasts["model"] == f"{model}@reconciled"]
        base = forecasts[forecasts["model"] == model]
        assert summary.progress.stored[f"{model}@reconciled"] == reconciled["cutoff"].nunique() > 0
        assert set(reconciled["cutoff"]) == set(base.loc[base["unique_id"] == "rail_entries", "cutoff"])
        assert set(reconciled["unique_id"]) == set(base["unique_id"])
        wide = reconciled.pivot_table(index=["cutoff", "h"], columns="unique_id", values="y_hat")
        children = [c for c in wide.columns if c.startswith("station:")]
        gap = (wide["rail_entries"] - wide[children].sum(axis=1, min_count=1)).abs() / wide["rail_entries"]
        assert gap.max() < 1e-6, model
        before = base.pivot_table(index=["cutoff", "h"], columns="unique_id", values="y_hat")
        base_gap = ((before["rail_entries"] - before[children].sum(axis=1)).abs() / before["rail_entries"]).max()
        # the seasonal naive of a sum is the sum of the seasonal naives: coherent as forecast
        assert base_gap > 1e-3 if model == "ridge" else base_gap < 1e-12
    versions = forecasts.loc[forecasts["model"] == "ridge@reconciled", "model_version"]
    assert versions.str.contains(r"^reconciled\[(?:mint_shrink_cc lambda=|wls_struct, mint_shrink_cc had)").all()
    assert versions.str.contains("mint_shrink_cc lambda=").any()  # enough matured errors by the last cutoffs
    metrics = store.metrics.read()
    assert {"naive@reconciled", "ridge@reconciled"} <= set(metrics["model"])
    report = (Path(storage_root) / "reports" / "2019-06-10" / "report.md").read_text()
    section = report.split("## Hierarchy coherence", 1)[1]
    ridge_line = next(line for line in section.splitlines() if line.startswith("| rail_entries | ridge |"))
    before, after = (float(cell) for cell in ridge_line.strip("| ").split(" | ")[3:5])
    assert before > 1e-3 and after < 1e-6
    again = backfill(start=date(2019, 6, 1), end=date(2019, 6, 10), models=["naive"], series=["rail_entries", "station:*"])
    assert again.progress.stored == {"naive": 0, "naive@reconciled": 0}
    assert np.isfinite(forecasts["y_hat"]).all()


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_step_logs_every_cutoff_or_hierarchy_it_does_not_reconcile(storage_root: str, caplog):
    from prefect import flow

    from flows.reconcile import reconcile_cutoffs

    days = pd.date_range("2019-01-01", "2019-03-02")
    children = ["station:1", "station:2", "station:3"]
    long = pd.concat(
        [pd.DataFrame({"unique_id": s, "service_date": days, "day_type": "W", "y": 100 * (k + 1)}) for k, s in enumerate(children)]
    )
    long = with_derived(merge_series(empty_long(), sort_long(long)), HIERARCHY).clean
    store = Store.open_writable(storage_root)
    store.ridership.write_series(long)
    cutoffs = list(pd.to_datetime(["2019-02-27", "2019-02-28"]))
    rows = []
    for cutoff in cutoffs:
        for k, unique_id in enumerate(["rail_entries", *children]):
            if (cutoff, unique_id) == (cutoffs[1], "station:2"):
                continue  # this child has no forecast at the second cutoff
            y = np.full(2, 620.0 if k == 0 else 100.0 * k)
            rows.append(pd.DataFrame({
                "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.to_timedelta([1, 2], unit="D"), "h": [1, 2],
                "model": "naive", "y_hat": y, "y_lo_80": np.nan, "y_hi_80": np.nan, "y_lo_95": np.nan, "y_hi_95": np.nan,
                "model_version": "v", "run_id": "r", "created_at": pd.Timestamp.now(tz="UTC"),
            }))  # fmt: skip
    store.forecasts.write(pd.concat(rows, ignore_index=True))
    history = history_from_series(long)
    settings = Settings(storage=storage_root, reconciliation="wls_struct")
    every = ["rail_entries", *children]

    @flow
    def step(series: list[str]) -> dict[str, int]:
        return reconcile_cutoffs(store, history, settings, ["naive"], series, cutoffs, {s: cutoffs for s in series}, False, "run")

    assert step(every) == {"naive@reconciled": 1}
    stored = store.forecasts.read(models=["naive@reconciled"])
    assert set(stored["cutoff"]) == {cutoffs[0]} and len(stored) == 8
    assert "naive@reconciled at cutoff 2019-02-28 not reconciled: 1 of 3 active children of rail_entries have no forecast (station:2)" in caplog.text
    assert step(["rail_entries", "station:1", "station:3"]) == {}
    assert "rail_entries not reconciled: the run forecasts 2 of its 3 children (station:2…)" in caplog.text
