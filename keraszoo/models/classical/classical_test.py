"""Tests of the classical baselines on scikit-learn's bundled breast-cancer data (no download) and on
synthetic data with a known answer."""
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import KNNImputer as SklearnKNNImputer

import keraszoo.models.classical  # noqa: F401  (registers the models)
from keraszoo.registry import get_model

# IterativeImputer warns when it stops at max_iter, which the short test settings always do
pytestmark = pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}.{ConvergenceWarning.__name__}")

# cheaper than the defaults so the file stays fast; every other model runs with its defaults
PARAMS = {
    "zero": {},
    "mean": {},
    "median": {},
    "most_frequent": {},
    "knn": {},
    "mice": {"max_iter": 4},
    "missforest": {"n_estimators": 10, "max_iter": 3, "n_jobs": 1},
    "matrix": {},
    "em": {},
}
NAMES = sorted(PARAMS)
BETTER_THAN_MEAN = ["em", "knn", "matrix", "mice", "missforest"]


@pytest.fixture(scope="module")
def data():
    """Breast cancer, min-max scaled, 20% MCAR; 400 training rows and 169 held-out rows."""
    x = load_breast_cancer().data
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
    rng = np.random.default_rng(0)
    mask = (rng.random(x.shape) >= 0.2).astype(np.float64)
    rows = rng.permutation(len(x))
    train, test = rows[:400], rows[400:]
    return x[train], mask[train], x[test], mask[test]


@pytest.fixture(scope="module")
def fitted(data):
    x, mask, _, _ = data
    return {name: get_model(name, **PARAMS[name]).fit_arrays(_hide(x, mask), mask) for name in NAMES}


def _hide(x, mask):
    """x with NaN at the missing entries, as callers hand it over."""
    return np.where(mask == 1, x, np.nan)


def _rmse_missing(truth, imputed, mask):
    return float(np.sqrt(np.mean((truth - imputed)[mask == 0] ** 2)))


@pytest.mark.parametrize("name", NAMES)
def test_observed_entries_kept_and_no_nan(name, data, fitted):
    x, mask, x_new, mask_new = data
    for xs, ms in ((x, mask), (x_new, mask_new)):
        out = fitted[name].impute(_hide(xs, ms), ms)
        assert out.shape == xs.shape and out.dtype == np.float64
        assert np.array_equal(out[ms == 1], xs[ms == 1])  # bit for bit
        assert np.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_inductive_and_deterministic(name, data, fitted):
    x, mask, x_new, mask_new = data
    model = fitted[name]
    first = model.impute(_hide(x_new, mask_new), mask_new)
    # same input, same answer: imputing does not change the model
    assert np.array_equal(model.impute(_hide(x_new, mask_new), mask_new), first)
    # each new row is imputed from what fit learned alone, not from the other new rows
    part = model.impute(_hide(x_new[:7], mask_new[:7]), mask_new[:7])
    np.testing.assert_allclose(part, first[:7], rtol=0, atol=1e-12)
    # fitting again from the config gives the same model
    again = type(model).from_config(model.get_config()).fit_arrays(_hide(x, mask), mask)
    assert np.array_equal(again.impute(_hide(x_new, mask_new), mask_new), first)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    model = get_model(name, **PARAMS[name])
    config = model.get_config()
    rebuilt = get_model(name, **config)
    assert type(rebuilt) is type(model)
    assert rebuilt.get_config() == config
    assert type(model).from_config(config).get_config() == config


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_is_an_error(name):
    with pytest.raises(ValueError, match="no parameter"):
        get_model(name, not_a_parameter=1)


@pytest.mark.parametrize("name", BETTER_THAN_MEAN)
def test_beats_mean_imputation(name, data, fitted):
    _, _, x_new, mask_new = data
    baseline = _rmse_missing(x_new, fitted["mean"].impute(_hide(x_new, mask_new), mask_new), mask_new)
    rmse = _rmse_missing(x_new, fitted[name].impute(_hide(x_new, mask_new), mask_new), mask_new)
    assert rmse < 0.8 * baseline, f"{name}: RMSE {rmse:.4f} vs mean imputation {baseline:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_rows_with_nothing_observed(name, data, fitted):
    x, mask, x_new, mask_new = data
    mask_new = mask_new.copy()
    mask_new[[0, 5]] = 0
    out = fitted[name].impute(_hide(x_new, mask_new), mask_new)
    assert np.isfinite(out).all()
    observed_means = (x * mask).sum(axis=0) / mask.sum(axis=0)
    model = fitted[name]
    # mean and knn use the observed means; em and matrix the means they fitted (near the observed ones)
    want = {"mean": observed_means, "knn": observed_means, "em": getattr(model, "mu_", None), "matrix": getattr(model, "mean_", None)}
    if name in want:
        np.testing.assert_allclose(out[[0, 5]], np.stack([want[name]] * 2), rtol=0, atol=1e-12)
        np.testing.assert_allclose(want[name], observed_means, rtol=0, atol=0.02)


