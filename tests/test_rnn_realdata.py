"""The seed's SimpleRNN on the real CTA file: within 15% of the book's validation MAE.

Train 2016-01..2018-12, validate 2019-01..2019-05, 56-day windows, rail, seed 42 (the book:
29,015 riders; measured here with TF 2.21 / Keras 3.15: 29,673 after 74 epochs). Slow (~10 s of
training); the full comparison of every architecture is bench/bench_rnn.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

BOOK_SIMPLE_RNN_MAE = 29_015
SEED_SPLIT = ("2016-01-01", "2018-12-31", "2019-01-01", "2019-05-31")


def load_real_history(path: Path) -> pd.DataFrame:
    """The raw file as a model history (exact duplicate rows dropped, as in the book)."""
    raw = pd.read_csv(path).drop_duplicates()
    index = pd.DatetimeIndex(pd.to_datetime(raw["service_date"], format="%m/%d/%Y"), name="ds")
    columns = {
        "bus": raw["bus"].to_numpy(float),
        "rail": raw["rail_boardings"].to_numpy(float),
        "day_type": raw["day_type"].to_numpy(),
    }
    history = pd.DataFrame(columns, index=index)
    return history.sort_index()


def test_seed_simple_rnn_is_within_15_percent_of_the_book(real_csv):
    from tasks.core.models.rnn import ConfigBundle, DataSplit, ModelConfig, TrainingConfig, limit_threads, train_challenger

    limit_threads(1, 1)
    history = load_real_history(real_csv)
    bundle = ConfigBundle(ModelConfig.for_architecture("simple_rnn"), TrainingConfig(seed=42))
    fitted = train_challenger(history.loc[:"2019-05-31"], "rail", bundle, DataSplit.from_dates(*SEED_SPLIT))
    seed_window = fitted.evaluate(
        history, pd.Timestamp(SEED_SPLIT[2]), pd.Timestamp(SEED_SPLIT[3]), horizon=1, confine_inputs_to_span=True
    )
    assert seed_window.count_by_h == (151 - 56,)
    assert seed_window.mae_by_h[0] <= 1.15 * BOOK_SIMPLE_RNN_MAE
    # The card's figure scores every validation day (windows may start in December).
    assert fitted.card["validation"]["by_h"][0]["count"] == 151
    assert np.isfinite(fitted.card["validation_mae"])
