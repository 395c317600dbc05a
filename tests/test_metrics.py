"""GAIN-protocol metrics: normalised RMSE/MSE/MAE over missing entries (tables and N-D examples, min-max or
z-score, truth or observed statistics), categorical and downstream accuracy."""
import numpy as np
import pandas as pd
import pytest

from keraszoo.metrics import categorical_accuracy, downstream_accuracy, mae, mse, rmse, scaling_statistics


def _example():
    truth = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0]])
    imputed = np.array([[0.0, 10.0], [3.0, 20.0], [4.0, 10.0]])
    mask = np.array([[1, 1], [0, 1], [1, 0]], dtype=np.float32)
    return truth, imputed, mask


def test_rmse_hand_computed():
    truth, imputed, mask = _example()
    # normalised with truth's per-column range: col 0 range 4, col 1 range 20
    # errors at missing entries: (3-2)/4 = 0.25 and (10-30)/20 = -1.0
    expected = np.sqrt((0.25**2 + 1.0**2) / 2)
    assert rmse(truth, imputed, mask) == pytest.approx(expected, rel=1e-12)
    assert rmse(truth, imputed, mask, normalize=False) == pytest.approx(np.sqrt((1 + 400) / 2), rel=1e-12)
    assert mae(truth, imputed, mask) == pytest.approx((0.25 + 1.0) / 2, rel=1e-12)
    assert mae(truth, imputed, mask, normalize=False) == pytest.approx(10.5, rel=1e-12)


def test_only_missing_entries_count():
    truth, imputed, mask = _example()
    base = rmse(truth, imputed, mask)
    changed = imputed.copy()
    changed[mask == 1] = 1e6
    assert rmse(truth, changed, mask) == base
    changed[0, 0] = np.nan  # observed entries may hold anything, NaN included
    assert rmse(truth, changed, mask) == base
    assert rmse(truth, truth, mask) == 0.0


def test_matches_gain_reference_up_to_its_epsilon():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(200, 5)) * [1, 5, 10, 50, 100]
    mask = (rng.random(truth.shape) > 0.2).astype(np.float32)
    imputed = truth + rng.normal(size=truth.shape)
    # GAIN's rmse_loss: normalise with (x - min) / (max - min + 1e-6), pooled over missing entries
    lo, hi = truth.min(0), truth.max(0)
    t, i = (truth - lo) / (hi - lo + 1e-6), (imputed - lo) / (hi - lo + 1e-6)
    gain = np.sqrt(np.sum(((1 - mask) * t - (1 - mask) * i) ** 2) / np.sum(1 - mask))
    assert rmse(truth, imputed, mask) == pytest.approx(gain, rel=1e-6)


def test_constant_column_uses_unit_range():
    truth = np.array([[5.0, 0.0], [5.0, 1.0]])
    imputed = np.array([[5.5, 0.0], [5.0, 1.0]])
    mask = np.array([[0, 1], [1, 1]])
    assert rmse(truth, imputed, mask) == pytest.approx(0.5)


def test_errors():
    truth, imputed, mask = _example()
    with pytest.raises(ValueError, match="no missing entries"):
        rmse(truth, imputed, np.ones_like(mask))
    with pytest.raises(ValueError, match="same shape"):
        rmse(truth, imputed[:2], mask)
    with pytest.raises(ValueError, match="only 0"):
        mae(truth, imputed, mask * 0.5)
    bad = imputed.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="missing entry must be filled"):
        rmse(truth, bad, mask)
    with pytest.raises(ValueError, match="2-D"):
        rmse(truth.ravel(), imputed.ravel(), mask.ravel())
    assert rmse(truth.ravel(), imputed.ravel(), mask.ravel(), normalize=False) > 0


