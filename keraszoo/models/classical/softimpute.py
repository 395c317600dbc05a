"""SoftImpute: nuclear-norm regularised matrix completion by iterative soft-thresholded SVD
(Mazumder, Hastie & Tibshirani 2010, "Spectral Regularization Algorithms for Learning Large
Incomplete Matrices", JMLR 11)."""
import numpy as np
import tensorflow as tf

from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import register_model

# Rows per batch of the inductive solve: (rows, d, rank) float64 stays around 100 MB.
_CHUNK_ENTRIES = 2**24


@register_model("matrix")
class SoftImpute(ClassicalImputer):
    """Column means plus a low-rank matrix: ``X ~ 1 mu^T + Z``, with
    ``min_{mu, Z} 1/2 ||P_obs(X - 1 mu^T - Z)||_F^2 + lambda ||Z||_*`` (mu not penalised).

    Fit (Algorithm 1 of the paper, one value of lambda): start from mu = observed column means and
    Z = 0, and repeat: fill the missing entries with ``mu + Z``, set mu to the filled matrix's column
    means and ``Z <- S_lambda(filled - mu)``, where ``S_lambda`` soft-thresholds the singular values by
    lambda (keeping at most `max_rank` of them), until ``||Z_new - Z||_F^2 / ||Z||_F^2 < tol`` or
    `max_iter` iterations. Re-centring at every step (rather than once, by the observed means) matters:
    the observed means' sampling error would otherwise add a spurious rank-one term that the
    shrinkage cannot represent well.

    `tol=1e-6` rather than a looser 1e-4: with a small lambda each step changes Z little while Z is
    still far from the optimum (a 200 x 20 rank-2 matrix, 30% missing: tol 1e-4 stops at rank 4 with
    20% error on the missing entries, 1e-5 at rank 3 with 8%, 1e-6 at rank 2 with 4.4%, the optimum
    has 4.2%). Iterations are cheap (one thin SVD): ~40 on breast cancer, well under max_iter.

    `lambda_=None` picks ``lambda = s_max / 50``, s_max the largest singular value of the
    centred, mean-filled training matrix: the default of fancyimpute's SoftImpute, a small shrinkage
    that still zeroes noise directions (the paper instead tunes lambda along a path on held-out entries).

    Impute (inductive): with ``Z = U D V^T`` the fit keeps ``B = V D^(1/2)``; a new row with observed
    columns o gets ``a = (B_o^T B_o + lambda I)^-1 B_o^T (x_o - mu_o)`` and the missing entries
    ``mu + B a``. This is the row's ridge step of the equivalent factored problem
    ``min ||P_obs(X - A B^T)||^2 + lambda (||A||^2 + ||B||^2)`` (Hastie et al. 2015, softImpute-ALS),
    which a fully observed training row solves with its own fitted row of Z. Rows with no observed
    value get mu, the column means of the completed training matrix.
    """

    contract_params = {"max_rank": 3, "max_iter": 50}

    def __init__(self, lambda_=None, max_rank=None, max_iter=100, tol=1e-6):
        super().__init__()
        if lambda_ is not None and not lambda_ >= 0:
            raise ValueError(f"matrix: lambda_ must be None or >= 0, got {lambda_!r}")
        if max_rank is not None and (isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1):
            raise ValueError(f"matrix: max_rank must be None or a positive integer, got {max_rank!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"matrix: max_iter must be a positive integer, got {max_iter!r}")
        if not tol >= 0:
            raise ValueError(f"matrix: tol must be >= 0, got {tol!r}")
        self.lambda_ = None if lambda_ is None else float(lambda_)
        self.max_rank = None if max_rank is None else int(max_rank)
        self.max_iter = int(max_iter)
        self.tol = float(tol)

    def get_config(self):
        return {"lambda_": self.lambda_, "max_rank": self.max_rank, "max_iter": self.max_iter, "tol": self.tol}

    def _fit(self, x, mask):
        observed = mask == 1
        mean = x.sum(axis=0) / mask.sum(axis=0)
        s_max = np.linalg.norm(np.where(observed, x - mean, 0.0), ord=2)
        self.shrinkage_ = s_max / 50.0 if self.lambda_ is None else self.lambda_
        z = np.zeros_like(x)
        s, vt = np.zeros(0), np.zeros((0, x.shape[1]))
        for it in range(1, self.max_iter + 1):
            filled = np.where(observed, x, mean + z)
            mean = filled.mean(axis=0)
            u, s, vt = np.linalg.svd(filled - mean, full_matrices=False)
            s = np.maximum(s - self.shrinkage_, 0.0)
            rank = int(np.count_nonzero(s))
            if self.max_rank is not None:
                rank = min(rank, self.max_rank)
            u, s, vt = u[:, :rank], s[:rank], vt[:rank]
            z_new = (u * s) @ vt
            old = np.sum(z**2)
            change = np.sum((z_new - z) ** 2) / old if old > 0 else np.inf
            z = z_new
            if change < self.tol or rank == 0:
                break
        self.n_iter_ = it
        self.rank_ = s.size
        self.mean_ = mean
        self.factor_ = vt.T * np.sqrt(s)  # B = V D^(1/2), shape (d, rank)
        # lambda = 0 leaves B_o^T B_o singular when a row observes fewer than `rank` columns
        self._ridge = max(self.shrinkage_, 1e-10 * (s[0] if s.size else 1.0))

    def _impute(self, x, mask):
        n, d = x.shape
        out = np.broadcast_to(self.mean_, (n, d)).copy()
        rank = self.rank_
        if rank == 0:
            return out
        b = self.factor_
        centred = mask * (x - self.mean_)
        chunk = max(1, _CHUNK_ENTRIES // (d * rank))
        ridge = self._ridge * np.eye(rank)
        for start in range(0, n, chunk):
            p = mask[start : start + chunk]
            bo = p[:, :, None] * b  # rows of B for unobserved columns zeroed, per row
            gram = bo.transpose(0, 2, 1) @ b + ridge  # B_o^T B_o + lambda I
            rhs = centred[start : start + chunk] @ b  # B_o^T (x_o - mu_o)
            coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
            out[start : start + chunk] += coef @ b.T
        return out

    def tf_impute(self, x, mask):
        """`_impute` in TensorFlow (float64 inside): each row's ridge fit on its observed columns, batched."""
        mean = tf.constant(self.mean_, tf.float64)
        p = tf.cast(mask, tf.float64)
        if self.rank_ == 0:
            return tf.cast(tf.broadcast_to(mean, tf.shape(p)), x.dtype)
        b = tf.constant(self.factor_, tf.float64)
        centred = p * (tf.cast(x, tf.float64) - mean)
        gram = tf.einsum("nd,dr,ds->nrs", p, b, b) + self._ridge * tf.eye(self.rank_, dtype=tf.float64)
        coef = tf.linalg.solve(gram, tf.matmul(centred, b)[:, :, None])[:, :, 0]
        return tf.cast(mean + tf.matmul(coef, b, transpose_b=True), x.dtype)
