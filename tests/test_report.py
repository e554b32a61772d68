"""Report rendering and Prefect artifact payloads."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.core.evaluation.artifacts import artifact_key, leaderboard_artifact_rows, to_json_records
from tasks.core.evaluation.report import ALERT_MARK, render_report
from tasks.core.evaluation.alerts import coverage_alerts
from tasks.core.evaluation.scoring import leaderboard, score_forecasts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVAL = pd.Timestamp("2024-04-30")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Five weeks of two series, three models and 3 horizons; 'sarima' carries wide intervals
    (they hold the actuals), 'mulvar_rnn' narrow ones around its noisy forecasts (they do not)."""
    dates = pd.date_range("2024-03-20", EVAL)
    rng = np.random.default_rng(3)
    clean = pd.DataFrame(
        {
            "service_date": dates,
            "day_type": "W",
            "bus": rng.integers(500_000, 700_000, len(dates)).astype("int64"),
            "rail": rng.integers(200_000, 400_000, len(dates)).astype("int64"),
        }
    )
    rows = []
    for cutoff in dates[:-1]:
        for unique_id in ("bus", "rail"):
            level = float(clean[unique_id].mean())
            for h in (1, 2, 3):
                for model, spread in (("naive", 0.10), ("sarima", 0.05), ("mulvar_rnn", 0.40)):
                    y_hat = level * (1 + rng.normal(0, spread))
                    band = {"sarima": 0.3, "mulvar_rnn": 0.1}.get(model, np.nan)
                    rows.append(
                        {
                            "unique_id": unique_id, "cutoff": cutoff, "ds": cutoff + pd.Timedelta(days=h), "h": h,
                            "model": model, "y_hat": y_hat,
                            "y_lo_80": y_hat * (1 - band), "y_hi_80": y_hat * (1 + band),
                            "y_lo_95": y_hat * (1 - 1.5 * band), "y_hi_95": y_hat * (1 + 1.5 * band),
                            "model_version": "v1", "run_id": "r1", "created_at": pd.Timestamp("2024-05-01", tz="UTC"),
                        }
                    )  # fmt: skip
    forecasts = pd.DataFrame(rows)
    forecasts = forecasts[forecasts["ds"] <= EVAL].reset_index(drop=True)
    metrics = score_forecasts(forecasts, clean, EVAL)
    return metrics, forecasts, clean


@pytest.fixture(scope="module")
def report(inputs):
    metrics, forecasts, clean = inputs
    alerts = coverage_alerts(forecasts, clean, EVAL)
    return render_report(
        metrics, forecasts, clean, run_date="2024-05-01", eval_date=EVAL, alerts=alerts,
        data_note="actuals run 1 day behind the run date",
    )  # fmt: skip


def test_markdown_links_exactly_the_images_returned(report):
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.markdown)
    assert sorted(linked) == sorted(report.images) and len(linked) == 7
    assert {
        "forecasts_bus.png", "forecasts_rail.png", "mae_by_horizon_bus.png", "mae_by_horizon_rail.png",
        "fan_bus.png", "fan_rail.png", "calibration.png",  # sarima's bands (tests/test_report_uncertainty.py)
    } == set(report.images)  # fmt: skip


def test_images_are_valid_non_empty_pngs(report):
    for name, data in report.images.items():
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 1000 and data.rstrip().endswith(b"IEND\xaeB`\x82")


def test_html_is_self_contained_and_embeds_every_image(report):
    sources = re.findall(r'<img src="([^"]+)"', report.html)
    assert len(sources) == len(report.images)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in sources}
    assert embedded == set(report.images.values())
    assert not re.search(r'(src|href)="(?!data:)', report.html)


def test_alerts_data_note_and_reference_are_visible(report, inputs):
    _, forecasts, clean = inputs
    alerted = coverage_alerts(forecasts, clean, EVAL)
    # The noisy model's narrow band misses; sarima's wide one holds; naive has none to judge.
    assert {(a.unique_id, a.model) for a in alerted} == {("bus", "mulvar_rnn"), ("rail", "mulvar_rnn")}
    for alert in alerted:
        assert alert.message in report.markdown
        model_cells = [line.split(" | ")[1] for line in report.markdown.splitlines() if line.startswith("| ") and f" {alert.model}" in line]
        assert any(cell.startswith(f"{ALERT_MARK} {alert.model}") and cell.endswith("(coverage alert)") for cell in model_cells)
    assert report.markdown.count("(coverage alert)") == 2 and "sarima (coverage alert)" not in report.markdown
    assert 'class="alert"' in report.html and ALERT_MARK in report.html
    assert "actuals run 1 day behind the run date" in report.markdown and 'class="note"' in report.html
    assert "naive (reference)" in report.markdown


def test_leaderboard_table_lists_each_model_per_series(report):
    for unique_id in ("bus", "rail"):
        section = report.markdown.split(f"## Series {unique_id}")[1].split("## ")[0]
        table_rows = [line for line in section.splitlines() if line.startswith("| ") and "Model" not in line]
        assert len(table_rows) == 3
        assert "MAE h=1..3" in section


