"""RNN windowing and configuration: pure numpy checks, no training (and no TensorFlow import)."""

from __future__ import annotations

import numpy as np

from tasks.core.models.rnn.config import RNN_CALENDAR_FLAGS
import pandas as pd
import pytest

from tasks.core.features.calendar import day_types
from tasks.core.features.calendar_flags import calendar_features
from tasks.core.models.rnn.config import ConfigBundle, DataSplit, ModelConfig, TrainingConfig
from tasks.core.models.rnn.windows import (
    Scaler,
    calendar_matrix,
    data_fingerprint,
    feature_matrix,
    last_index_of_each_day_type,
    next_day_one_hot,
    require_daily,
    supervised_windows,
)


DIVIDE_BY_MILLION = Scaler({"bus": 0.0, "rail": 0.0}, {"bus": 1e6, "rail": 1e6})


def counting_history(days: int = 40, start: str = "2019-06-24") -> pd.DataFrame:
    """rail = 0, 1, 2, ... million riders, bus = 10x rail: every window is easy to predict by hand."""
    index = pd.date_range(start, periods=days, freq="D", name="ds")
    rail = np.arange(days, dtype=float) * 1e6
    return pd.DataFrame({"bus": rail * 10, "rail": rail, "day_type": day_types(index)}, index=index)


