"""The weather adapters read the services' answers exactly (units included), refuse a malformed
answer in one line, merge observed days with the newer value winning, and the store returns the
forecast vintages as of a date; the bundled history is the file data/README.md describes."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from schemas.weather import OBSERVED_COLUMNS, VINTAGE_COLUMNS, WeatherDataError
from storage import Store
from storage.weather_sources import forecast_request, observed_request
from tasks.core.data.weather import (
    merge_observed, observed_window, parse_ncei_csv, parse_open_meteo, read_observed_csv,
)  # fmt: skip
from tests.test_offline_first_run import readme_sha

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "weather"
NCEI_ANSWER = (FIXTURES / "ncei_daily_USW00094846_2024-11-17_2024-11-30.csv").read_bytes()
OPEN_METEO_ANSWER = (FIXTURES / "open_meteo_forecast_2024-12-01.json").read_bytes()
ISSUED = pd.Timestamp("2024-12-01")
BUNDLED = REPO / "data" / "ohare_weather_daily_1995-2024.csv.gz"
SHARED = REPO.parent / "shared" / "data"
NAN = math.nan


def observed(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=OBSERVED_COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame.astype({c: "float64" for c in OBSERVED_COLUMNS[1:]})


def test_ncei_answer_is_read_exactly_in_standard_units():
    days = parse_ncei_csv(NCEI_ANSWER, "ncei", station="USW00094846")
    assert list(days.columns) == OBSERVED_COLUMNS and len(days) == 14
    first_last = pd.concat([days.head(1), days.iloc[[4]], days.tail(1)], ignore_index=True)
    # °F, inches and mph as answered; the last day's empty wind and snow depth stay NaN
    expected = observed([
        ("2024-11-17", 59, 46, 0.03, 0.0, 0.0, 7.38),
        ("2024-11-21", 39, 30, 0.28, 2.9, 0.0, 14.32),
        ("2024-11-30", 25, 14, 0.00, 0.0, NAN, NAN),
    ])  # fmt: skip
    pd.testing.assert_frame_equal(first_last, expected)


def test_requests_name_the_station_dates_and_units():
    url = observed_request("http://127.0.0.1:1/ncei", pd.Timestamp("2024-11-17"), pd.Timestamp("2024-11-30"))
    assert url == (
        "http://127.0.0.1:1/ncei?dataset=daily-summaries&stations=USW00094846&startDate=2024-11-17&endDate=2024-11-30"
        "&dataTypes=TMAX,TMIN,PRCP,SNOW,SNWD,AWND&units=standard&format=csv"
    )
    assert forecast_request("https://api.open-meteo.com/v1/forecast") == (
        "https://api.open-meteo.com/v1/forecast?latitude=41.9786&longitude=-87.9048"
        "&daily=temperature_2m_max,temperature_2m_min,precipitation_sum,snowfall_sum&temperature_unit=fahrenheit"
        "&precipitation_unit=inch&forecast_days=16&timezone=America/Chicago"
    )
    assert forecast_request("https://customer-api.open-meteo.com/v1/forecast?apikey=K").startswith(
        "https://customer-api.open-meteo.com/v1/forecast?apikey=K&latitude="
    )


def test_open_meteo_answer_is_read_exactly():
    vintage = parse_open_meteo(OPEN_METEO_ANSWER, "open-meteo", ISSUED)
    assert list(vintage.columns) == VINTAGE_COLUMNS and len(vintage) == 16
    assert (vintage["issued"] == ISSUED).all() and list(vintage["lead"]) == list(range(16))
    assert vintage["ds"].iloc[-1] == pd.Timestamp("2024-12-16")
    assert vintage.iloc[3][["tmax_f", "tmin_f", "prcp_in", "snow_in"]].tolist() == [37.5, 17.9, 0.031, 0.276]
    assert math.isnan(vintage["snow_in"].iloc[-1]) and vintage["prcp_in"].iloc[-1] == 0.043


def test_open_meteo_units_are_read_from_the_answer():
    """Snowfall came in cm whatever precipitation_unit said until 2023 (open-meteo#136); a
    Celsius or millimetre answer is converted too, never taken for °F or inches."""
    answer = json.loads(OPEN_METEO_ANSWER)
    answer["daily_units"].update(temperature_2m_max="°C", precipitation_sum="mm", snowfall_sum="cm")
    answer["daily"].update(temperature_2m_max=[7.5] * 16, precipitation_sum=[25.4] * 16, snowfall_sum=[0.7] * 16)
    vintage = parse_open_meteo(json.dumps(answer).encode(), "open-meteo", ISSUED)
    assert vintage["tmax_f"].iloc[0] == 45.5  # 7.5 °C
    assert vintage["prcp_in"].iloc[0] == 1.0  # 25.4 mm
    assert vintage["snow_in"].iloc[0] == 0.276  # 0.7 cm = 0.2756 in
    assert vintage["tmin_f"].iloc[0] == 15.3  # still °F


BAD_NCEI = NCEI_ANSWER.replace(b'"2024-11-20","13.20"," 0.00","  0.0","  0.0","   48"', b'"2024-11-20","13.20"," 0.00","  0.0","  0.0","  480"')
MALFORMED = [
    (parse_ncei_csv, b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "ncei: not an NCEI daily-summaries CSV"),
    (parse_ncei_csv, BAD_NCEI, "ncei: line 5: tmax_f: less_than_or_equal_to(130.0) (got 480.0)"),
    (parse_ncei_csv, NCEI_ANSWER.replace(b'" 0.42"', b'"    T"'), "ncei: line 3: PRCP: not a number (got 'T')"),
    (parse_ncei_csv, NCEI_ANSWER.replace(b'"USW00094846","2024-11-19"', b'"USW00014819","2024-11-19"'), "ncei: line 4: STATION is not USW00094846"),
    (parse_open_meteo, b'{"error":true,"reason":"Parameter \'forecast_days\' is out of allowed range from 0 to 16"}',
     "open-meteo: the service refused the request: Parameter 'forecast_days' is out of allowed range"),
    (parse_open_meteo, OPEN_METEO_ANSWER[:300], "open-meteo: not JSON"),
    (parse_open_meteo, OPEN_METEO_ANSWER.replace('"snowfall_sum":"inch"'.encode(), b'"snowfall_sum":"ft"'), "unit 'ft' not understood"),
    (parse_open_meteo, OPEN_METEO_ANSWER.replace(b"[27.9,", b"[12.1,"), "open-meteo: daily[0]: tmin_f_at_most_tmax_f"),
]


@pytest.mark.parametrize("parse, data, words", MALFORMED, ids=[m[2][:40] for m in MALFORMED])
def test_a_malformed_answer_is_one_line_naming_source_row_and_rule(parse, data, words):
    with pytest.raises(WeatherDataError) as raised:
        parse(data, "ncei", station="USW00094846") if parse is parse_ncei_csv else parse(data, "open-meteo", ISSUED)
    message = str(raised.value)
    assert words in message and "\n" not in message


def test_a_forecast_fetched_on_another_day_is_not_that_days_vintage():
    with pytest.raises(WeatherDataError, match="starts on 2024-12-01, not on the issue date 2024-12-02"):
        parse_open_meteo(OPEN_METEO_ANSWER, "open-meteo", pd.Timestamp("2024-12-02"))


def test_the_newer_value_wins_where_it_has_one():
    stored = observed([("2024-11-29", 28, 18, 0.0, 0.0, 1.0, 13.2), ("2024-11-30", 25, 14, 0.0, 0.0, 2.0, 11.0)])
    newer = observed([("2024-11-30", 26, 14, NAN, 0.0, NAN, NAN), ("2024-12-01", 27, 14, 0.0, 0.0, NAN, 8.28)])
    merged = merge_observed(stored, newer)
    expected = observed([
        ("2024-11-29", 28, 18, 0.0, 0.0, 1.0, 13.2),
        ("2024-11-30", 26, 14, 0.0, 0.0, 2.0, 11.0),  # tmax revised; the NaNs erase nothing
        ("2024-12-01", 27, 14, 0.0, 0.0, NAN, 8.28),
    ])  # fmt: skip
    pd.testing.assert_frame_equal(merged.observed, expected)
    assert (merged.added, merged.revised) == (1, 1)


def test_the_window_reaches_back_to_the_first_day_not_stored():
    end = pd.Timestamp("2024-12-31")
    assert observed_window(None, end, 30) == (pd.Timestamp("2024-12-02"), end)
    assert observed_window(pd.Timestamp("2024-12-30"), end, 30) == (pd.Timestamp("2024-12-02"), end)
    assert observed_window(pd.Timestamp("2024-10-01"), end, 30) == (pd.Timestamp("2024-10-02"), end)


def test_vintages_are_stored_by_issue_date_and_read_as_of_a_date(storage_root: str):
    weather = Store.open(storage_root).weather
    first = parse_open_meteo(OPEN_METEO_ANSWER, "open-meteo", ISSUED)
    for shift in (0, 1, 2):  # the same forecast issued on three days, moved along
        days = pd.Timedelta(days=shift)
        weather.write_vintage(first.assign(issued=ISSUED + days, ds=first["ds"] + days, tmax_f=first["tmax_f"] + shift))
    root = Path(storage_root) / "weather" / "forecast"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == [
        f"issued=2024-12-0{d}/part.parquet" for d in (1, 2, 3)
    ]
    assert weather.vintage_dates() == [pd.Timestamp(f"2024-12-0{d}") for d in (1, 2, 3)]
    as_of = weather.read_vintages(issued_until="2024-12-02")
    assert sorted(as_of["issued"].unique()) == [pd.Timestamp("2024-12-01"), pd.Timestamp("2024-12-02")]
    assert (as_of["issued"] <= pd.Timestamp("2024-12-02")).all() and len(as_of) == 32
    pd.testing.assert_frame_equal(as_of[as_of["issued"] == ISSUED].reset_index(drop=True), first)
    assert set(weather.read_vintages(issued_from="2024-12-02")["issued"]) == {pd.Timestamp("2024-12-02"), pd.Timestamp("2024-12-03")}
    assert weather.read_vintages(issued_until="2024-11-30").empty
    assert list(weather.read_vintages(issued_until="2024-11-30").columns) == VINTAGE_COLUMNS

    weather.write_vintage(first.assign(tmax_f=first["tmax_f"] + 10))  # the same issue date again: replaced
    assert weather.read_vintages(issued_until=ISSUED)["tmax_f"].tolist() == (first["tmax_f"] + 10).tolist()
    with pytest.raises(WeatherDataError, match="one issue date per vintage"):
        weather.write_vintage(pd.concat([first, first.assign(issued=ISSUED + pd.Timedelta(days=5), ds=first["ds"] + pd.Timedelta(days=5))]))


def test_observed_days_round_trip_and_read_up_to_a_date(storage_root: str):
    weather = Store.open(storage_root).weather
    assert not weather.has_observed() and weather.read_observed().empty
    days = parse_ncei_csv(NCEI_ANSWER, "ncei")
    weather.write_observed(days)
    pd.testing.assert_frame_equal(weather.read_observed(), days)
    assert weather.read_observed(end="2024-11-20")["date"].max() == pd.Timestamp("2024-11-20")


def test_bundled_history_is_the_file_its_readme_describes():
    packed = BUNDLED.read_bytes()
    assert len(packed) <= 2**20
    assert hashlib.sha256(packed).hexdigest() == readme_sha("| weather, as bundled (gzip)")
    data = gzip.decompress(packed)
    assert hashlib.sha256(data).hexdigest() == readme_sha("| weather, uncompressed")
    history = read_observed_csv(data, BUNDLED.name)
    assert history["date"].tolist() == list(pd.date_range("1995-01-01", "2024-12-31"))
    assert history.isna().sum().to_dict() == {"date": 0, "tmax_f": 0, "tmin_f": 0, "prcp_in": 1, "snow_in": 186, "snwd_in": 376, "awnd_mph": 7}
    # a day of the GHCN file as NCEI gave it, and one of the converted metric copy (2024-12-31)
    assert history.iloc[0, 1:].tolist() == [27.0, 11.0, 0.02, 0.2, 1.0, 16.11]
    assert history.iloc[-1, 1:].tolist() == [42.0, 34.0, 0.57, 0.0, 0.0, 15.21]


@pytest.mark.realdata
def test_bundled_history_rebuilds_from_the_shared_copies():
    sources = {name: SHARED / name for name in ("ohare_ghcn_daily_1995-2019.csv", "ohare_daily_weather_2018-2024.csv")}
    if not all(path.is_file() for path in sources.values()):
        pytest.skip(f"the shared O'Hare copies are not in {SHARED}")
    for name, path in sources.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == readme_sha(f"| source `../shared/data/{name}`")
    spec = importlib.util.spec_from_file_location("build_ohare_weather", REPO / "data" / "build_ohare_weather.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    data, report = builder.build(SHARED)
    assert data == gzip.decompress(BUNDLED.read_bytes())
    # the agreement data/README.md states
    assert "483 days in both copies" in report
    assert "snwd_in: 483 days with both values, differ on ['2019-04-15']" in report
    assert "awnd_mph: 481 days with both values, differ on none, only the newer copy has ['2019-04-27', '2019-04-28']" in report
    for column in ("tmax_f", "tmin_f", "prcp_in", "snow_in"):
        assert f"{column}: 483 days with both values, differ on none, only the newer copy has none" in report
    assert len(data) == 385_958
