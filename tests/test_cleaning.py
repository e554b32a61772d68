"""Each ingest rule, on a small file made in the test."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.core.data.cleaning import (
    RULE_CONFLICTING_DUPLICATE,
    RawFileError,
    empty_clean,
    merge_into_clean,
    read_raw_csv,
    validate_batch,
)

HEADER = "service_date,day_type,bus,rail_boardings,total_rides"
GOOD_ROWS = [
    "01/07/2019,W,700000,500000,1200000",  # Monday
    "01/05/2019,A,400000,300000,700000",  # Saturday
    "01/06/2019,U,300000,200000,500000",  # Sunday
]


def csv_bytes(*rows: str, header: str = HEADER, newline: str = "\n", bom: bool = False) -> bytes:
    text = newline.join([header, *rows]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def validated(data: bytes):
    return validate_batch(read_raw_csv(data, "test.csv"))


def quarantined_rules(data: bytes) -> dict[int, str]:
    batch = validated(data)
    return dict(zip(batch.quarantined["source_line"], batch.quarantined["rules"]))


def test_good_file_becomes_clean_rows_sorted_by_date():
    batch = validated(csv_bytes(*GOOD_ROWS))
    assert batch.quarantined.empty
    assert list(batch.valid["service_date"].dt.strftime("%Y-%m-%d")) == ["2019-01-05", "2019-01-06", "2019-01-07"]
    assert list(batch.valid["rail"]) == [300000, 200000, 500000]
    assert list(batch.valid.columns) == ["service_date", "day_type", "bus", "rail"]


def test_bom_crlf_iso_dates_and_any_column_order_are_read():
    header = "total_rides,rail_boardings,bus,day_type,service_date"
    rows = ["1200000,500000,700000,W,2019-01-07", "700000,300000,400000,A,01/05/2019"]
    batch = validated(csv_bytes(*rows, header=header, newline="\r\n", bom=True))
    assert batch.quarantined.empty
    assert list(batch.valid["bus"]) == [400000, 700000]


def test_extra_columns_are_ignored_with_a_warning():
    read = read_raw_csv(csv_bytes(*(r + ",x" for r in GOOD_ROWS), header=HEADER + ",comment"), "t.csv")
    assert read.warnings == ["t.csv: ignoring extra columns comment"]
    assert "comment" not in validate_batch(read).valid.columns


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (HEADER.encode() + b"\n", "no data rows"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"service_date,bus\n01/01/2019,5\n", "missing columns day_type, rail_boardings, total_rides"),
        (b'service_date,day_type,bus,rail_boardings,total_rides\n"01/01/2019,U,1,2,3\n', "unreadable CSV"),
    ],
)
def test_whole_file_rejections_name_the_file_and_problem(data: bytes, problem: str):
    with pytest.raises(RawFileError) as raised:
        read_raw_csv(data, "snapshot.csv")
    assert str(raised.value).startswith("snapshot.csv: ")
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    "row, expected_rule",
    [
        ("13/45/2019,W,1,2,3", "service_date:unparseable_date('13/45/2019')"),
        (",W,1,2,3", "service_date:missing"),
        ("01/08/2019,X,1,2,3", "day_type:isin"),
        ("01/08/2019,W,-5,2,-3", "bus:greater_than_or_equal_to(0)"),
        ("01/08/2019,W,abc,2,3", "bus:not_a_number('abc')"),
        ("01/08/2019,W,1.5,2,3.5", "bus:whole_number"),
        ("01/08/2019,W,1,,3", "rail_boardings:missing"),
        ("01/08/2019,W,9000000,2,9000002", "bus:less_than_or_equal_to(4000000)"),
        ("01/08/2019,W,1,2,4", "total_rides_equals_bus_plus_rail"),
        ("12/31/1899,W,1,2,3", "service_date:greater_than_or_equal_to"),
    ],
)
def test_each_row_rule_quarantines_the_row_with_its_rule(row: str, expected_rule: str):
    batch = validated(csv_bytes(*GOOD_ROWS, row))
    assert len(batch.valid) == 3
    assert list(batch.quarantined["source_line"]) == [5]
    assert expected_rule in batch.quarantined["rules"].iloc[0]
    assert batch.quarantined["service_date"].iloc[0] == row.split(",")[0]


def test_one_pass_reports_every_failing_row_and_every_rule():
    rules = quarantined_rules(csv_bytes("01/08/2019,X,-1,2,1", *GOOD_ROWS, "01/09/2019,W,1,2,99"))
    assert set(rules) == {2, 6}
    assert "day_type:isin" in rules[2] and "bus:greater_than_or_equal_to(0)" in rules[2]
    assert rules[6] == "total_rides_equals_bus_plus_rail"


def test_exact_duplicates_are_dropped_and_counted():
    batch = validated(csv_bytes(*GOOD_ROWS, GOOD_ROWS[0], GOOD_ROWS[0]))
    assert batch.duplicates_dropped == 2
    assert batch.quarantined.empty and len(batch.valid) == 3


def test_conflicting_duplicates_quarantine_every_copy():
    conflicting = "01/07/2019,W,700001,500000,1200001"
    batch = validated(csv_bytes(*GOOD_ROWS, conflicting, GOOD_ROWS[0]))
    assert sorted(batch.quarantined["source_line"]) == [2, 5, 6]
    assert set(batch.quarantined["rules"]) == {RULE_CONFLICTING_DUPLICATE}
    assert "2019-01-07" not in set(batch.valid["service_date"].dt.strftime("%Y-%m-%d"))
    assert batch.duplicates_dropped == 0


def test_calendar_mismatch_is_kept_and_reported():
    batch = validated(csv_bytes("12/25/2019,W,1,2,3", *GOOD_ROWS))  # Christmas runs a Sunday service
    assert len(batch.valid) == 4 and batch.quarantined.empty
    assert batch.calendar_mismatches.to_dict("records") == [
        {"service_date": pd.Timestamp("2019-12-25"), "day_type": "W", "calendar_day_type": "U"}
    ]


def test_merge_adds_revises_and_never_deletes():
    first = validated(csv_bytes(*GOOD_ROWS)).valid
    merged = merge_into_clean(empty_clean(), first)
    assert (merged.added, merged.revised) == (3, 0)
    revised_monday = "01/07/2019,W,700100,500000,1200100"
    newer = validated(csv_bytes(revised_monday, "01/08/2019,W,1,2,3")).valid
    second = merge_into_clean(merged.clean, newer)
    assert (second.added, second.revised) == (1, 1)
    assert len(second.clean) == 4  # 01-05 and 01-06 were absent from the newer file and kept
    assert second.revisions.to_dict("records") == [
        {"service_date": pd.Timestamp("2019-01-07"), "column": "bus", "old_value": "700000", "new_value": "700100"}
    ]
    again = merge_into_clean(second.clean, newer)
    assert (again.added, again.revised, again.changed) == (0, 0, False)
