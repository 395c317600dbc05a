"""Missingness simulators: rates, determinism, the MAR formula, MNAR calibration, image masks."""
import os

import numpy as np
import pytest
from scipy.special import expit

from keraszoo.data.missingness import (
    EMFLOW_TABLE4_MAR_RATES,
    MECHANISMS,
    apply_mask,
    emflow_mar_rate,
    mar_mask,
    mar_probabilities,
    mcar_mask,
    mnar_mask,
    mnar_probabilities,
    noise_mask,
    simulate,
    square_mask,
    trapezoid_mask,
)


def _data(n=20000, d=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d))


# ------------------------------------------------------------------------------------------- MCAR
def test_mcar_rate_dtype_and_values():
    mask = mcar_mask((400, 500), 0.2, seed=0)
    assert mask.dtype == np.float32 and mask.shape == (400, 500)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert abs((1 - mask.mean()) - 0.2) < 0.005  # 200000 Bernoulli draws: sd 0.0009


def test_mcar_determinism_and_seed_dependence():
    a = mcar_mask((50, 40), 0.3, seed=7)
    assert np.array_equal(a, mcar_mask((50, 40), 0.3, seed=7))
    assert not np.array_equal(a, mcar_mask((50, 40), 0.3, seed=8))
    rng = np.random.default_rng(7)
    first, second = mcar_mask((50, 40), 0.3, seed=rng), mcar_mask((50, 40), 0.3, seed=rng)
    assert not np.array_equal(first, second)  # a Generator's stream continues


def test_mcar_zero_rate_keeps_everything():
    assert mcar_mask((10, 3), 0.0, seed=0).min() == 1.0


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), "0.2", None, True])
def test_invalid_rates_raise(rate):
    with pytest.raises(ValueError, match="rate"):
        mcar_mask((5, 5), rate, seed=0)


# -------------------------------------------------------------------------------------------- MAR
def test_mar_first_70_percent_always_observed():
    x = _data(2000, 13)
    mask = mar_mask(x, seed=1)
    n_obs = int(np.floor(0.7 * 13))  # 9
    assert mask.dtype == np.float32 and mask.shape == x.shape
    assert mask[:, :n_obs].min() == 1.0
    assert mask[:, n_obs:].min() == 0.0


def test_mar_probability_matches_sigmoid_formula():
    x = _data(30000, 10, seed=3)
    scaled = (x - x.min(0)) / (x.max(0) - x.min(0))
    p_formula = expit(scaled[:, :7].sum(axis=1))  # eq. (26): floor(0.7*10) = 7
    p, n_obs = mar_probabilities(x)
    assert n_obs == 7
    np.testing.assert_allclose(p, p_formula, rtol=1e-12)

    mask = mar_mask(x, seed=4)
    missing = 1 - mask[:, 7:]  # [rows, 3]
    # overall rate matches the mean probability
    assert abs(missing.mean() - p.mean()) < 0.01
    # and rows with higher probability lose more: compare per-decile empirical rates
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        rows = bins == b
        assert abs(missing[rows].mean() - p[rows].mean()) < 0.03
    # the last features of a row are removed independently with the same probability
    assert abs(missing[:, 0].mean() - missing[:, 2].mean()) < 0.02


def test_mar_rate_calibration():
    x = _data(20000, 10, seed=5)
    p, _ = mar_probabilities(x, rate=0.3)
    assert abs(p.mean() - 0.3) < 1e-9
    p0, _ = mar_probabilities(x)
    assert np.all(np.argsort(p, kind="stable") == np.argsort(p0, kind="stable"))  # same ordering of rows
    mask = mar_mask(x, seed=6, rate=0.3)
    assert abs((1 - mask[:, 7:]).mean() - 0.3) < 0.01
    assert mar_mask(x, seed=6, rate=0.0).min() == 1.0


