"""The Woodbury / determinant-lemma log-density against TFP's dense multivariate normal."""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keraszoo.models.dmfa import component_log_density, mixture_log_density

tfd = tfp.distributions


def small_case(seed=0, batch=3, components=2, factors=3, dims=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dims))
    means = rng.normal(size=(batch, components, dims))
    loadings = rng.normal(size=(batch, components, factors, dims))
    diagonals = rng.uniform(0.1, 1.0, size=(batch, components, dims))
    subset = (rng.random((batch, dims)) < 0.6).astype(np.float64)
    subset[0] = 1.0  # every entry
    subset[1, :] = 0.0
    subset[1, [2, 7]] = 1.0  # two entries
    return x, means, loadings, diagonals, subset


def dense_log_density(x, means, loadings, diagonals, subset):
    out = np.zeros(means.shape[:2])
    for b in range(x.shape[0]):
        keep = subset[b] > 0
        for k in range(means.shape[1]):
            a = loadings[b, k][:, keep]
            covariance = a.T @ a + np.diag(diagonals[b, k][keep])
            out[b, k] = tfd.MultivariateNormalFullCovariance(means[b, k][keep], covariance).log_prob(x[b][keep]).numpy()
    return out


def test_the_woodbury_log_density_equals_the_dense_one_on_any_subset():
    x, means, loadings, diagonals, subset = small_case()
    x_nan = np.where(subset > 0, x, np.nan)  # entries outside the subset are never read
    got = component_log_density(tf.constant(x_nan), tf.constant(means), tf.constant(loadings), tf.constant(diagonals), tf.constant(subset)).numpy()
    np.testing.assert_allclose(got, dense_log_density(x, means, loadings, diagonals, subset), rtol=1e-9, atol=1e-9)
    empty = component_log_density(tf.constant(x[:1]), tf.constant(means[:1]), tf.constant(loadings[:1]), tf.constant(diagonals[:1]), tf.zeros((1, 10), tf.float64))
    np.testing.assert_allclose(empty.numpy(), 0.0, atol=1e-12)


def test_the_mixture_is_a_log_sum_exp_over_weighted_components():
    x, means, loadings, diagonals, subset = small_case(seed=1)
    weights = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    got = mixture_log_density(*(tf.constant(v) for v in (x, means, loadings, diagonals, subset)), log_weights=tf.constant(np.log(weights))).numpy()
    dense = dense_log_density(x, means, loadings, diagonals, subset)
    np.testing.assert_allclose(got, np.log(np.sum(weights * np.exp(dense), axis=1)), rtol=1e-9)
    one = mixture_log_density(*(tf.constant(v[:, :1] if v.ndim > 2 else v) for v in (x, means, loadings, diagonals, subset))).numpy()
    np.testing.assert_allclose(one, dense[:, 0], rtol=1e-9)


def test_float32_inputs_at_the_diagonal_floor_keep_float64_accuracy():
    """DMFA's outputs are float32; with d at its 1e-6 floor and factor entries at their 0.25 bound the
    Woodbury terms reach ~1e8 and float32 arithmetic would lose their difference (module docstring)."""
    rng = np.random.default_rng(2)
    dims = 200
    loadings = rng.choice([-0.25, 0.25], size=(2, 1, 4, dims)) * rng.uniform(0.9, 1.0, size=(2, 1, 4, dims))
    diagonals = np.full((2, 1, dims), 1e-6)
    means = rng.uniform(0, 1, size=(2, 1, dims))
    # a likely x: the mean plus a factor draw plus noise of the diagonal's size
    x = means[:, 0] + np.einsum("bl,bld->bd", rng.normal(size=(2, 4)), loadings[:, 0]) + 1e-3 * rng.normal(size=(2, dims))
    subset = np.ones((2, dims))
    as32 = [tf.constant(v, tf.float32) for v in (x, means, loadings, diagonals, subset)]
    got = component_log_density(*as32)
    assert got.dtype == tf.float32
    exact = component_log_density(*(tf.constant(np.asarray(t.numpy(), np.float64)) for t in as32)).numpy()  # the same float32 values, in float64
    np.testing.assert_allclose(got.numpy(), exact, rtol=1e-6)
    np.testing.assert_allclose(exact, dense_log_density(*(np.asarray(t.numpy(), np.float64) for t in as32)), rtol=1e-6)