def test_artifact_markdown_has_no_image_links(report):
    assert "![" not in report.artifact_markdown
    assert "## Alerts" in report.artifact_markdown


def test_rendering_is_deterministic(inputs, report):
    metrics, forecasts, clean = inputs
    again = render_report(
        metrics, forecasts, clean, run_date="2024-05-01", eval_date=EVAL, alerts=coverage_alerts(forecasts, clean, EVAL),
        data_note="actuals run 1 day behind the run date",
    )  # fmt: skip
    assert again == report


def test_report_without_any_forecast_still_renders(inputs):
    metrics, forecasts, clean = inputs
    empty = render_report(metrics.iloc[:0], forecasts.iloc[:0], clean, run_date="2024-05-01", eval_date=EVAL)
    assert empty.images == {} and "No alerts." in empty.markdown and "<html" in empty.html


def test_all_pending_series_says_so_without_a_horizon_chart(inputs):
    _, forecasts, clean = inputs
    late = forecasts[forecasts["ds"] > EVAL - pd.Timedelta(days=3)]
    metrics = score_forecasts(late, clean[clean["service_date"] <= EVAL - pd.Timedelta(days=3)], EVAL)
    rendered = render_report(metrics, late, clean, run_date="2024-05-01", eval_date=EVAL, window="last_7")
    assert not any(name.startswith("mae_by_horizon") for name in rendered.images)
    assert "| – |" in rendered.markdown  # the MAE cells of models with nothing scored yet


def test_artifact_rows_are_strict_json(inputs):
    board = leaderboard(inputs[0])
    board.loc[0, "mae_h1"] = np.inf
    rows = leaderboard_artifact_rows(board)
    text = json.dumps(rows, allow_nan=False)
    assert len(json.loads(text)) == len(board)
    assert rows[0]["mae_h1"] is None
    naive = next(r for r in rows if r["model"] == "naive" and r["unique_id"] == "bus")
    assert naive["coverage_95_all"] is None and isinstance(naive["count_all"], int) and naive["is_reference"] is True


def test_to_json_records_converts_every_pandas_and_numpy_value():
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-03-01", None]),
            "at": pd.to_datetime(["2024-03-01 05:06:07", "2024-03-01 00:00:00"]).tz_localize("UTC"),
            "rank": pd.array([1, None], dtype="Int64"),
            "x": np.array([1.23456, np.nan]),
            "n": np.array([3, 4], dtype="int64"),
            "flag": np.array([True, False]),
            "name": ["a", None],
        }
    )
    rows = to_json_records(frame, decimals=2)
    json.dumps(rows, allow_nan=False)
    assert rows[0] == {"day": "2024-03-01", "at": "2024-03-01T05:06:07+00:00", "rank": 1, "x": 1.23, "n": 3, "flag": True, "name": "a"}
    assert rows[1]["day"] is None and rows[1]["rank"] is None and rows[1]["x"] is None and rows[1]["name"] is None
    assert rows[1]["at"] == "2024-03-01T00:00:00+00:00"
    assert all(type(v) in (str, int, float, bool, type(None)) for r in rows for v in r.values())


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("leaderboard",), "leaderboard"),
        (("Leaderboard", "last_28", "2024-05-01"), "leaderboard-last-28-2024-05-01"),
        (("  MAE / MAPE report!! ",), "mae-mape-report"),
        (("range:2024-01-01..2024-03-31",), "range-2024-01-01-2024-03-31"),
        (("Café", "São_Paulo"), "cafe-sao-paulo"),
    ],
)
def test_artifact_key_is_lowercase_letters_digits_and_dashes(parts, expected):
    key = artifact_key(*parts)
    assert key == expected
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key)


def test_artifact_key_refuses_text_without_letters_or_digits():
    with pytest.raises(ValueError):
        artifact_key("__ !! --")


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(REPO)) for pattern in ("tasks/core/**/*.py", "schemas/*.py") for p in REPO.glob(pattern))
)
def test_pure_core_imports_neither_prefect_nor_storage_nor_pyplot(module):
    tree = ast.parse((REPO / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = [name for name in imported if name.split(".")[0] in {"prefect", "storage"} or name == "matplotlib.pyplot"]
    assert forbidden == []


def test_latest_forecasts_table_lists_the_run_cutoffs_forecasts(inputs):
    metrics, forecasts, clean = inputs
    cutoff = forecasts["cutoff"].max()
    rendered = render_report(metrics, forecasts, clean, run_date="2024-05-01", eval_date=EVAL, latest_cutoff=cutoff)
    section = rendered.markdown.split(f"Forecasts from cutoff {cutoff:%Y-%m-%d}")[1]
    for row in forecasts[(forecasts["cutoff"] == cutoff) & (forecasts["unique_id"] == "bus")].itertuples():
        line = next(line for line in section.splitlines() if line.startswith(f"| {row.ds:%Y-%m-%d}"))
        assert f"{row.y_hat:,.0f}" in line
        if row.model == "sarima":
            assert f"({row.y_lo_95:,.0f}–{row.y_hi_95:,.0f})" in line
    without = render_report(metrics, forecasts, clean, run_date="2024-05-01", eval_date=EVAL)
    assert "Forecasts from cutoff" not in without.markdown