def test_simple_statistics():
    x = np.array([[1.0, 0.2], [3.0, 0.2], [2.0, 0.7], [9.0, 0.0]])
    mask = np.array([[1, 1], [1, 1], [1, 1], [0, 0]], dtype=float)
    new_mask = np.zeros((1, 2))
    expected = {"zero": [0.0, 0.0], "mean": [2.0, 1.1 / 3], "median": [2.0, 0.2], "most_frequent": [1.0, 0.2]}
    for name, want in expected.items():
        out = get_model(name).fit_arrays(x, mask).impute(np.zeros((1, 2)), new_mask)
        np.testing.assert_allclose(out[0], want, rtol=1e-12)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_matches_sklearn(weights, data):
    x, mask, x_new, mask_new = data
    ours = get_model("knn", n_neighbors=4, weights=weights).fit_arrays(x, mask).impute(_hide(x_new, mask_new), mask_new)
    theirs = SklearnKNNImputer(n_neighbors=4, weights=weights).fit(_hide(x, mask)).transform(_hide(x_new, mask_new))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)


def test_knn_searches_beyond_candidates_when_few_rows_observe_a_column():
    # 3% observed: the nearest candidates rarely hold k rows observing a column, forcing the full search
    rng = np.random.default_rng(0)
    x = rng.random((2000, 6))
    mask = (rng.random(x.shape) < 0.03).astype(float)
    mask[0] = 1
    x_new = rng.random((50, 6))
    mask_new = (rng.random(x_new.shape) < 0.5).astype(float)
    ours = get_model("knn").fit_arrays(x, mask).impute(x_new, mask_new)
    theirs = SklearnKNNImputer().fit(_hide(x, mask)).transform(_hide(x_new, mask_new))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_knn_sizes_its_candidates_past_a_rare_column_and_stays_exact():
    # one column observed in 1% of the rows, the rest in 80% (an image region nearly always missing):
    # the candidates are sized for the common columns and the rare one is searched exhaustively
    rng = np.random.default_rng(1)
    x = rng.random((3000, 40))
    mask = (rng.random(x.shape) < 0.8).astype(float)
    mask[:, 7] = rng.random(3000) < 0.01
    x_new = rng.random((300, 40))
    mask_new = (rng.random(x_new.shape) < 0.6).astype(float)
    model = get_model("knn").fit_arrays(x, mask)
    assert model._candidates(3000) < 100  # the rarest column alone would make it 2,016
    ours = model.impute(x_new, mask_new)
    theirs = SklearnKNNImputer().fit(_hide(x, mask)).transform(_hide(x_new, mask_new))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def _knn_tie_data(n_tied, seed=0):
    """Training rows all equal to 0.37 but for one column (a random one of the first 7) set to 0.59
    (`n_tied` rows, at random positions) or 0.98 / 0.99 (the others); column 7 holds distinct values
    to read the neighbours off. Every row in a group is at EXACTLY the same distance from a query of
    0.37s (one nonzero difference, the same float), but sum a^2 + sum b^2 - 2 sum ab rounds differently
    depending on which column holds it. One tied row does not observe column 7."""
    rng = np.random.default_rng(seed)
    n, d = 300, 8
    x = np.full((n, d), 0.37)
    v = rng.choice([0.98, 0.99], size=n)
    tied = np.sort(rng.choice(n, size=n_tied, replace=False))
    v[tied] = 0.59
    x[np.arange(n), rng.integers(0, d - 1, size=n)] = v
    x[:, 7] = rng.permutation(n) / n
    mask = np.ones_like(x)
    mask[tied[1], 7] = 0  # the second-lowest tied row cannot give column 7
    query = np.full((2, d), 0.37)
    query_mask = np.ones_like(query)
    query_mask[:, 7] = 0
    query_mask[1, 3] = 0  # the second query row ignores column 3: rows differing only there are at 0
    return x, mask, query, query_mask


