"""MinMaxScaler fitted on observed entries only."""
import json

import numpy as np
import pytest

from keraszoo.data.scaling import MinMaxScaler


def _x():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 3]


def test_fit_uses_observed_entries_only():
    x = _x()
    mask = np.ones_like(x)
    mask[3, 1] = 0
    x_bad = x.copy()
    x_bad[3, 1] = 1e12  # garbage at a missing entry must be ignored
    scaler = MinMaxScaler().fit(x_bad, mask)
    observed_col = np.delete(x[:, 1], 3)
    assert scaler.data_max_[1] == observed_col.max()
    assert scaler.data_min_[1] == observed_col.min()
    np.testing.assert_array_equal(scaler.data_min_[[0, 2, 3]], x.min(axis=0)[[0, 2, 3]])


def test_nan_marks_missing_without_mask_and_passes_through():
    x = _x()
    x[5, 0] = np.nan
    scaler = MinMaxScaler().fit(x)
    z = scaler.transform(x)
    assert np.isnan(z[5, 0]) and np.isnan(z).sum() == 1
    observed = ~np.isnan(z)
    assert z[observed].min() == 0.0 and z[observed].max() == 1.0
    assert np.isnan(scaler.inverse_transform(z)[5, 0])


def test_round_trip_and_dtype():
    x = _x()
    scaler = MinMaxScaler()
    z = scaler.fit_transform(x, np.ones_like(x))
    assert z.dtype == np.float64
    np.testing.assert_allclose(z.min(axis=0), 0.0)
    np.testing.assert_allclose(z.max(axis=0), 1.0)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, rtol=1e-12, atol=1e-12)


def test_constant_column_maps_to_zero_and_back_exactly():
    x = np.column_stack([np.full(10, 7.25), np.arange(10.0)])
    scaler = MinMaxScaler().fit(x)
    z = scaler.transform(x)
    assert np.all(z[:, 0] == 0.0)
    assert np.array_equal(scaler.inverse_transform(z)[:, 0], x[:, 0])
    assert scaler.data_range_[0] == 1.0


def test_all_missing_column_error_names_it():
    x = _x()
    mask = np.ones_like(x)
    mask[:, 2] = 0
    with pytest.raises(ValueError, match=r"column\(s\) \[2\]"):
        MinMaxScaler().fit(x, mask)


def test_state_round_trips_through_json():
    x = _x()
    scaler = MinMaxScaler().fit(x)
    state = json.loads(json.dumps(scaler.to_dict()))
    assert isinstance(state["data_min"], list) and isinstance(state["data_min"][0], float)
    again = MinMaxScaler.from_dict(state)
    assert np.array_equal(again.transform(x), scaler.transform(x))
    assert scaler.get_config() == state


def test_input_errors():
    x = _x()
    with pytest.raises(RuntimeError, match="not fitted"):
        MinMaxScaler().transform(x)
    scaler = MinMaxScaler().fit(x)
    with pytest.raises(ValueError, match="expected 4 columns"):
        scaler.transform(x[:, :3])
    with pytest.raises(ValueError, match="mask has shape"):
        MinMaxScaler().fit(x, np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        MinMaxScaler().fit(x[:, 0])
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="observed entry"):
        MinMaxScaler().fit(bad, np.ones_like(x))
    with pytest.raises(ValueError, match="data_min"):
        MinMaxScaler.from_dict({"min": [0.0]})