def test_mar_determinism_and_errors():
    x = _data(500, 6)
    assert np.array_equal(mar_mask(x, seed=2), mar_mask(x, seed=2))
    assert not np.array_equal(mar_mask(x, seed=2), mar_mask(x, seed=3))
    with pytest.raises(ValueError, match="at least 2 features"):
        mar_mask(x[:, :1], seed=0)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="complete"):
        mar_mask(bad, seed=0)
    with pytest.raises(ValueError, match="scaling"):
        mar_mask(x, seed=0, scaling="bogus")


def test_emflow_table4_mar_rates_by_name():
    # emflow.md supplement Table 4, column "MAR missing rate", every row
    assert EMFLOW_TABLE4_MAR_RATES == {
        "news": 0.35, "air": 0.62, "letter": 0.57, "concrete": 0.50, "review": 0.49,
        "credit": 0.30, "energy": 0.39, "crop": 0.29, "song": 0.32, "wine": 0.26,
    }
    assert emflow_mar_rate("letter") == 0.57
    assert emflow_mar_rate("Credit") == 0.30
    from keraszoo.data import EMFLOW_TABLE4_MAR_RATES as exported, emflow_mar_rate as exported_fn

    assert exported is EMFLOW_TABLE4_MAR_RATES and exported_fn is emflow_mar_rate


def test_emflow_mar_rate_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'wine_sklearn'.*it lists: air, concrete, credit, crop"):
        emflow_mar_rate("wine_sklearn")  # sklearn's 178-row wine is not EMFlow's Wine Quality
    with pytest.raises(TypeError, match="name"):
        emflow_mar_rate(3)


def test_mar_literal_eq26_on_minmax_data_never_below_one_half():
    # eq. (26) on min-max data: a sum of values in [0, 1] is >= 0, so sigmoid(sum) >= 0.5 for every row,
    # hence rates below 0.5 (most of Table 4) are out of reach of the literal form.
    x = _data(5000, 10, seed=8)
    p, _ = mar_probabilities(x)  # rate=None: literal
    assert p.min() >= 0.5
    from sklearn.datasets import load_wine

    p_wine, _ = mar_probabilities(load_wine().data)
    assert p_wine.min() >= 0.5 and p_wine.mean() > 0.9  # 13 features: sum over the first 9


def test_simulate_mar_rate_none_is_the_literal_form():
    x = _data(3000, 10, seed=9)
    literal = simulate(x, "mar", rate=None, seed=3)
    assert np.array_equal(literal, mar_mask(x, seed=3, rate=None))
    p, n_obs = mar_probabilities(x)
    expected = (np.random.default_rng(3).random((3000, 10 - n_obs)) >= p[:, None]).astype(np.float32)
    assert np.array_equal(literal[:, n_obs:], expected)  # sigmoid(s_i) itself, no offset
    calibrated = simulate(x, "mar", rate=0.26, seed=3)
    assert abs((1 - calibrated[:, n_obs:]).mean() - 0.26) < 0.02
    assert (1 - literal[:, n_obs:]).mean() > 0.5


def test_mar_calibrated_to_table4_on_sklearn_wine():
    # always runs (no data dir): the calibrated form hits the target exactly in expectation
    from sklearn.datasets import load_wine

    x = load_wine().data  # 178 x 13: first 9 observed, last 4 maskable
    rate = emflow_mar_rate("wine")
    p, n_obs = mar_probabilities(x, rate=rate)
    assert n_obs == 9 and abs(p.mean() - rate) < 1e-9
    removed = np.mean([(1 - mar_mask(x, seed=s, rate=rate)[:, 9:]).mean() for s in range(20)])
    assert abs(removed - rate) < 0.02  # 20 x 712 draws: sd 0.004


