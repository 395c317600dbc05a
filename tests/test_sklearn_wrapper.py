"""ZooImputer: the scikit-learn face of every model, and the bad-input contract."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from keraszoo.sklearn import ZooImputer
from keraszoo.validation import ImputationInputError


@pytest.fixture(scope="module")
def table():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target").iloc[:, :8].copy()
    frame.index = [f"patient-{i}" for i in range(len(frame))]
    missing = np.random.default_rng(0).random(frame.shape) < 0.2
    return frame.mask(missing), frame, data.target.to_numpy()


@pytest.fixture(scope="module")
def fitted_gain(table):
    incomplete, _, _ = table
    return ZooImputer("gain", iterations=300, seed=0).fit(incomplete.iloc[:400])


def test_pandas_in_pandas_out_with_index_and_columns_kept(table, fitted_gain):
    incomplete, _, _ = table
    new_rows = incomplete.iloc[400:]
    out = fitted_gain.transform(new_rows)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(new_rows.columns) and list(out.index) == list(new_rows.index)
    assert not out.isna().any().any()
    observed = new_rows.notna().to_numpy()
    np.testing.assert_array_equal(out.to_numpy()[observed], new_rows.to_numpy()[observed])


def test_numpy_in_numpy_out(table):
    incomplete, _, _ = table
    out = ZooImputer("mean").fit_transform(incomplete.to_numpy())
    assert isinstance(out, np.ndarray) and out.shape == incomplete.shape and np.isfinite(out).all()


def test_transform_is_inductive_and_never_retrains(table, fitted_gain):
    incomplete, _, _ = table
    weights = [w.numpy().copy() for w in fitted_gain.model_.weights]
    steps = int(fitted_gain.model_.g_optimizer.iterations)
    first = fitted_gain.transform(incomplete.iloc[400:])
    second = fitted_gain.transform(incomplete.iloc[400:])
    pd.testing.assert_frame_equal(first, second)
    assert int(fitted_gain.model_.g_optimizer.iterations) == steps
    for before, after in zip(weights, fitted_gain.model_.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_imputations_are_in_raw_scale_and_beat_the_mean(table, fitted_gain):
    incomplete, complete, _ = table
    rows = slice(400, None)
    missing = incomplete.iloc[rows].isna().to_numpy()
    truth = complete.iloc[rows].to_numpy()
    span = complete.max().to_numpy() - complete.min().to_numpy()

    def rmse(out):
        return np.sqrt(np.mean((((out.to_numpy() - truth) / span) ** 2)[missing]))

    gain = rmse(fitted_gain.transform(incomplete.iloc[rows]))
    mean = rmse(ZooImputer("mean").fit(incomplete.iloc[:400]).transform(incomplete.iloc[rows]))
    assert gain < mean


def test_works_in_a_pipeline_and_clones(table):
    incomplete, _, target = table
    pipeline = make_pipeline(ZooImputer("knn", n_neighbors=3), LogisticRegression(max_iter=2000))
    pipeline.fit(incomplete.iloc[:400], target[:400])
    assert pipeline.score(incomplete.iloc[400:], target[400:]) > 0.8
    imputer = ZooImputer("gain", alpha=10.0, iterations=50)
    copy = clone(imputer)
    assert copy.get_params() == {"name": "gain", "alpha": 10.0, "iterations": 50}
    assert copy.set_params(alpha=3.0).params["alpha"] == 3.0


def test_every_parameter_is_checked():
    with pytest.raises(ValueError, match="no parameter 'hint_rat'.*valid parameters"):
        ZooImputer("gain", hint_rat=0.5)
    with pytest.raises(ValueError, match="no parameter 'iterations'"):
        ZooImputer("mean", iterations=10)  # classical models have no training loop
    with pytest.raises(ValueError, match="unknown model 'gan'.*gain"):
        ZooImputer("gan")


def test_parameters_reach_the_model(table):
    incomplete, _, _ = table
    imputer = ZooImputer("gain", hint_rate=0.6, alpha=7.0, iterations=60, batch_size=32, learning_rate=0.01).fit(incomplete)
    assert imputer.model_.hint_rate == 0.6 and imputer.model_.alpha == 7.0
    assert float(imputer.model_.g_optimizer.learning_rate) == pytest.approx(0.01)
    assert int(imputer.model_.g_optimizer.iterations) >= 60


# --- bad input: each gets an error that names the problem ---------------------------------------
def test_wrong_number_of_columns_at_transform(table, fitted_gain):
    incomplete, _, _ = table
    with pytest.raises(ImputationInputError, match="expected 8 columns"):
        fitted_gain.transform(incomplete.iloc[:5, :6].to_numpy())


def test_renamed_columns_at_transform(table, fitted_gain):
    incomplete, _, _ = table
    with pytest.raises(ImputationInputError, match="column names differ"):
        fitted_gain.transform(incomplete.iloc[:5].rename(columns={incomplete.columns[0]: "other"}))


def test_non_numeric_columns(table):
    incomplete, _, _ = table
    frame = incomplete.iloc[:20].copy()
    frame["city"] = "Lyon"
    with pytest.raises(ImputationInputError, match="non-numeric column.*city"):
        ZooImputer("mean").fit(frame)
    with pytest.raises(ImputationInputError, match="non-numeric"):
        ZooImputer("mean").fit(np.array([["a", "1"], ["b", "2"]], dtype=object))


def test_inf_is_rejected_with_its_column(table):
    incomplete, _, _ = table
    frame = incomplete.iloc[:20].copy()
    frame.iloc[3, 2] = np.inf
    with pytest.raises(ImputationInputError, match=f"column {frame.columns[2]} holds inf"):
        ZooImputer("mean").fit(frame)


def test_empty_input(table, fitted_gain):
    with pytest.raises(ImputationInputError, match="empty"):
        ZooImputer("mean").fit(np.empty((0, 3)))
    with pytest.raises(ImputationInputError, match="empty"):
        fitted_gain.transform(np.empty((0, 8)))


def test_column_with_no_observed_value_at_fit(table):
    incomplete, _, _ = table
    frame = incomplete.iloc[:20].copy()
    frame.iloc[:, 4] = np.nan
    with pytest.raises(ImputationInputError, match=f"column.*{frame.columns[4]}.*no observed value"):
        ZooImputer("gain", iterations=10).fit(frame)


def test_one_dimensional_input(table):
    with pytest.raises(ImputationInputError, match="2-D"):
        ZooImputer("mean").fit(np.array([1.0, np.nan, 3.0]))


# --- edge cases with documented results ---------------------------------------------------------
def test_no_missing_values_returns_input_unchanged(table, fitted_gain):
    _, complete, _ = table
    out = fitted_gain.transform(complete.iloc[:10])
    pd.testing.assert_frame_equal(out, complete.iloc[:10].astype(float))


def test_rows_with_every_value_missing(table, fitted_gain):
    incomplete, _, _ = table
    rows = incomplete.iloc[:4].copy()
    rows.iloc[1:3] = np.nan
    for imputer in (fitted_gain, ZooImputer("mean").fit(incomplete)):
        out = imputer.transform(rows)
        assert np.isfinite(out.to_numpy()).all()
    means = ZooImputer("mean").fit(incomplete).transform(rows).iloc[1].to_numpy()
    np.testing.assert_allclose(means, incomplete.mean().to_numpy())


def test_constant_column_gets_its_constant(table):
    incomplete, _, _ = table
    frame = incomplete.iloc[:100].copy()
    frame["constant"] = np.where(np.arange(100) % 3 == 0, np.nan, 4.5)
    for name, params in [("mean", {}), ("gain", {"iterations": 50}), ("knn", {})]:
        out = ZooImputer(name, **params).fit_transform(frame)
        np.testing.assert_allclose(out["constant"].to_numpy(), 4.5, atol=1e-5)


def test_save_and_load(tmp_path, table, fitted_gain):
    incomplete, _, _ = table
    rows = incomplete.iloc[400:450]
    for imputer in (fitted_gain, ZooImputer("knn").fit(incomplete.iloc[:400])):
        path = imputer.save(tmp_path / imputer.name)
        loaded = ZooImputer.load(path)
        pd.testing.assert_frame_equal(loaded.transform(rows), imputer.transform(rows), atol=1e-6)


def test_set_params_validates_before_changing_anything():
    """It used to update the parameters and then fail, leaving an estimator that could not be used."""
    imputer = ZooImputer("knn", n_neighbors=3)
    with pytest.raises(ValueError, match="has no parameter 'not_a_parameter'"):
        imputer.set_params(not_a_parameter=1)
    assert imputer.get_params() == {"name": "knn", "n_neighbors": 3}
    with pytest.raises(ValueError, match="has no parameter 'n_neighbors'"):
        imputer.set_params(name="mean")  # mean has no n_neighbors: the name must not change either
    assert imputer.name == "knn"
    imputer.set_params(n_neighbors=4)
    assert imputer.get_params()["n_neighbors"] == 4


def test_save_takes_numpy_parameters_as_a_grid_search_passes_them(table, tmp_path):
    """A grid search over np.arange gives numpy integers; saving failed with "not JSON serializable"."""
    incomplete, _, _ = table
    imputer = ZooImputer("gain", iterations=np.int64(20), batch_size=np.int32(32), seed=np.int64(1), alpha=np.float64(10.0))
    imputer.fit(incomplete.iloc[:200])
    imputer.save(str(tmp_path / "gain"))
    loaded = ZooImputer.load(str(tmp_path / "gain"))
    assert loaded.get_params() == {"name": "gain", "iterations": 20, "batch_size": 32, "seed": 1, "alpha": 10.0}
    pd.testing.assert_frame_equal(loaded.transform(incomplete.iloc[200:260]), imputer.transform(incomplete.iloc[200:260]))


def test_images_in_images_out_for_a_table_model_and_per_channel_scaling():
    """A table-only model (GAIN) takes images [rows, H, W, C] flattened; the result has the input's shape."""
    from sklearn.datasets import load_digits

    images = load_digits().images[:300, :, :, None].astype(np.float64)
    mask = np.random.default_rng(1).random(images.shape) > 0.2
    incomplete = np.where(mask, images, np.nan)
    imputer = ZooImputer("gain", iterations=50, batch_size=64).fit(incomplete)
    assert imputer.input_shape_ == (8, 8, 1) and imputer.model_input_shape_ == (64,)
    assert imputer.scaler_.data_min_.shape == (1,)  # one channel, one range: pixels keep their relative scale
    out = imputer.transform(incomplete[:20])
    assert out.shape == (20, 8, 8, 1) and np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask[:20]], images[:20][mask[:20]])
    with pytest.raises(ImputationInputError, match="add a channel axis"):
        imputer.transform(incomplete[:5, :, :, 0])
    with pytest.raises(ImputationInputError, match=r"expected examples of shape \(8, 8, 1\)"):
        imputer.transform(incomplete[:5, :4])
    with pytest.raises(ImputationInputError, match="2-D table"):
        ZooImputer("knn").fit(incomplete)  # classical models take tables only


def test_classifier_task_is_checked():
    from keraszoo.sklearn import ZooClassifier

    with pytest.raises(ValueError, match="is for task 'impute'; ZooClassifier needs a model for task 'classify'"):
        ZooClassifier("gain")
