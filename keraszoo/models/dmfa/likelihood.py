"""The Gaussian log-density that DMFA is trained with, in O(D l^2) (reference-implementations.md A1.2).

Component i of DMFA's prediction is N(m_i, A_i^T A_i + diag(d_i)) over the D pixels, with l factor
rows in A_i [l, D] and d_i > 0. Its density over a subset S of the pixels (those in the loss) is the
same form restricted to S, and with the capacitance matrix L = I_l + A_S D_S^-1 A_S^T:

    Woodbury:                 Σ_S^-1 = D_S^-1 - D_S^-1 A_S^T L^-1 A_S D_S^-1
    matrix determinant lemma: log |Σ_S| = log |L| + sum_S log d

(Richardson & Weiss 2018, eqs. 4 and 6, which the DMFA code cites). Restricting to S needs no gather:
the residual and D^-1 are multiplied by the subset's 0/1 indicator, which zeroes every term outside S,
so subsets of different sizes share one batch. A mixture's log-density is the log-sum-exp over
components of log p_i + log N_i (the authors' code sums p_i NLL_i instead, an upper bound; the notes
record it and we use the exact form).

The arithmetic runs in float64 whatever the inputs' dtype: with d near its floor (1e-6) and factor
entries up to 0.25, L's entries and both terms of the Woodbury quadratic reach 1e6-1e8, and float32
would lose the difference between them (or L's positive definiteness) to rounding. The tensors are
[B, K, l, D], small beside the network that predicts them, so the cost is negligible.
"""
import math

import tensorflow as tf

_LOG_2PI = math.log(2.0 * math.pi)


def component_log_density(x, means, factors, diagonals, subset):
    """log N(x_S; m_S, A_S^T A_S + diag(d_S)) per example and component.

    x [B, D]; means, diagonals [B, K, D]; factors [B, K, l, D]; subset [B, D] (1 where the entry is in
    S). Returns [B, K] in the dtype of `means`; an example whose subset is empty gets 0 (the density of
    nothing)."""
    dtype = means.dtype
    x, means, factors, diagonals = (tf.cast(t, tf.float64) for t in (x, means, factors, diagonals))  # see the module docstring
    subset = tf.cast(subset, tf.float64)[:, None]  # [B, 1, D]
    residual = tf.where(subset > 0, x[:, None] - means, tf.zeros_like(means))  # x may be NaN outside S
    inverse_d = subset / diagonals  # D_S^-1, 0 outside S
    scaled_factors = factors * inverse_d[:, :, None]  # A D^-1: [B, K, l, D]
    n_factors = tf.shape(factors)[2]
    capacitance = tf.eye(n_factors, dtype=means.dtype) + tf.einsum("bkld,bkmd->bklm", scaled_factors, factors)
    chol = tf.linalg.cholesky(capacitance)
    projected = tf.einsum("bkld,bkd->bkl", scaled_factors, residual)[..., None]  # A D^-1 r
    solved = tf.linalg.cholesky_solve(chol, projected)[..., 0]
    quadratic = tf.reduce_sum(tf.square(residual) * inverse_d, -1) - tf.reduce_sum(projected[..., 0] * solved, -1)
    log_det = 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)), -1) + tf.reduce_sum(subset * tf.math.log(diagonals), -1)
    size = tf.reduce_sum(subset, -1)
    return tf.cast(-0.5 * (quadratic + log_det + size * _LOG_2PI), dtype)


def mixture_log_density(x, means, factors, diagonals, subset, log_weights=None):
    """log p(x_S) under the mixture (log-sum-exp over components), [B]. log_weights [B, K] (None: one
    component, or equal weights)."""
    per_component = component_log_density(x, means, factors, diagonals, subset)
    if log_weights is None:
        log_weights = -tf.math.log(tf.cast(tf.shape(per_component)[1], per_component.dtype)) * tf.ones_like(per_component)
    return tf.reduce_logsumexp(log_weights + per_component, axis=1)