def test_one_step_windows_pair_each_window_with_the_following_day():
    config = ModelConfig.for_architecture("simple_rnn", seq_length=5)
    inputs, targets = supervised_windows(counting_history(12), config, "rail", DIVIDE_BY_MILLION)
    assert inputs.shape == (7, 5, 1) and targets.shape == (7, 1)
    assert inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[2, :, 0], [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(targets[:, 0], np.arange(5, 12))


def test_multitask_targets_are_bus_and_rail_of_the_next_day():
    config = ModelConfig.for_architecture("multitask_rnn", seq_length=4)
    inputs, targets = supervised_windows(counting_history(10), config, "rail", DIVIDE_BY_MILLION)
    assert inputs.shape == (6, 4, 2 + 3 + len(RNN_CALENDAR_FLAGS))
    np.testing.assert_array_equal(targets[0], [40, 4])


def test_vector_windows_target_the_next_horizon_days():
    config = ModelConfig.for_architecture("s2v_14", seq_length=5, horizon=3)
    inputs, targets = supervised_windows(counting_history(12), config, "rail", DIVIDE_BY_MILLION)
    assert len(inputs) == 12 - 5 - 3 + 1
    np.testing.assert_array_equal(targets[0], [5, 6, 7])
    np.testing.assert_array_equal(targets[-1], [9, 10, 11])


def test_sequence_windows_target_the_next_days_at_every_step():
    config = ModelConfig.for_architecture("seq2seq", seq_length=5, horizon=3)
    inputs, targets = supervised_windows(counting_history(12), config, "rail", DIVIDE_BY_MILLION)
    assert targets.shape == (12 - 5 - 3 + 1, 5, 3)
    window = 2  # inputs are days 2..6; at step t the targets are days 2+t+1 .. 2+t+3
    np.testing.assert_array_equal(inputs[window, :, 1], np.arange(2, 7))
    for step in range(5):
        np.testing.assert_array_equal(targets[window, step], np.arange(3 + step, 6 + step))
    assert targets.max() <= 11  # no target beyond the span


def test_conv_gru_targets_only_the_days_its_strided_convolution_emits():
    config = ModelConfig.for_architecture("conv_gru", seq_length=10, horizon=2)
    _, targets = supervised_windows(counting_history(20), config, "rail", DIVIDE_BY_MILLION)
    assert targets.shape[1] == (10 - 4) // 2 + 1
    np.testing.assert_array_equal(targets[0, -1], [10, 11])  # the last output is the window's last day
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig.for_architecture("conv_gru", seq_length=11)


def test_next_day_type_comes_from_the_calendar_not_the_following_row():
    history = counting_history(10, start="2019-06-28")  # Friday; 2019-07-04 is a holiday (U)
    history["day_type"] = "W"  # a wrong column must not matter
    one_hot = next_day_one_hot(history.index)  # columns A, U, W
    np.testing.assert_array_equal(one_hot[0], [1, 0, 0])  # Friday -> Saturday
    np.testing.assert_array_equal(one_hot[1], [0, 1, 0])  # Saturday -> Sunday
    np.testing.assert_array_equal(one_hot[5], [0, 1, 0])  # 2019-07-03 -> Independence Day
    assert one_hot.sum(axis=1).tolist() == [1] * 10


@pytest.mark.parametrize("architecture", ["mulvar_rnn", "multitask_rnn", "seq2seq"])
def test_features_up_to_a_cutoff_ignore_every_row_after_it(architecture):
    config = ModelConfig.for_architecture(architecture)
    history = counting_history(30)
    cutoff = history.index[19]
    perturbed = history.copy()
    perturbed.loc[perturbed.index > cutoff, ["bus", "rail"]] *= 3
    perturbed.loc[perturbed.index > cutoff, "day_type"] = "A"
    np.testing.assert_array_equal(
        feature_matrix(history, config, "rail", DIVIDE_BY_MILLION)[:20],
        feature_matrix(perturbed.loc[:cutoff], config, "rail", DIVIDE_BY_MILLION),
    )


def test_gaps_and_missing_values_are_refused():
    history = counting_history(10)
    with pytest.raises(ValueError, match="consecutive"):
        require_daily(history.drop(history.index[4]), ("rail",))
    history.iloc[3, history.columns.get_loc("rail")] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        require_daily(history, ("rail",))


def test_split_ending_at_a_cutoff_reproduces_the_seed_ranges():
    split = DataSplit.ending_at("2019-05-31", train_days=1096, validation_days=151)
    assert split.as_dict() == {
        "train_start": "2016-01-01",
        "train_end": "2018-12-31",
        "validation_start": "2019-01-01",
        "validation_end": "2019-05-31",
    }


def test_config_bundle_round_trips_through_a_dict_and_hashes_stably():
    bundle = ConfigBundle(ModelConfig.for_architecture("wavenet", units=8), TrainingConfig(max_epochs=3))
    again = ConfigBundle.from_dict(bundle.as_dict())
    assert again == bundle and again.digest() == bundle.digest()
    assert ModelConfig.for_architecture("deep_rnn").layers == 3
    assert TrainingConfig().learning_rate_for(ModelConfig.for_architecture("seq2seq")) == 0.1
    with pytest.raises(ValueError, match="unknown architecture"):
        ModelConfig.for_architecture("transformer")


def test_latest_day_type_lookup_and_fingerprint():
    history = counting_history(15, start="2019-07-01")  # Monday
    latest = last_index_of_each_day_type(history.index)
    assert latest["A"][4] == -1 and latest["A"][5] == 5 and latest["A"][11] == 5
    assert latest["U"][3] == 3  # 2019-07-04
    changed = history.copy()
    changed.iloc[0, 0] += 1
    assert data_fingerprint(history, ("bus", "rail")) != data_fingerprint(changed, ("bus", "rail"))
    assert data_fingerprint(history, ("bus", "rail")) == data_fingerprint(history.copy(), ("bus", "rail"))


def test_scalers_fixed_and_standardized_round_trip_riders():
    history = counting_history(20)
    fixed = Scaler.for_training(ModelConfig.for_architecture("mulvar_rnn"), history)
    assert fixed == DIVIDE_BY_MILLION
    standard = Scaler.for_training(ModelConfig.for_architecture("mulvar_rnn", scaling="standardize"), history)
    units = standard.to_model(history[["bus", "rail"]].to_numpy(), ("bus", "rail"))
    np.testing.assert_allclose(units.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(units.std(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(standard.to_riders(units[:, 1], "rail"), history["rail"], atol=2.0)
    assert Scaler.from_dict(standard.as_dict()) == standard


def columns_of(config: ModelConfig, row: np.ndarray, prefix: str) -> dict[str, float]:
    names = config.input_columns("rail")
    return {name[len(prefix) :]: float(row[i]) for i, name in enumerate(names) if name.startswith(prefix)}


def test_seq2seq_window_before_thanksgiving_carries_the_calendar_of_each_target_day():
    config = ModelConfig.for_architecture("seq2seq", seq_length=7)
    history = counting_history(60, start="2019-11-01")
    inputs, _ = supervised_windows(history, config, "rail", DIVIDE_BY_MILLION)
    window = list(history.index).index(pd.Timestamp("2019-11-27")) - 7 + 1  # last input day: Wed 11-27
    last_step = inputs[window, -1]
    assert len(last_step) == 2 + 14 * (3 + len(config.calendar_flags))
    thanksgiving = columns_of(config, last_step, "day+1_")
    assert thanksgiving["type_U"] == 1 and thanksgiving["type_W"] == 0
    assert thanksgiving["holiday_off_sunday"] == 1 and thanksgiving["day_after_thanksgiving"] == 0
    friday = columns_of(config, last_step, "day+2_")
    assert friday["day_after_thanksgiving"] == 1 and friday["type_W"] == 1 and friday["holiday_off_sunday"] == 0
    assert columns_of(config, last_step, "day+4_")["type_U"] == 1  # Sunday 12-01
    # Each day+k block is calendar_features of the date itself: any flag added there flows in.
    for lead in range(1, 15):
        day = pd.DatetimeIndex([pd.Timestamp("2019-11-27") + pd.Timedelta(days=lead)])
        block = columns_of(config, last_step, f"day+{lead}_")
        assert {k: block[k] for k in config.calendar_flags} == calendar_features(day)[list(RNN_CALENDAR_FLAGS)].iloc[0].to_dict()
    # The step before looks one day less far: its day+2 is Thanksgiving.
    assert columns_of(config, inputs[window, -2], "day+2_")["holiday_off_sunday"] == 1


def test_multitask_input_row_holds_the_next_days_calendar():
    config = ModelConfig.for_architecture("multitask_rnn", seq_length=7)
    assert config.calendar_flags == RNN_CALENDAR_FLAGS
    dates = pd.DatetimeIndex(["2019-11-27", "2019-11-28", "2019-12-23"])
    rows = calendar_matrix(dates, config)
    names = config.calendar_columns()
    assert rows.shape == (3, 3 + len(config.calendar_flags))
    assert rows[0, names.index("day+1_holiday_off_sunday")] == 1
    assert rows[1, names.index("day+1_day_after_thanksgiving")] == 1
    assert rows[2, names.index("day+1_christmas_to_new_year")] == 1 and rows[2, names.index("day+1_type_W")] == 1


def test_configs_without_calendar_fields_keep_the_seeds_next_day_inputs():
    """What a card written before calendar inputs deserialises to: the network's original inputs."""
    legacy = ConfigBundle.from_dict(
        {"model": {"architecture": "multitask_rnn", "seq_length": 4, "scaling": "standardize"}, "training": {}}
    ).model
    assert legacy.calendar == "next_day_type" and legacy.calendar_flags == ()
    assert legacy.input_columns("bus") == ("bus", "rail", "next_day_A", "next_day_U", "next_day_W")
    history = counting_history(10)
    features = feature_matrix(history, legacy, "bus", DIVIDE_BY_MILLION)
    np.testing.assert_array_equal(features[:, 2:], next_day_one_hot(history.index))
    # The other ten architectures keep the seed's inputs by default.
    assert ModelConfig.for_architecture("mulvar_rnn").input_columns("rail") == legacy.input_columns("rail")
    assert ModelConfig.for_architecture("lstm").calendar == "next_day_type"


def test_calendar_flags_are_pinned_and_unknown_ones_refused():
    config = ModelConfig.for_architecture("seq2seq", calendar_flags=("holiday_off_sunday",), horizon=3)
    again = ConfigBundle.from_dict(ConfigBundle(config).as_dict()).model
    assert again == config and again.calendar_columns()[:4] == (
        "day+1_type_A", "day+1_type_U", "day+1_type_W", "day+1_holiday_off_sunday",
    )
    assert calendar_matrix(pd.DatetimeIndex(["2019-05-26"]), config).shape == (1, 3 * 4)
    gone = ModelConfig.for_architecture("seq2seq", calendar_flags=("flag_removed_since",))
    with pytest.raises(ValueError, match="no longer provides"):
        calendar_matrix(pd.DatetimeIndex(["2019-05-26"]), gone)
    with pytest.raises(ValueError, match="no calendar inputs"):
        ModelConfig.for_architecture("simple_rnn", calendar="target_days")
    with pytest.raises(ValueError, match="target_days"):
        ModelConfig.for_architecture("mulvar_rnn", calendar_flags=("holiday_off_sunday",))


def test_rnn_configs_read_the_measured_flags_only(monkeypatch):
    import tasks.core.models.rnn.config as config_module
    import tasks.core.models.rnn.windows as windows_module

    before = ModelConfig.for_architecture("multitask_rnn", seq_length=4)
    assert before.calendar_flags == config_module.RNN_CALENDAR_FLAGS
    dates = pd.DatetimeIndex(["2019-11-27", "2019-12-31"])
    rows_before = calendar_matrix(dates, before)

    def with_new_flag(days):
        features = calendar_features(days)
        features["payday"] = 1.0
        return features

    monkeypatch.setattr(config_module, "calendar_features", with_new_flag)
    monkeypatch.setattr(windows_module, "calendar_features", with_new_flag)
    after = ModelConfig.for_architecture("multitask_rnn", seq_length=4)
    assert after.calendar_flags == before.calendar_flags  # a new flag needs a walk-forward first
    np.testing.assert_array_equal(calendar_matrix(dates, after), rows_before)


def test_window_log_scaling_centres_each_window_and_its_target_on_the_window_mean():
    config = ModelConfig.for_architecture("multitask_rnn", seq_length=5, scaling="window_log")
    history = counting_history(30)
    history[["bus", "rail"]] += 1e6  # every day positive
    scaler = Scaler.for_training(config, history)
    assert scaler.log and scaler.center["rail"] == pytest.approx(np.log(history["rail"]).mean()) and scaler.scale["rail"] > 0
    units = scaler.to_model(history[["bus", "rail"]].to_numpy(), ("bus", "rail"))
    np.testing.assert_allclose(scaler.to_riders(units[:, 1], "rail"), history["rail"], rtol=1e-6)
    inputs, targets = supervised_windows(history, config, "rail", scaler)
    series = 2  # bus, rail; the calendar inputs follow and are left as they are
    np.testing.assert_allclose(inputs[:, :, :series].mean(axis=1), 0, atol=1e-5)
    log_rail = (np.log(history["rail"].to_numpy()) - scaler.center["rail"]) / scaler.scale["rail"]
    expected = log_rail[5:] - np.array([log_rail[i : i + 5].mean() for i in range(len(history) - 5)])
    np.testing.assert_allclose(targets[:, 1], expected, atol=1e-5)
    plain = supervised_windows(history, ModelConfig.for_architecture("multitask_rnn", seq_length=5), "rail", scaler)[0]
    np.testing.assert_array_equal(inputs[:, :, series:], plain[:, :, series:])
    # The card keeps the flag; cards of the other scalings keep their layout and read back as before.
    assert Scaler.from_dict(scaler.as_dict()) == scaler
    assert "log" not in DIVIDE_BY_MILLION.as_dict() and Scaler.from_dict({"center": {}, "scale": {}}).log is False


def test_window_log_scaling_is_refused_for_models_that_do_not_iterate_one_step():
    with pytest.raises(ValueError, match="one-step"):
        ModelConfig.for_architecture("seq2seq", scaling="window_log")
    with pytest.raises(ValueError, match="unknown scaling"):
        ModelConfig.for_architecture("multitask_rnn", scaling="log")
