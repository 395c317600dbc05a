"""EM for a multivariate Gaussian with missing data (Dempster, Laird & Rubin 1977; Little & Rubin,
"Statistical Analysis with Missing Data", 2nd ed., section 11.2)."""
import numpy as np
import tensorflow as tf

from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import register_model


@register_model("em")
class EMImputer(ClassicalImputer):
    """Fits mean `mu_` and covariance `cov_` of a Gaussian to incomplete rows by EM, and imputes each
    row's missing block m by its conditional mean ``mu_m + S_mo S_oo^-1 (x_o - mu_o)``.

    E-step: per row, that conditional mean, and the conditional covariance
    ``S_mm - S_mo S_oo^-1 S_om`` added to the expected second moment. M-step: mean and (1/n)
    covariance of the completed rows plus those conditional covariances, plus `reg` on the diagonal
    (keeps S invertible when columns are collinear or constant). Starts from the observed means and
    the covariance of the mean-filled data; stops when the mean observed-data log-likelihood per row
    changes by less than `tol` (`loglik_` records it), or after `max_iter` iterations.

    Vectorised through the precision matrix K = S^-1 (Schur complement identities):
    ``S_mm - S_mo S_oo^-1 S_om = (K_mm)^-1`` and ``S_mo S_oo^-1 (x_o - mu_o) = -(K_mm)^-1 K_mo (x_o - mu_o)``,
    so each row only inverts its small missing block, batched over the rows with the same number of
    missing values (one d x d inverse per iteration instead of one per row: 30000 x 23 runs ~10x faster).
    """

    contract_params = {"max_iter": 50, "tol": 1e-5, "reg": 1e-5}

    def __init__(self, max_iter=100, tol=1e-6, reg=1e-6):
        super().__init__()
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"em: max_iter must be a positive integer, got {max_iter!r}")
        if not tol >= 0:
            raise ValueError(f"em: tol must be >= 0, got {tol!r}")
        if not reg >= 0:
            raise ValueError(f"em: reg must be >= 0, got {reg!r}")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.reg = float(reg)

    def get_config(self):
        return {"max_iter": self.max_iter, "tol": self.tol, "reg": self.reg}

    def _fit(self, x, mask):
        n, d = x.shape
        ridge = self.reg * np.eye(d)
        mu = x.sum(axis=0) / mask.sum(axis=0)
        cov = np.cov(np.where(mask == 1, x, mu), rowvar=False, bias=True).reshape(d, d) + ridge
        self.loglik_ = []
        for _ in range(self.max_iter):
            completed, cond_cov, loglik = self._e_step(x, mask, mu, cov, stats=True)
            self.loglik_.append(loglik / n)
            mu = completed.mean(axis=0)
            dev = completed - mu
            cov = (dev.T @ dev + cond_cov) / n
            cov = (cov + cov.T) / 2 + ridge  # symmetric against rounding
            if len(self.loglik_) > 1 and abs(self.loglik_[-1] - self.loglik_[-2]) < self.tol:
                break
        self.n_iter_ = len(self.loglik_)
        self.mu_ = mu
        self.cov_ = cov

    def _impute(self, x, mask):
        return self._e_step(x, mask, self.mu_, self.cov_, stats=False)[0]

    def tf_impute(self, x, mask):
        """The same conditional mean in TensorFlow (float64 inside), one batched solve for all rows.

        Per row, A = P S P + (I - P) with P = diag(observed) is S_oo on the observed block and the
        identity elsewhere, so A y = P (x - mu) gives y_o = S_oo^-1 (x_o - mu_o), y_m = 0, and
        mu + S y is mu_m + S_mo S_oo^-1 (x_o - mu_o) on the missing entries.
        """
        mu = tf.constant(self.mu_, tf.float64)
        cov = tf.constant(self.cov_, tf.float64)
        p = tf.cast(mask, tf.float64)
        resid = p * (tf.cast(x, tf.float64) - mu)
        a = p[:, :, None] * cov * p[:, None, :] + tf.linalg.diag(1.0 - p)
        y = tf.linalg.solve(a, resid[:, :, None])[:, :, 0]
        return tf.cast(mu + tf.linalg.matvec(cov, y), x.dtype)

    @staticmethod
    def _e_step(x, mask, mu, cov, stats):
        """Rows completed by their conditional means; with `stats`, also the sum of the rows'
        conditional covariances (d x d) and the observed-data log-likelihood."""
        n, d = x.shape
        prec = np.linalg.inv(cov)
        missing = mask == 0
        n_missing = missing.sum(axis=1)
        resid = np.where(missing, 0.0, x - mu)  # x_o - mu_o, zero on the missing block
        prec_resid = resid @ prec  # (K r)_j for every j; K symmetric
        completed = np.where(missing, 0.0, x)
        cond_cov = np.zeros(d * d)
        loglik = 0.0
        if stats:
            _, logdet_cov = np.linalg.slogdet(cov)
            # -1/2 r^T K r: the whole quadratic form when nothing is missing; corrected per block below
            quad = np.einsum("ni,ni->", resid, prec_resid)
            loglik = -0.5 * (mask.sum() * np.log(2 * np.pi) + n * logdet_cov + quad)
        for k in np.unique(n_missing):
            if k == 0:
                continue
            rows = np.flatnonzero(n_missing == k)
            idx = np.nonzero(missing[rows])[1].reshape(rows.size, k)  # missing columns, row by row
            block = prec[idx[:, :, None], idx[:, None, :]]  # K_mm, (rows, k, k)
            block_inv = np.linalg.inv(block)  # conditional covariance of x_m given x_o
            g = np.take_along_axis(prec_resid[rows], idx, axis=1)  # K_mo (x_o - mu_o)
            shift = np.einsum("nij,nj->ni", block_inv, g)
            completed[rows[:, None], idx] = mu[idx] - shift
            if stats:
                flat = (idx[:, :, None] * d + idx[:, None, :]).ravel()
                cond_cov += np.bincount(flat, weights=block_inv.ravel(), minlength=d * d)
                # log det S_oo = log det S + log det K_mm; r^T S_oo^-1 r = r^T K r - g^T K_mm^-1 g
                _, logdet_block = np.linalg.slogdet(block)
                loglik -= 0.5 * (logdet_block.sum() - np.einsum("ni,ni->", g, shift))
        return completed, cond_cov.reshape(d, d), loglik
