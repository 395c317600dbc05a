"""The contract every registered model keeps: observed entries are never changed, parameters are
real, configs round-trip. Adding a model to the registry adds it to these tests."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import keraszoo
from keraszoo.registry import get_model, is_deep

ALL_MODELS = keraszoo.list_models()
_FITTED = {}


def fitted(name):
    """One small fitted instance per model, shared by the property test's examples."""
    if name not in _FITTED:
        rng = np.random.default_rng(0)
        x = rng.random((64, 5))
        mask = (rng.random(x.shape) > 0.25).astype(np.float64)
        mask[0] = 1.0  # every column has observed values
        model = get_model(name)
        if is_deep(name):
            model.fit_arrays(x, mask, iterations=20, batch_size=16)
        else:
            model.fit_arrays(x, mask)
        _FITTED[name] = model
    return _FITTED[name]


def test_registry_lists_the_foundation_models():
    expected = {"gain", "zero", "mean", "median", "most_frequent", "knn", "mice", "missforest", "matrix", "em"}
    assert expected <= set(ALL_MODELS)
    assert "gain" in keraszoo.list_models("deep") and "knn" in keraszoo.list_models("classical")


def test_unknown_names_and_parameters_are_errors():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        keraszoo.get_model("nope")
    for name in ALL_MODELS:
        with pytest.raises(ValueError, match="valid parameters"):
            keraszoo.get_model(name, not_a_parameter=1)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_config_round_trip(name):
    model = get_model(name)
    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("name", ALL_MODELS)
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    rows=st.integers(1, 12),
)
def test_observed_entries_are_never_changed(name, data, rows):
    model = fitted(name)
    values = st.floats(-2.0, 3.0, allow_nan=False, width=32)
    x = data.draw(arrays(np.float32, (rows, 5), elements=values))
    mask = data.draw(arrays(np.float32, (rows, 5), elements=st.sampled_from([0.0, 1.0])))
    out = np.asarray(model.impute(x, mask))
    assert out.shape == x.shape
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask == 1], x[mask == 1])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_subnormal_and_extreme_observed_values_survive(name):
    """Arithmetic blending would flush 1e-38 to zero on CPU; every model must select, not blend."""
    x = np.array([[1.1276634e-38, -0.0, 3.4e38, 1e-45, 7.0]], dtype=np.float32)
    mask = np.array([[1, 1, 1, 1, 0]], dtype=np.float32)
    out = np.asarray(fitted(name).impute(x, mask))
    np.testing.assert_array_equal(out[mask == 1].astype(np.float32).view(np.uint32), x[mask == 1].view(np.uint32))