@pytest.mark.parametrize("metric", [rmse, mse, mae])
@pytest.mark.parametrize("normalize, source", [(True, "truth"), ("zscore", "truth"), (True, "observed"), (False, "truth")])
def test_images_score_as_their_flattened_rows(metric, normalize, source):
    rng = np.random.default_rng(3)
    truth = rng.random((6, 4, 3, 2)) * rng.integers(1, 50, size=(4, 3, 2))  # [N, H, W, C], per-pixel ranges differ
    mask = (rng.random(truth.shape) > 0.3).astype(np.float32)
    imputed = truth + rng.normal(size=truth.shape)
    flat = metric(truth.reshape(6, -1), imputed.reshape(6, -1), mask.reshape(6, -1), normalize=normalize, source=source)
    assert metric(truth, imputed, mask, normalize=normalize, source=source) == flat
    # Per-pixel scaling, not one global scaling and not per-channel: a hand computation on [N, 24].
    if normalize is True and source == "truth" and metric is rmse:
        t, i, m = truth.reshape(6, -1), imputed.reshape(6, -1), mask.reshape(6, -1)
        lo, hi = t.min(0), t.max(0)
        expected = np.sqrt(np.sum(((1 - m) * ((i - lo) / (hi - lo) - (t - lo) / (hi - lo))) ** 2) / np.sum(1 - m))
        assert flat == pytest.approx(expected, rel=1e-12)
        assert flat != pytest.approx(metric(truth.reshape(-1, 2), imputed.reshape(-1, 2), mask.reshape(-1, 2)), rel=1e-6)


def test_mse_is_rmse_squared_and_zscore_hand_computed():
    truth, imputed, mask = _example()
    assert mse(truth, imputed, mask) == pytest.approx(rmse(truth, imputed, mask) ** 2, rel=1e-12)
    # z-score with numpy's population std (ddof 0) of the complete columns, as MIWAE's notebooks:
    # col 0: mean 2, std sqrt(8/3); col 1: mean 20, std sqrt(200/3)
    # errors at missing entries: (3-2)/sqrt(8/3) and (10-30)/sqrt(200/3)
    expected = (1.0 / (8 / 3) + 400.0 / (200 / 3)) / 2
    assert mse(truth, imputed, mask, normalize="zscore") == pytest.approx(expected, rel=1e-12)
    assert rmse(truth, imputed, mask, normalize="zscore") == pytest.approx(np.sqrt(expected), rel=1e-12)
    with pytest.raises(ValueError, match="normalize must be"):
        rmse(truth, imputed, mask, normalize="standard")


def test_observed_statistics_differ_from_the_truths():
    truth, imputed, mask = _example()
    # Observed entries: col 0 {0, 4} (range 4, as the truth), col 1 {10, 20} (range 10, the truth's 30 is removed).
    # errors at missing entries: (3-2)/4 = 0.25 and (10-30)/10 = -2.0
    expected = np.sqrt((0.25**2 + 2.0**2) / 2)
    assert rmse(truth, imputed, mask, source="observed") == pytest.approx(expected, rel=1e-12)
    assert rmse(truth, imputed, mask, source="observed") != pytest.approx(rmse(truth, imputed, mask))
    # z-score on the observed entries of col 1: mean 15, std 5 -> error -20 / 5
    assert mse(truth, imputed, mask, normalize="zscore", source="observed") == pytest.approx((1 / 4 + 16.0) / 2, rel=1e-12)
    # When nothing observed differs in range from the truth, the two sources agree.
    full_range = np.array([[1, 1], [0, 1], [1, 1], [1, 0]], dtype=np.float32)
    t = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0], [1.0, 15.0]])
    assert rmse(t, t + 1, full_range, source="observed") == pytest.approx(rmse(t, t + 1, full_range), rel=1e-12)
    with pytest.raises(ValueError, match="source must be"):
        rmse(truth, imputed, mask, source="complete")


def test_observed_statistics_of_a_column_with_nothing_observed_are_raw():
    truth = np.array([[0.0, 10.0], [2.0, 30.0]])
    imputed = np.array([[1.0, 12.0], [2.0, 33.0]])
    mask = np.array([[0, 0], [1, 0]])
    # col 0 observed {2}: constant -> scale 1 around 2; col 1 nothing observed -> raw errors 2 and 3
    assert mae(truth, imputed, mask, source="observed") == pytest.approx((1 + 2 + 3) / 3, rel=1e-12)


