"""The book's figures (Géron, ch. 15) reproduced by the engine on the real CTA file.

Rail, 2019-03-01..2019-05-31 (cutoffs 2019-02-28..2019-05-30, h = 1), training window expanding
from 2019-01-01: SARIMA(1,0,0)(0,1,1,7) MAE 32,040.7; seasonal naive MAE 42,143.3, MAPE 9.0 %.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima.model import ARIMA

from tasks.core.models.naive import SeasonalNaiveForecaster
from tasks.core.models.sarima import SEED_ORDER, SEED_SEASONAL_ORDER, SarimaForecaster
from tasks.core.walk_forward import TrainingWindow, historical_forecasts

pytestmark = pytest.mark.realdata

CSV_NAME = "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"
SEED_WINDOW = TrainingWindow.expanding("2019-01-01")
SEED_CUTOFFS = pd.date_range("2019-02-28", "2019-05-30", freq="D")


def real_csv_path() -> Path:
    configured = os.environ.get("RIDERSHIP_REAL_CSV")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared" / "data" / CSV_NAME
    if not path.is_file():
        pytest.skip(f"real CTA file not found at {path} (set RIDERSHIP_REAL_CSV)")
    return path


def load_history(path: Path) -> pd.DataFrame:
    """The file as the engine's history: daily index ``ds``, float ``bus``/``rail``, ``day_type``.

    A stand-in for the real ingest: exact duplicate rows are dropped, as in the book.
    """
    raw = pd.read_csv(path, parse_dates=["service_date"], date_format="%m/%d/%Y").drop_duplicates()
    history = raw.rename(columns={"service_date": "ds", "rail_boardings": "rail"}).set_index("ds").sort_index()
    assert history.index.is_unique
    return history[["bus", "rail", "day_type"]].astype({"bus": "float64", "rail": "float64"})


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_history(real_csv_path())


@pytest.fixture(scope="module")
def actual_rail(history: pd.DataFrame) -> np.ndarray:
    return history.loc["2019-03-01":"2019-05-31", "rail"].to_numpy()


def test_sarima_reproduces_the_seed_mae(history, actual_rail):
    out = historical_forecasts(
        history, SarimaForecaster(), ["rail"], SEED_CUTOFFS, horizon=1, window=SEED_WINDOW, n_jobs=None
    )
    assert len(out) == 92 and (out["ds"].to_numpy() == history.loc["2019-03-01":"2019-05-31"].index.to_numpy()).all()
    mae = np.mean(np.abs(out["y_hat"].to_numpy() - actual_rail))
    assert mae == pytest.approx(32_040.72, abs=1.0)


def test_sarima_forecasts_equal_the_seed_loop_on_sampled_days(history):
    """The book's own loop (fresh fit on a date-indexed Series) on a few days, to 1e-9."""
    rail_series = history.loc["2019-01-01":"2019-05-31", "rail"].asfreq("D")
    cutoffs = SEED_CUTOFFS[[0, 45, 91]]
    out = historical_forecasts(history, SarimaForecaster(), ["rail"], cutoffs, horizon=1, window=SEED_WINDOW)
    for cutoff, ours in zip(cutoffs, out["y_hat"]):
        model = ARIMA(rail_series["2019-01-01":cutoff], order=SEED_ORDER, seasonal_order=SEED_SEASONAL_ORDER)
        theirs = model.fit().forecast().iloc[0]
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_seasonal_naive_reproduces_the_seed_mae_and_mape(history, actual_rail):
    out = historical_forecasts(history, SeasonalNaiveForecaster(), ["rail"], SEED_CUTOFFS, horizon=1, window=SEED_WINDOW)
    errors = out["y_hat"].to_numpy() - actual_rail
    assert np.mean(np.abs(errors)) == pytest.approx(42_143.27, abs=0.01)
    assert round(100 * np.mean(np.abs(errors) / actual_rail), 1) == 9.0