@pytest.mark.parametrize("n_tied", [12, 120])  # fewer, and more, tied rows than the 64 candidates
@pytest.mark.parametrize("k, weights", [(1, "uniform"), (3, "uniform"), (5, "distance")])
def test_knn_ties_go_to_the_lowest_row_indices_in_numpy_and_tf(n_tied, k, weights):
    import tensorflow as tf

    x, mask, query, query_mask = _knn_tie_data(n_tied)
    model = get_model("knn", n_neighbors=k, weights=weights).fit_arrays(x, mask)
    got = model.impute(query, query_mask)
    def tf_impute(rows, dtype=tf.float32):
        x_in, m_in = tf.constant(query[rows] * query_mask[rows], dtype), tf.constant(query_mask[rows], dtype)
        return model.tf_impute(x_in, m_in).numpy()

    got_tf = tf_impute(slice(0, 2))
    got_tf64 = tf_impute(slice(0, 2), tf.float64)  # the same values as numpy's: the same answer to 1e-12
    for i in range(2):
        # the matrix product's rounding depends on the batch: a row alone must get the same neighbours
        assert tf_impute(slice(i, i + 1))[0, 7] == pytest.approx(got_tf[i, 7], abs=1e-6), i
        assert got_tf64[i, 7] == pytest.approx(got[i, 7], abs=1e-12), i
        common = mask[:, :7] * query_mask[i, :7]
        exact = ((x[:, :7] - query[i, :7]) ** 2 * common).sum(axis=1) * 8 / common.sum(axis=1)
        donors = np.flatnonzero(mask[:, 7] == 1)
        nearest = donors[np.lexsort((donors, exact[donors]))[:k]]  # by distance, then by row index
        assert np.sum(exact[donors] == exact[nearest[-1]]) >= k + 5  # a real tie: more rows than k to choose from
        want = x[nearest, 7].mean()  # all at one distance: "distance" weights are uniform too
        assert got[i, 7] == pytest.approx(want, abs=1e-12), (i, nearest)
        assert got_tf[i, 7] == pytest.approx(want, abs=1e-6), (i, nearest)


def test_em_recovers_a_known_gaussian():
    rng = np.random.default_rng(0)
    mu = np.array([0.5, -1.0, 2.0])
    cov = np.array([[1.0, 0.6, 0.3], [0.6, 2.0, -0.5], [0.3, -0.5, 1.5]])
    x = rng.multivariate_normal(mu, cov, size=5000)
    mask = (rng.random(x.shape) >= 0.3).astype(float)
    model = get_model("em").fit_arrays(x, mask)
    np.testing.assert_allclose(model.mu_, mu, atol=0.06)
    np.testing.assert_allclose(model.cov_, cov, atol=0.12)
    assert np.all(np.diff(model.loglik_) > -1e-9)  # EM never lowers the likelihood
    assert model.n_iter_ < model.max_iter  # converged


def test_em_imputes_the_conditional_mean(data, fitted):
    _, _, x_new, mask_new = data
    model = fitted["em"]
    out = model.impute(_hide(x_new, mask_new), mask_new)
    mu, s = model.mu_, model.cov_
    for i in range(10):
        o, m = mask_new[i] == 1, mask_new[i] == 0
        want = mu[m] + s[np.ix_(m, o)] @ np.linalg.solve(s[np.ix_(o, o)], x_new[i, o] - mu[o])
        np.testing.assert_allclose(out[i, m], want, rtol=1e-8, atol=1e-10)


def test_softimpute_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(20, 2))
    x = rng.normal(size=(260, 2)) @ factors.T
    mask = (rng.random(x.shape) >= 0.3).astype(float)
    train, new = slice(0, 200), slice(200, 260)
    model = get_model("matrix").fit_arrays(x[train], mask[train])
    assert model.rank_ == 2
    for rows in (train, new):  # the training rows' missing entries, then new rows'
        out = model.impute(x[rows], mask[rows])
        missing = mask[rows] == 0
        error = np.linalg.norm((out - x[rows])[missing]) / np.linalg.norm(x[rows][missing])
        assert error < 0.06, error  # what is left is mostly the shrinkage's bias


@pytest.mark.parametrize(
    "name, params",
    [
        ("mean", {}),
        ("em", {}),
        ("matrix", {}),
        ("knn", {}),
        ("knn", {"weights": "distance"}),
        ("knn", {"n_neighbors": 1}),
        ("mice", {}),
        ("missforest", {"n_estimators": 5, "max_iter": 2, "n_jobs": 1}),
    ],
)
def test_tf_impute_matches_numpy_impute(name, params):
    """The TensorFlow imputation used for SavedModel export agrees with the numpy one, sparse columns included."""
    import tensorflow as tf

    from keraszoo.registry import get_model

    rng = np.random.default_rng(0)
    x = rng.random((300, 7))
    mask = (rng.random(x.shape) > 0.3).astype(float)
    mask[:, 0] = rng.random(300) > 0.9  # a column few rows observe
    model = get_model(name, **params).fit_arrays(x, mask)
    assert type(model).exportable()
    new_x = rng.random((40, 7))
    new_mask = (rng.random(new_x.shape) > 0.4).astype(float)
    new_mask[3] = 0  # a row with nothing observed
    expected = model.impute(new_x, new_mask)
    got = model.tf_impute(tf.constant(new_x * new_mask, tf.float32), tf.constant(new_mask, tf.float32)).numpy()
    np.testing.assert_allclose(np.where(new_mask == 1, new_x, got), expected, atol=1e-5)