def test_statistics_from_other_rows():
    truth, imputed, mask = _example()
    # Score row 1 only (col 0 missing, error 1) with the min/max of all three rows: col 0 range 4 -> 0.25.
    stats = scaling_statistics(truth)
    assert rmse(truth[1:2], imputed[1:2], mask[1:2], statistics=stats) == pytest.approx(0.25, rel=1e-12)
    # Without statistics, row 1 alone is a constant column: scale 1, raw error 1.
    assert rmse(truth[1:2], imputed[1:2], mask[1:2]) == pytest.approx(1.0, rel=1e-12)
    # The statistics of the scored rows themselves give exactly the default score.
    for normalize in (True, "zscore"):
        for source in ("truth", "observed"):
            own = scaling_statistics(truth, mask, normalize=normalize, source=source)
            assert rmse(truth, imputed, mask, normalize=normalize, statistics=own) == rmse(truth, imputed, mask, normalize=normalize, source=source)
    observed = scaling_statistics(np.where(mask == 1, truth, np.nan), mask, source="observed")
    np.testing.assert_array_equal(observed[0], [0.0, 10.0])
    np.testing.assert_array_equal(observed[1], [4.0, 10.0])
    images = np.arange(24.0).reshape(3, 2, 2, 2)
    assert scaling_statistics(images)[0].shape == (8,)
    with pytest.raises(ValueError, match="needs the mask"):
        scaling_statistics(truth, source="observed")
    with pytest.raises(ValueError, match="one per column"):
        rmse(truth, imputed, mask, statistics=(np.zeros(3), np.ones(3)))


def test_categorical_accuracy():
    truth = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": ["p", None, "q", "q"], "n": [1, 2, 3, 4]})
    imputed = pd.DataFrame({"a": ["x", "y", "x", "x"], "b": ["p", "p", "q", "p"], "n": [1, 2, 3, 4]})
    mask = np.array([[0, 0, 1], [0, 0, 1], [0, 1, 1], [1, 0, 1]])
    # scored: a0 hit, a1 hit, a2 miss, b0 hit, b1 skipped (truth missing), b3 miss -> 3/5
    assert categorical_accuracy(truth, imputed, mask) == pytest.approx(3 / 5)
    assert categorical_accuracy(truth, imputed, mask, columns=["a"]) == pytest.approx(2 / 3)
    assert categorical_accuracy(truth.to_numpy(), imputed.to_numpy(), mask, columns=[1]) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="no missing entry"):
        categorical_accuracy(truth, imputed, np.ones((4, 3)))
    with pytest.raises(ValueError, match="unknown column"):
        categorical_accuracy(truth, imputed, mask, columns=["zz"])


def test_downstream_accuracy():
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = x[:400], x[400:], y[:400], y[400:]
    acc = downstream_accuracy(xtr, ytr, xte, yte)
    assert 0.9 < acc <= 1.0
    assert downstream_accuracy(xtr, ytr, xte, yte) == acc  # deterministic
    assert 0.85 < downstream_accuracy(xtr, ytr, xte, yte, classifier="random_forest", seed=1) <= 1.0
    tree = DecisionTreeClassifier(max_depth=3)
    assert 0.8 < downstream_accuracy(xtr, ytr, xte, yte, classifier=tree) <= 1.0
    assert not hasattr(tree, "tree_")  # cloned, not fitted in place
    with pytest.raises(ValueError, match="features"):
        downstream_accuracy(xtr, ytr, xte[:, :5], yte)
    with pytest.raises(ValueError, match="y_train"):
        downstream_accuracy(xtr, ytr[:10], xte, yte)
    bad = xtr.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        downstream_accuracy(bad, ytr, xte, yte)
    with pytest.raises(ValueError, match="unknown classifier"):
        downstream_accuracy(xtr, ytr, xte, yte, classifier="svm")