def test_mar_calibrated_to_table4_on_real_letter():
    data_dir = os.environ.get("KERASZOO_DATA_DIR")
    if not data_dir or not os.path.exists(os.path.join(data_dir, "letter.csv")):
        pytest.skip("needs KERASZOO_DATA_DIR with letter.csv (e.g. KERASZOO_DATA_DIR=../shared/data)")
    from keraszoo.data import load_dataset

    x = load_dataset("letter").numeric_array()  # 20000 x 16: first 11 observed, last 5 maskable
    literal = mar_mask(x, seed=0)
    assert (1 - literal[:, 11:]).mean() > 0.95  # eq. (26) as written: 0.98, nowhere near Table 4's 0.57
    mask = mar_mask(x, seed=0, rate=emflow_mar_rate("letter"))
    assert mask[:, :11].min() == 1.0
    last = (1 - mask[:, 11:]).mean()
    assert abs(last - 0.57) < 0.01  # 100000 draws: sd 0.0016
    # the rate is that of the last 30% of features, not of all entries
    assert abs((1 - mask).mean() - 0.57 * 5 / 16) < 0.005


# ------------------------------------------------------------------------------------------- MNAR
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_mnar_rate_calibration(rate):
    x = _data(20000, 8, seed=11)
    p = mnar_probabilities(x, rate)
    assert abs(p.mean() - rate) < 1e-9
    mask = mnar_mask(x, rate, seed=12)
    assert mask.dtype == np.float32 and mask.shape == x.shape
    assert abs((1 - mask.mean()) - rate) < 0.005


def test_mnar_higher_values_more_often_missing():
    x = _data(20000, 5, seed=13)
    mask = mnar_mask(x, 0.3, seed=14)
    for j in range(x.shape[1]):
        hi = x[:, j] > np.median(x[:, j])
        assert (1 - mask[hi, j]).mean() > 2 * (1 - mask[~hi, j]).mean()
    p = mnar_probabilities(x, 0.3)
    for j in range(x.shape[1]):  # probability increases with the entry's own value
        order = np.argsort(x[:, j])
        assert np.all(np.diff(p[order, j]) >= 0)


def test_mnar_determinism():
    x = _data(300, 4)
    assert np.array_equal(mnar_mask(x, 0.2, seed=1), mnar_mask(x, 0.2, seed=1))
    assert not np.array_equal(mnar_mask(x, 0.2, seed=1), mnar_mask(x, 0.2, seed=2))


