"""DMFA learns the density of hidden image regions: it beats mean imputation on scikit-learn's digits."""
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from keraszoo.data.missingness import square_mask
from keraszoo.models.dmfa import DMFA
from keraszoo.testing import check_every_weight_trains


def digits():
    images = load_digits().images[..., None].astype(np.float32) / 16.0  # [1797, 8, 8, 1] in [0, 1]
    return images[:1400], images[1400:]


def test_dmfa_trained_on_incomplete_digits_beats_mean_imputation_on_a_hidden_square():
    train, test = digits()
    train_mask = square_mask(train, seed=0).astype(np.float32)  # every training image lacks a 4x4 block
    model = DMFA(n_factors=4, filters=[16, 16, 16, 16], mse_warmup_steps=500, seed=0)
    model.fit_arrays(train, train_mask, iterations=2000, batch_size=48, learning_rate=1e-3)
    test_mask = square_mask(test, seed=1).astype(np.float32)
    imputed = model.impute(test, test_mask)
    hidden = test_mask == 0
    np.testing.assert_array_equal(imputed[~hidden], test[~hidden])  # observed pixels unchanged
    observed_mean = (train * train_mask).sum(0) / np.maximum(train_mask.sum(0), 1)  # per-pixel mean of the observed
    rmse = np.sqrt(np.mean((imputed[hidden] - test[hidden]) ** 2))
    mean_rmse = np.sqrt(np.mean((np.broadcast_to(observed_mean, test.shape)[hidden] - test[hidden]) ** 2))
    assert rmse < 0.85 * mean_rmse, (rmse, mean_rmse)
    # per hidden pixel, the mixture's log-density of the block beats independent per-pixel Gaussians fitted
    # to the observed training pixels (their variances floored as DMFA's diagonal is)
    nll, _, pixels = model.losses_on(tf.constant(test), tf.ones_like(test), tf.constant(1.0 - test_mask))
    variance = (train_mask * (train - observed_mean) ** 2).sum(0) / np.maximum(train_mask.sum(0), 1) + 1e-6
    z = (np.broadcast_to(observed_mean, test.shape) - test) ** 2 / np.broadcast_to(variance, test.shape)
    independent = np.mean((0.5 * (np.log(2 * np.pi * np.broadcast_to(variance, test.shape)) + z))[hidden])
    assert float(nll / pixels) < independent, (float(nll / pixels), independent)
    draws = np.asarray(model.sample_imputations(test[:5], test_mask[:5], 3))
    assert draws.shape == (3, 5, 8, 8, 1) and not np.allclose(draws[0], draws[1])
    np.testing.assert_array_equal(draws[:, ~hidden[:5]], np.broadcast_to(test[:5][~hidden[:5]], (3, int((~hidden[:5]).sum()))))


@pytest.mark.parametrize("params", [{"n_components": 2, "filters": [4, 4, 4, 4]}, {"architecture": "fullconv", "fullconv_filters": [4, 4, 4]}], ids=["linear_heads", "fullconv"])
def test_every_dmfa_weight_trains(params):
    shape = (8, 8, 1)
    model = DMFA(n_factors=2, mse_warmup_steps=2, seed=1, **params)
    check_every_weight_trains(model, shape, None)


def test_the_fullconv_variant_builds_for_32x32_images_and_rejects_sizes_it_cannot_halve():
    model = DMFA(architecture="fullconv", fullconv_filters=[4, 4, 4], n_components=2, seed=0)
    model.build((None, 32, 32, 3))
    means, factors, diagonals, log_weights = model.mixture(tf.zeros((2, 32, 32, 3)), tf.ones((2, 32, 32, 3)))
    assert means.shape == (2, 2, 3072) and factors.shape == (2, 2, 4, 3072) and log_weights.shape == (2, 2)
    assert float(tf.reduce_min(diagonals)) > 0 and float(tf.reduce_max(tf.abs(factors))) < 0.25
    with pytest.raises(ValueError, match="divide by 4"):
        DMFA(architecture="fullconv").build((None, 30, 30, 1))
    with pytest.raises(ValueError, match="architecture"):
        DMFA(architecture="unet")
