"""MisConv's expected activation against Monte Carlo sampling and against the plain convolution."""
import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models.misconv import MisConv, expected_relu


def gaussian_case(seed=0, batch=2, size=6, channels=2, components=2, factors=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    observed = np.ones_like(x)
    observed[:, 1:4, 2:5, :] = 0.0  # a missing block
    observed[1, 5, 0, 1] = 0.0  # and a lone missing pixel
    x[observed == 0] = np.nan  # never read
    means = rng.normal(size=(batch, components, size, size, channels)).astype(np.float32)
    loadings = (0.5 * rng.normal(size=(batch, components, factors, size, size, channels))).astype(np.float32)
    diagonals = rng.uniform(0.05, 0.5, size=(batch, components, size, size, channels)).astype(np.float32)
    weights = rng.dirichlet(np.ones(components), size=batch).astype(np.float32)
    return x, observed, means, loadings, diagonals, weights


def test_expected_relu_is_the_gaussian_mean_of_relu_and_relu_at_zero_variance():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=5)
    std = rng.uniform(0.1, 2.0, size=5)
    draws = rng.normal(mean, std, size=(400_000, 5))
    monte_carlo = np.maximum(draws, 0).mean(axis=0)
    closed = expected_relu(tf.constant(mean), tf.constant(std**2)).numpy()
    np.testing.assert_allclose(closed, monte_carlo, atol=4 * (std / np.sqrt(len(draws))).max())
    at_zero = expected_relu(tf.constant([-1.0, 0.0, 2.0]), tf.zeros(3))
    np.testing.assert_array_equal(at_zero.numpy(), [0.0, 0.0, 2.0])
    with tf.GradientTape() as tape:
        variance = tf.Variable([0.0, 1.0])
        value = tf.reduce_sum(expected_relu(tf.constant([0.5, 0.5]), variance))
    assert np.isfinite(tape.gradient(value, variance).numpy()).all()


def test_misconv_equals_a_monte_carlo_estimate_over_the_mixture():
    """10^5 images drawn from the mixture (component by weight, then m + A^T z + sqrt(d) e on the missing
    pixels), each through the plain convolution and ReLU: their mean is MisConv's output."""
    x, observed, means, loadings, diagonals, weights = gaussian_case()
    layer = MisConv(filters=4, kernel_size=3, seed=3)
    exact = layer(x, observed, means, loadings, diagonals, weights).numpy()
    kernel, bias = layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)  # the reference in float64
    rng = np.random.default_rng(7)
    draws, chunk = 100_000, 5_000
    total = np.zeros_like(exact, dtype=np.float64)
    total_sq = np.zeros_like(total)
    for start in range(0, draws, chunk):
        picks = np.stack([rng.choice(means.shape[1], size=chunk, p=w) for w in weights], axis=1)  # [chunk, B]
        z = rng.normal(size=(chunk, x.shape[0], loadings.shape[2]))
        e = rng.normal(size=(chunk,) + x.shape)
        b = np.arange(x.shape[0])[None, :]
        sample = means[b, picks] + np.einsum("cbl,cblhwk->cbhwk", z, loadings[b, picks]) + np.sqrt(diagonals[b, picks]) * e
        images = np.where(observed[None] > 0, np.nan_to_num(x)[None], sample).reshape((-1,) + x.shape[1:])
        out = tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME") + bias).numpy().reshape((chunk,) + exact.shape)
        total += out.sum(0)
        total_sq += np.square(out).sum(0)
    estimate = total / draws
    standard_error = np.sqrt(np.maximum(total_sq / draws - estimate**2, 0) / draws)
    # within 5 standard errors of the estimate everywhere (plus float32's rounding of the layer)
    excess = np.abs(exact - estimate) - (5 * standard_error + 1e-5 * (1 + np.abs(estimate)))
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess.max() <= 0, (worst, exact[worst], estimate[worst], standard_error[worst])
    assert (standard_error > 0).any() and np.max(standard_error) < 0.02


def test_misconv_on_a_fully_observed_image_is_relu_of_the_convolution():
    x, observed, means, loadings, diagonals, weights = gaussian_case(seed=2)
    x = np.nan_to_num(x, nan=0.3)
    full = np.ones_like(observed)
    layer = MisConv(filters=5, kernel_size=3, strides=2, seed=1)
    got = layer(x, full, means, loadings, diagonals, weights).numpy()
    plain = tf.nn.relu(tf.nn.conv2d(x, layer.kernel, 2, "SAME") + layer.bias).numpy()
    # equal up to float32 rounding (the convolution runs on a different batch, so its summation order may differ)
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6)
    # and, with missing pixels, exactly ReLU(conv(x)) wherever the receptive field has none
    got = layer(x, observed, means, loadings, diagonals, weights).numpy()
    window_missing = tf.nn.conv2d(1.0 - observed, np.ones((3, 3, x.shape[-1], 1), np.float32), 2, "SAME").numpy()[..., 0] > 0
    np.testing.assert_allclose(got[~window_missing], plain[~window_missing], rtol=1e-6, atol=1e-6)
    assert not np.allclose(got[window_missing], plain[window_missing])


def test_every_misconv_weight_trains_and_the_layer_round_trips_its_config():
    x, observed, means, loadings, diagonals, weights = gaussian_case(seed=4)
    layer = MisConv(filters=3, seed=0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, observed, means, loadings, diagonals, weights))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == 2 and all(g is not None and np.isfinite(g.numpy()).all() and np.abs(g.numpy()).sum() > 0 for g in grads)
    clone = MisConv.from_config(layer.get_config())
    assert clone.filters == 3 and clone.kernel_size == (3, 3) and clone.padding == "SAME"
    with pytest.raises(ValueError, match="padding"):
        MisConv(padding="causal")


def test_partial_convolution_rescales_each_window_by_its_observed_share_and_is_zero_on_empty_windows():
    from keraszoo.models.misconv import PartialConv2D

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 5, 2)).astype(np.float32)
    observed = (rng.random(x.shape) > 0.4).astype(np.float32)
    observed[1, :3, :3, :] = 0.0  # the window at (1, 1) of image 1 has nothing observed
    layer = PartialConv2D(filters=3, kernel_size=3, padding="valid", seed=0)
    got = layer(np.where(observed > 0, x, np.nan), observed).numpy()  # missing values are never read
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    expected = np.zeros_like(got)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                window_mask = observed[b, i : i + 3, j : j + 3]
                if window_mask.sum() == 0:
                    continue
                value = np.einsum("hwc,hwcf->f", (x * observed)[b, i : i + 3, j : j + 3], kernel)
                expected[b, i, j] = value * window_mask.size / window_mask.sum() + bias
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.all(got[1, 0, 0] == 0)
