"""Online EM for a Gaussian with missing entries (emflow.md Sec. 3.3 and supplement 6.1), in graph mode.

The latent rows z [B, p] are complete, but entry j of row i counts as missing where x_ij is (eq. 11).
`conditional_gaussian` gives eq. 18's conditional mean (the imputation of eqs. 5 and 12) and conditional
covariance of each row's missing block; `batch_statistics` the batch's expected sufficient statistics
(eqs. 21 and 23: the mean of z-hat and the mean of z-hat z-hat^T + Sigma-tilde); `moving_average` the
online update of eq. 7 with rho_t = C t^-gamma (eq. 9).

Every row has its own missing pattern, so its observed block is solved on its own. The batch is done at
once with one batched Cholesky of [B, p, p]: row i's matrix is Sigma with the rows and columns of its
missing entries replaced by the identity's, which is Sigma_oo padded with an identity block, so that
solving it with a right-hand side that is zero at the missing entries is solving with Sigma_oo.
"""
import tensorflow as tf


def regularised(covariance, beta=0.0, jitter=1e-5):
    """emflow.md eq. 15's robust covariance Sigma + beta Diag(Sigma), plus a ridge of `jitter` times the
    mean variance (keeps the Cholesky factorisations defined when a batch is smaller than p)."""
    diagonal = tf.linalg.diag_part(covariance)
    ridge = beta * diagonal + jitter * tf.reduce_mean(diagonal)
    return covariance + tf.linalg.diag(ridge)


def conditional_gaussian(z, observed, mean, covariance, with_covariance=True):
    """(z-hat [B, p], Sigma-tilde [B, p, p] or None): eq. 18 for each row of z under N(mean, covariance).

    z-hat keeps z's observed entries (`observed` 1) and holds the conditional mean
    mu_m + Sigma_mo Sigma_oo^-1 (z_o - mu_o) at the others (eq. 5); Sigma-tilde is the conditional
    covariance Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om of the missing block, zero elsewhere (the p x p
    form of eq. 20). A row with nothing observed gets mean and covariance.
    """
    o = observed
    m = 1.0 - o
    padded = o[:, :, None] * o[:, None, :] * covariance[None] + tf.linalg.diag(m)  # Sigma_oo (+) I, per row
    chol = tf.linalg.cholesky(padded)
    residual = (o * (z - mean))[..., None]  # [B, p, 1], zero at missing entries
    weights = tf.linalg.cholesky_solve(chol, residual)  # Sigma_oo^-1 (z_o - mu_o), zero at missing entries
    conditional_mean = mean + tf.matmul(weights[..., 0], covariance, transpose_b=True)
    z_hat = tf.where(o > 0, z, conditional_mean)
    if not with_covariance:
        return z_hat, None
    cross = covariance[None] * o[:, None, :]  # Sigma_{., o}: the columns of observed entries
    solved = tf.linalg.cholesky_solve(chol, tf.transpose(cross, [0, 2, 1]))  # Sigma_oo^-1 Sigma_{o, .}
    conditional = covariance[None] - tf.matmul(cross, solved)
    conditional = conditional * m[:, :, None] * m[:, None, :]
    return z_hat, conditional


def batch_statistics(z_hat, conditional_covariance):
    """(sum of z-hat [p], sum of z-hat z-hat^T + Sigma-tilde [p, p]): eq. 21's sums over the batch's
    rows, to be divided by the (global) number of rows (eq. 23's expected sufficient statistics)."""
    second = tf.matmul(z_hat, z_hat, transpose_a=True)
    if conditional_covariance is not None:
        second = second + tf.reduce_sum(conditional_covariance, axis=0)
    return tf.reduce_sum(z_hat, axis=0), second


def moments(first_sum, second_sum, count):
    """(mean, covariance) from summed statistics over `count` rows: E[z] and E[z z^T] - E[z] E[z]^T."""
    mean = first_sum / count
    covariance = second_sum / count - mean[:, None] * mean[None, :]
    return mean, 0.5 * (covariance + tf.transpose(covariance))


def step_size(t, scale=0.99, power=0.8):
    """rho_t = C t^-gamma of eq. 9 (t = 1, 2, ...)."""
    return scale * tf.pow(t, -power)


def moving_average(old, new, rho):
    """Eq. 7: rho * new + (1 - rho) * old."""
    return rho * new + (1.0 - rho) * old
