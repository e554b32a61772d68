"""`ridership synth`: deterministic synthetic files in the portal's three shapes, with the quirks
that tasks/core/data/synth.py documents at the places it lists, and everything else valid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from schemas.errors import InvalidInput
from storage.synth import PORTAL_FILE_NAMES
from tasks.core.features.calendar import day_types
from tasks.core.data.cleaning import read_raw_csv, validate_batch
from tasks.core.data.synth import ROUTES, STATIONS, TOTALS, check_synth_parameters, synthesize

REPO = Path(__file__).resolve().parent.parent
HEADERS = {
    TOTALS: "service_date,day_type,bus,rail_boardings,total_rides",
    ROUTES: "route,date,daytype,rides",
    STATIONS: "station_id,stationname,date,daytype,rides",
}
SERIES_COLUMN = {ROUTES: "route", STATIONS: "station_id"}
BAD_KINDS = {"negative_rides", "non_numeric_rides", "impossible_date", "duplicate_conflicting", "duplicate_exact"}
# 45 routes and 25 stations: the second round of openings and closures (series 21, 22, 41, 42).
ARGS = dict(routes=45, stations=25, start=date(2018, 1, 1), end=date(2020, 12, 31), seed=3)


def cli_args(out: Path, routes=ARGS["routes"], stations=ARGS["stations"], start=ARGS["start"], end=ARGS["end"], seed=ARGS["seed"]):
    return ["synth", "--routes", str(routes), "--stations", str(stations), "--start", str(start), "--end", str(end),
            "--out", str(out), "--seed", str(seed)]  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "files"
    assert main(cli_args(out)) == 0
    return out


@pytest.fixture(scope="module")
def data():
    return synthesize(**ARGS)


@pytest.fixture(scope="module")
def files(written) -> dict[str, pd.DataFrame]:
    """The written files as text cells (``n/a`` stays text)."""
    return {key: pd.read_csv(written / name, dtype=str, keep_default_na=False) for key, name in PORTAL_FILE_NAMES.items()}


def bad_rows(data, file):
    return {e.row: e for e in data.events if e.bad and e.file == file}


def valid_part(data, frame: pd.DataFrame, file: str) -> pd.DataFrame:
    """The file minus its documented bad rows."""
    return frame.drop(index=list(bad_rows(data, file)))


EXTRA_KINDS = {"impossible_date", "duplicate_conflicting", "duplicate_exact"}


def without_extra_rows(data, frame: pd.DataFrame, file: str) -> pd.DataFrame:
    """The file minus the documented extra rows (a corrupted cell still marks its series' day)."""
    return frame.drop(index=[row for row, e in bad_rows(data, file).items() if e.kind in EXTRA_KINDS])


def parse_dates(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")


def test_same_seed_gives_byte_identical_files(written, tmp_path):
    assert main(cli_args(tmp_path)) == 0
    for name in PORTAL_FILE_NAMES.values():
        assert (tmp_path / name).read_bytes() == (written / name).read_bytes(), name


def test_another_seed_gives_other_files(written, tmp_path):
    assert main(cli_args(tmp_path, seed=4)) == 0
    for name in PORTAL_FILE_NAMES.values():
        assert (tmp_path / name).read_bytes() != (written / name).read_bytes(), name


def test_file_names_and_headers_are_the_portals(written):
    assert sorted(p.name for p in written.iterdir()) == sorted(PORTAL_FILE_NAMES.values())
    for key, name in PORTAL_FILE_NAMES.items():
        content = (written / name).read_bytes()
        assert content.split(b"\n", 1)[0].decode() == HEADERS[key]
        assert content.endswith(b"\n") and b"\r" not in content


def test_files_are_the_core_frames(files, data):
    for key in PORTAL_FILE_NAMES:
        pd.testing.assert_frame_equal(files[key], data.frame(key).astype(str), check_dtype=False)


def test_day_types_agree_with_the_service_calendar(files, data):
    for key, date_column, type_column in ((TOTALS, "service_date", "day_type"), (ROUTES, "date", "daytype"), (STATIONS, "date", "daytype")):
        frame = files[key]
        dates = parse_dates(frame[date_column])
        unparsed = frame[dates.isna()]
        expected_unparsed = [e.row for e in data.events if e.file == key and e.kind == "impossible_date"]
        assert list(unparsed.index) == expected_unparsed, key
        known = frame[dates.notna()]
        assert (known[type_column].to_numpy() == day_types(pd.DatetimeIndex(dates.dropna())).astype(str)).all(), key
    # Holidays with Sunday service are U on any weekday: Thanksgiving, Christmas 2019 (a Wednesday).
    totals = files[TOTALS].set_index("service_date")["day_type"]
    assert totals["11/28/2019"] == "U" and totals["12/25/2019"] == "U" and totals["07/03/2020"] == "U"


def test_the_documented_bad_rows_are_at_their_rows(files, data):
    for file in (ROUTES, STATIONS):
        frame, listed = files[file], bad_rows(data, file)
        assert sorted(e.kind for e in listed.values()) == sorted(BAD_KINDS), file
        for row, event in listed.items():
            line = frame.iloc[row]
            assert line[SERIES_COLUMN[file]] == event.series
            if event.kind == "impossible_date":
                assert line["date"] == event.cell and re.fullmatch(r"02/30/\d{4}", event.cell)
                assert line["rides"] == str(event.true_rides)
                assert frame.iloc[row - 1][SERIES_COLUMN[file]] == event.series  # right after the trunk's row
                continue
            assert line["date"] == event.date.strftime("%m/%d/%Y") and line["rides"] == event.cell
            if event.kind == "negative_rides":
                assert int(event.cell) < 0 and int(event.cell) == -event.true_rides
            elif event.kind == "non_numeric_rides":
                assert event.cell == "n/a"
            else:  # the duplicate follows the original row of the same series and date
                original = frame.iloc[row - 1]
                assert (original[SERIES_COLUMN[file]], original["date"]) == (line[SERIES_COLUMN[file]], line["date"])
                assert original["rides"] == str(event.true_rides)
                if event.kind == "duplicate_exact":
                    assert original.equals(line)
                else:
                    assert int(line["rides"]) != event.true_rides
    assert data.bad_rows(TOTALS) == []


def test_every_other_row_is_valid(files, data):
    start, end = pd.Timestamp(data.start), pd.Timestamp(data.end)
    for file in (ROUTES, STATIONS):
        valid = valid_part(data, files[file], file)
        assert valid["rides"].str.fullmatch(r"\d+").all(), file
        dates = parse_dates(valid["date"])
        assert dates.notna().all() and dates.between(start, end).all(), file
        key = [SERIES_COLUMN[file], "date"]
        assert not valid.duplicated(key).any(), file
        # Date-major order, series order within a date.
        assert dates.is_monotonic_increasing, file
    assert files[STATIONS]["station_id"].str.fullmatch(r"4\d{3}0").all()
    assert files[ROUTES]["route"].str.fullmatch(r"[XNJ]?\d{1,3}A?").all()
    totals = files[TOTALS]
    assert len(totals) == (data.end - data.start).days + 1
    for column in ("bus", "rail_boardings", "total_rides"):
        assert totals[column].str.fullmatch(r"\d+").all()
    assert parse_dates(totals["service_date"]).diff().dropna().eq(pd.Timedelta(days=1)).all()


def series_dates(files, data, file) -> dict[str, pd.Series]:
    valid = without_extra_rows(data, files[file], file)
    valid = valid.assign(day=parse_dates(valid["date"]))
    return {series: rows["day"] for series, rows in valid.groupby(SERIES_COLUMN[file])}


def test_openings_closures_and_the_suspension_are_respected(files, data):
    all_days = pd.date_range(data.start, data.end, freq="D")
    for file in (ROUTES, STATIONS):
        dates = series_dates(files, data, file)
        events = [e for e in data.events if e.file == file]
        openings = [e for e in events if e.kind == "opening"]
        closures = [e for e in events if e.kind == "closure"]
        assert len(openings) == (3 if file == ROUTES else 2), file  # series 1, 21, 41 / 1, 21
        assert len(closures) == (3 if file == ROUTES else 2), file
        for event in openings:
            days = dates[event.series]
            assert days.min() == pd.Timestamp(event.date) > all_days[0] and days.max() == all_days[-1]
            assert days.nunique() == (all_days[-1] - pd.Timestamp(event.date)).days + 1  # no gap after opening
        for event in closures:
            days = dates[event.series]
            assert days.max() == pd.Timestamp(event.date) < all_days[-1] and days.min() == all_days[0]
            assert days.nunique() == (pd.Timestamp(event.date) - all_days[0]).days + 1
        (suspension,) = [e for e in events if e.kind == "suspension"]
        first, last = (pd.Timestamp(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", suspension.detail))
        gap = pd.date_range(first, last, freq="D")
        assert 7 <= len(gap) <= 42 and pd.Timestamp(suspension.date) == first
        days = set(dates[suspension.series])
        assert not days & set(gap)
        assert first - pd.Timedelta(days=1) in days and last + pd.Timedelta(days=1) in days
        assert len(days) == len(all_days) - len(gap)
        changed = {e.series for e in events if e.kind in ("opening", "closure", "suspension", "renumbered")}
        for series, days in dates.items():  # every other series is there every day
            if series not in changed and not series.endswith("A"):
                assert days.nunique() == len(all_days), (file, series)


def test_renumbered_route_and_renamed_station(files, data):
    (renumbered,) = [e for e in data.events if e.kind == "renumbered"]
    routes = valid_part(data, files[ROUTES], ROUTES).assign(day=lambda f: parse_dates(f["date"]))
    old, new = routes[routes["route"] == renumbered.series], routes[routes["route"] == renumbered.cell]
    assert renumbered.cell == renumbered.series + "A"
    assert old["day"].max() == pd.Timestamp(renumbered.date) - pd.Timedelta(days=1)
    assert new["day"].min() == pd.Timestamp(renumbered.date) and new["day"].max() == pd.Timestamp(data.end)

    (renamed,) = [e for e in data.events if e.kind == "renamed"]
    stations = valid_part(data, files[STATIONS], STATIONS).assign(day=lambda f: parse_dates(f["date"]))
    station = stations[stations["station_id"] == renamed.series]
    after = station["day"] >= pd.Timestamp(renamed.date)
    assert set(station.loc[after, "stationname"]) == {renamed.cell}
    (before_name,) = set(station.loc[~after, "stationname"])
    assert renamed.cell == before_name + "-Transit Center"
    assert station["day"].nunique() == len(pd.date_range(data.start, data.end))
    # Every other station keeps one name, and names are unique.
    names = stations.groupby("station_id")["stationname"].nunique()
    assert (names.drop(renamed.series) == 1).all()
    assert stations.drop_duplicates("station_id")["stationname"].is_unique


def test_zero_days_are_rows_with_zero(files, data):
    for file in (ROUTES, STATIONS):
        zeros = [e for e in data.events if e.file == file and e.kind == "zero_rides"]
        assert len(zeros) == 3
        for event in zeros:
            line = files[file].iloc[event.row]
            assert (line[SERIES_COLUMN[file]], line["date"], line["rides"]) == (event.series, event.date.strftime("%m/%d/%Y"), "0")
        valid = valid_part(data, files[file], file)
        assert set(valid.index[valid["rides"] == "0"]) == {e.row for e in zeros}, file


def test_totals_are_the_sums_of_the_series(files, data):
    totals = files[TOTALS].assign(day=lambda f: parse_dates(f["service_date"])).set_index("day")
    for file, column in ((ROUTES, "bus"), (STATIONS, "rail_boardings")):
        frame = files[file].copy()
        listed = bad_rows(data, file)
        extra = [row for row, e in listed.items() if e.kind in EXTRA_KINDS]
        for row, event in listed.items():  # the totals count the true value of a corrupted row
            if row not in extra:
                frame.loc[row, "rides"] = str(event.true_rides)
        frame = frame.drop(index=extra)
        sums = frame.assign(day=parse_dates(frame["date"]), rides=frame["rides"].astype("int64")).groupby("day")["rides"].sum()
        assert (sums.reindex(totals.index).to_numpy() == totals[column].astype("int64").to_numpy()).all(), file
    assert (totals["bus"].astype("int64") + totals["rail_boardings"].astype("int64") == totals["total_rides"].astype("int64")).all()


def test_weekly_seasonality_is_visible_in_every_series(files, data):
    for file in (ROUTES, STATIONS):
        valid = valid_part(data, files[file], file)
        valid = valid.assign(rides=valid["rides"].astype("int64"))
        means = valid.groupby([SERIES_COLUMN[file], "daytype"])["rides"].mean().unstack()
        assert len(means) == valid[SERIES_COLUMN[file]].nunique()
        assert (means["W"] > means["A"]).all() and (means["A"] > means["U"]).all(), file


def test_yearly_seasonality_trend_and_holidays_show_in_the_totals(files):
    totals = files[TOTALS].assign(day=lambda f: parse_dates(f["service_date"]), total=lambda f: f["total_rides"].astype("int64"))
    weekdays = totals[totals["day_type"] == "W"].set_index("day")["total"]
    monthly = weekdays.groupby(weekdays.index.month).mean()
    assert monthly.max() / monthly.min() > 1.05  # a yearly cycle, not a flat line
    thanksgiving_friday = weekdays[pd.Timestamp("2019-11-29")]
    assert thanksgiving_friday < 0.75 * weekdays["2019-11-04":"2019-11-22"].mean()
    thanksgiving = totals.set_index("day")["total"][pd.Timestamp("2019-11-28")]
    assert thanksgiving < 0.7 * weekdays["2019-11-04":"2019-11-22"].mean()


def test_totals_file_passes_ingest_untouched(written, data):
    name = PORTAL_FILE_NAMES[TOTALS]
    batch = validate_batch(read_raw_csv((written / name).read_bytes(), name), as_of=pd.Timestamp("2030-01-01"))
    assert batch.rows_read == len(data.totals) and len(batch.valid) == len(data.totals)
    assert len(batch.quarantined) == 0 and len(batch.calendar_mismatches) == 0 and batch.duplicates_dropped == 0


def test_the_smallest_set_is_valid():
    tiny = synthesize(1, 1, date(2021, 2, 1), date(2021, 2, 28), seed=0)
    assert {e.kind for e in tiny.events if e.kind != "level_shift"} == BAD_KINDS
    for file in (ROUTES, STATIONS):
        assert len(tiny.frame(file)) == 28 + 3  # every day once, plus the three extra rows
        rows = sorted(e.row for e in tiny.bad_rows(file))
        assert len(set(rows)) == 5
    assert len(tiny.totals) == 28


@pytest.mark.parametrize(
    "arguments, words",
    [
        (dict(routes=0), "--routes 0: give 1..2000"),
        (dict(stations=1000), "--stations 1000: give 1..999"),
        (dict(start=date(2020, 3, 1), end=date(2020, 2, 1)), "end 2020-02-01 is before start 2020-03-01"),
        (dict(start=date(2020, 3, 1), end=date(2020, 3, 27)), "is 27 day(s): give at least 28"),
        (dict(routes=2000, stations=999, start=date(2001, 1, 1), end=date(2021, 12, 31)), "rows: shorten the range"),
        (dict(seed=-1), "--seed -1: give a non-negative integer"),
    ],
)
def test_invalid_arguments_are_one_line(arguments, words, tmp_path, capsys):
    values = {**ARGS, **arguments}
    with pytest.raises(InvalidInput, match=re.escape(words)):
        check_synth_parameters(**values)
    assert main(cli_args(tmp_path / "out", **values)) == InvalidInput.exit_code
    error = capsys.readouterr().err
    assert error.startswith("ridership synth: rejected: ") and words in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_invalid_arguments_from_the_command_line_have_no_traceback(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "flows.cli", *cli_args(tmp_path / "out", routes=-3)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == "ridership synth: rejected: --routes -3: give 1..2000"


def test_an_unwritable_out_folder_is_exit_3(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    assert main(cli_args(tmp_path / "a-file" / "out")) == 3
    error = capsys.readouterr().err
    assert error.startswith("ridership synth: unavailable: ") and "is not writable" in error and error.count("\n") == 1


def test_a_full_size_set_generates_in_seconds(tmp_path, capsys):
    """130 routes and 145 stations over 2015..2021, written; the time is printed, not asserted."""
    began = time.perf_counter()
    code = main(cli_args(tmp_path, routes=130, stations=145, start=date(2015, 1, 1), end=date(2021, 12, 31), seed=0))
    seconds = time.perf_counter() - began
    printed = capsys.readouterr().out
    assert code == 0 and len(printed.strip().splitlines()) == 3
    sizes = {name: (tmp_path / name).stat().st_size for name in PORTAL_FILE_NAMES.values()}
    with capsys.disabled():
        print(f"\nsynth 130 routes + 145 stations, 2015-01-01..2021-12-31: {seconds:.2f} s")
        print(printed, end="")
    assert all(size > 0 for size in sizes.values())
    assert "2,557 rows" in printed and "131 route ids" in printed and "145 station ids" in printed


def test_series_do_not_depend_on_the_other_file():
    """Routes and stations draw from their own streams: more stations leave the routes alone."""
    small = synthesize(10, 5, date(2019, 1, 1), date(2019, 3, 31), seed=9)
    more = synthesize(10, 8, date(2019, 1, 1), date(2019, 3, 31), seed=9)
    pd.testing.assert_frame_equal(small.routes, more.routes)
    assert not np.array_equal(small.totals["rail_boardings"], more.totals["rail_boardings"])