# ----------------------------------------------------------------------------------------- images
def test_square_covers_exactly_a_quarter_at_varying_positions():
    mask = square_mask((500, 28, 28), seed=0)
    assert mask.dtype == np.float32 and mask.shape == (500, 28, 28)
    missing = 1 - mask
    assert np.all(missing.sum(axis=(1, 2)) == 28 * 28 // 4)
    # one 14x14 block: its rows and columns span 14 each
    rows_hit = missing.any(axis=2).sum(axis=1)
    cols_hit = missing.any(axis=1).sum(axis=1)
    assert np.all(rows_hit == 14) and np.all(cols_hit == 14)
    tops = missing.any(axis=2).argmax(axis=1)
    lefts = missing.any(axis=1).argmax(axis=1)
    assert len(np.unique(tops)) > 10 and len(np.unique(lefts)) > 10
    assert tops.min() >= 0 and tops.max() <= 14


def test_trapezoid_covers_half_and_varies():
    mask = trapezoid_mask((400, 28, 28), seed=1)
    assert mask.dtype == np.float32 and mask.shape == (400, 28, 28)
    missing = 1 - mask
    assert np.all(missing.sum(axis=(1, 2)) == 28 * 28 // 2)  # exact by construction
    assert len({m.tobytes() for m in missing}) == 400  # every image differs
    # the shape is drawn line by line: every row (or every column, for transposed ones) is one run
    def runs_contiguous(lines):
        for line in lines:
            idx = np.flatnonzero(line)
            if idx.size and idx[-1] - idx[0] + 1 != idx.size:
                return False
        return True

    for m in missing[:100]:
        assert runs_contiguous(m) or runs_contiguous(m.T)
    # it is not a rectangle: the run lengths vary across the rows
    widths = missing.sum(axis=2)
    widths_t = missing.sum(axis=1)
    varied = [len(np.unique(w[w > 0])) > 1 or len(np.unique(wt[wt > 0])) > 1 for w, wt in zip(widths, widths_t)]
    assert np.mean(varied) > 0.95


def test_trapezoid_other_sizes():
    mask = trapezoid_mask((20, 32, 24), seed=2)
    assert np.all((1 - mask).sum(axis=(1, 2)) == round(0.5 * 32 * 24))
    with pytest.raises(ValueError, match="4x4"):
        trapezoid_mask((2, 3, 3), seed=0)
    with pytest.raises(ValueError, match="too large"):
        trapezoid_mask((2, 28, 28), seed=0, fraction=0.95)


def test_noise_removes_exactly_three_quarters():
    mask = noise_mask((300, 28, 28), seed=3)
    missing = 1 - mask
    assert np.all(missing.sum(axis=(1, 2)) == 588)
    assert not np.array_equal(missing[0], missing[1])
    # each pixel is removed with probability 3/4 across images
    assert abs(missing.mean(axis=0).mean() - 0.75) < 1e-9
    assert np.all(np.abs(missing.mean(axis=0) - 0.75) < 0.15)


def test_image_masks_broadcast_over_channels_and_are_seeded():
    images = np.zeros((6, 16, 16, 3), dtype=np.uint8)
    for fn in (square_mask, trapezoid_mask, noise_mask):
        mask = fn(images, seed=5)
        assert mask.shape == images.shape and mask.dtype == np.float32
        assert np.all(mask == mask[..., :1])
        assert np.array_equal(mask, fn(images, seed=5))
        assert not np.array_equal(mask, fn(images, seed=6))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        square_mask(np.zeros((16, 16)), seed=0)


# ------------------------------------------------------------------------------- simulate + apply
def test_simulate_dispatch_and_defaults():
    x = _data(3000, 10)
    assert np.array_equal(simulate(x, "mcar", 0.2, seed=0), mcar_mask(x.shape, 0.2, seed=0))
    assert np.array_equal(simulate(x, "MAR", seed=0), mar_mask(x, seed=0))
    assert np.array_equal(simulate(x, "mnar", 0.2, seed=0), mnar_mask(x, 0.2, seed=0))
    images = np.zeros((5, 28, 28))
    for name, frac in (("square", 0.25), ("trapezoid", 0.5), ("noise", 0.75)):
        mask = simulate(images, name, seed=0)
        assert np.allclose((1 - mask).mean(axis=(1, 2)), frac)
    assert np.allclose((1 - simulate(images, "noise", 0.5, seed=0)).mean(), 0.5)


def test_simulate_errors():
    x = _data(100, 5)
    with pytest.raises(ValueError, match="valid ones: mcar, mar, mnar, square, trapezoid, noise"):
        simulate(x, "mnr", 0.2)
    with pytest.raises(ValueError, match="rate for 'mcar' is required"):
        simulate(x, "mcar")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        simulate(x, "mcar", 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        simulate(x, "mar", 1.0)
    with pytest.raises(ValueError, match="rate for 'mnar' is required"):
        simulate(x, "mnar")
    assert set(MECHANISMS) == {"mcar", "mar", "mnar", "square", "trapezoid", "noise"}


def test_apply_mask_puts_nan_and_copies():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.ones_like(x)
    mask[1, 2] = 0
    out = apply_mask(x, mask)
    assert out.dtype == np.float32 and np.isnan(out[1, 2]) and np.isnan(out).sum() == 1
    assert not np.isnan(x).any()  # input untouched
    ints = apply_mask(np.ones((2, 2), dtype=np.uint8), np.array([[1, 0], [1, 1]]))
    assert ints.dtype == np.float64 and np.isnan(ints[0, 1])
    with pytest.raises(ValueError, match="does not match"):
        apply_mask(x, np.ones((2, 2)))
    with pytest.raises(ValueError, match="only 0"):
        apply_mask(x, np.full_like(x, 0.5))


def test_vectorised_speed_on_mnist_sized_input():
    import time

    t = time.perf_counter()
    for fn in (square_mask, trapezoid_mask, noise_mask):
        fn((10000, 28, 28), seed=0)
    assert time.perf_counter() - t < 5.0