@pytest.mark.parametrize(
    "name, params", [("mice", {"max_iter": 3}), ("missforest", {"n_estimators": 3, "max_iter": 2, "n_jobs": 1})]
)
def test_iterative_rows_imputed_alone_whatever_the_batch(name, params):
    """sklearn's transform skips the regressions when a whole batch is missing; ours does not, so a row
    gets the same imputation alone as in any batch, and tf_impute agrees (and survives pickling)."""
    import pickle

    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.random((200, 5))
    mask = (rng.random(x.shape) > 0.3).astype(float)
    model = get_model(name, **params).fit_arrays(x, mask)
    new_x = rng.random((6, 5))
    new_mask = (rng.random(new_x.shape) > 0.5).astype(float)
    new_mask[:2] = 0
    in_batch = model.impute(new_x, new_mask)
    alone = model.impute(new_x[:2], new_mask[:2])
    np.testing.assert_allclose(alone, in_batch[:2], rtol=0, atol=1e-12)
    assert not np.allclose(alone[0], model.imputer_.initial_imputer_.statistics_)  # the regressions ran
    model.tf_impute(tf.constant(new_x, tf.float32), tf.constant(new_mask, tf.float32))  # builds its tensor cache
    model = pickle.loads(pickle.dumps(model))
    got = model.tf_impute(tf.zeros((2, 5), tf.float32), tf.zeros((2, 5), tf.float32)).numpy()
    np.testing.assert_allclose(got, alone, rtol=0, atol=1e-5)


def test_iterative_with_one_column_imputes_the_mean():
    import tensorflow as tf

    x = np.array([[0.1], [0.5], [0.9], [0.0]])
    mask = np.array([[1.0], [1.0], [1.0], [0.0]])
    for name in ("mice", "missforest"):
        model = get_model(name, **PARAMS[name]).fit_arrays(x, mask)
        got = model.tf_impute(tf.zeros((1, 1), tf.float32), tf.zeros((1, 1), tf.float32)).numpy()
        np.testing.assert_allclose(model.impute(np.zeros((1, 1)), np.zeros((1, 1))), [[0.5]], rtol=1e-12)
        np.testing.assert_allclose(got, [[0.5]], rtol=1e-6)


def test_mice_with_posterior_draws_is_not_exportable():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    x = rng.random((50, 3))
    mask = (rng.random(x.shape) > 0.3).astype(float)
    drawn = get_model("mice", max_iter=2, sample_posterior=True).fit_arrays(x, mask)
    assert type(drawn).exportable() and not drawn.exportable()
    assert get_model("mice", max_iter=2).fit_arrays(x, mask).exportable()
    with pytest.raises(NotImplementedError, match="sample_posterior"):
        drawn.tf_impute(tf.constant(x, tf.float32), tf.constant(mask, tf.float32))


def test_missforest_forests_add_their_trees_in_order_whatever_n_jobs():
    """Threaded prediction added the trees in the order their threads finished: the last bit of
    MissForest's imputations, and `auto`'s choices downstream of them, varied between runs."""
    from keraszoo.models.classical.iterative import OrderedSumForest

    x, y = load_breast_cancer(return_X_y=True)
    forest = OrderedSumForest(n_estimators=40, n_jobs=2, random_state=0).fit(x, y)
    expected = np.zeros(len(x))
    for tree in forest.estimators_:
        expected += tree.predict(x)
    expected /= len(forest.estimators_)
    for _ in range(5):
        assert np.array_equal(forest.predict(x), expected)
    assert forest.n_jobs == 2  # fitting stays parallel
    holes = np.random.default_rng(0).random(x.shape) > 0.2
    imputations = [get_model("missforest", n_estimators=20, max_iter=2, n_jobs=2).fit_arrays(np.where(holes, x, 0.0), holes * 1.0).impute(np.where(holes, x, 0.0), holes * 1.0) for _ in range(2)]
    assert np.array_equal(*imputations)
