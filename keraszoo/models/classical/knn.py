"""k-nearest-neighbour imputation (Troyanskaya et al., 2001, "Missing value estimation methods for DNA
microarrays"), with the semantics of scikit-learn's ``KNNImputer(metric="nan_euclidean")``."""
import numpy as np
import tensorflow as tf

from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import register_model

# Distance entries computed per chunk of new rows; bounds memory to ~ a few hundred MB.
_CHUNK_ENTRIES = 2**24
# Entries (row x candidate x feature) per block of the direct distance computation (16 MB per array).
_DIRECT_ENTRIES = 2**21
# Distances are compared after clearing the low 20 of float64's 52 mantissa bits (keeping 32, a relative
# resolution of 2**-32 ~ 2e-10): that is monotone for values >= 0 (and keeps inf), and it makes distances
# that differ only by summation-order rounding (numpy vs TensorFlow, one CPU vs another) the same key.
# Equal keys are then ordered by training-row index, lowest first.
_TIE_DROP_BITS = 20
_TIE_MASK = np.uint64(0xFFFFFFFFFFFFFFFF ^ ((1 << _TIE_DROP_BITS) - 1))


def _tie_key(sq):
    """The distances (float64, >= 0 or inf) truncated to 32 mantissa bits; ties are equal keys."""
    sq = np.ascontiguousarray(sq, dtype=np.float64)
    return (sq.view(np.uint64) & _TIE_MASK).view(np.float64)


@register_model("knn")
class KNNImputer(ClassicalImputer):
    """Each missing entry (row i, column j) is the average of column j over the `n_neighbors` training
    rows nearest to row i among those that observe column j.

    Same result as ``sklearn.impute.KNNImputer(n_neighbors, weights).fit(train).transform(new)`` (the
    tests check this), computed here because sklearn's transform takes ~3 minutes on 30000 x 23 rows
    (one argpartition over all donors per row and missing column); this one takes one partial sort per
    row and reuses its nearest candidates for every missing column of the row.

    * distance: nan-euclidean, ``sqrt(d / n_common * sum over common observed columns of (a - b)^2)``;
    * ``weights="uniform"`` averages the neighbours, ``"distance"`` weights them by 1 / distance (a
      neighbour at distance 0 takes all the weight);
    * training rows sharing no observed column with row i are never neighbours; when no training row
      qualifies (e.g. row i has no observed value) the entry gets the column's observed training mean;
    * ties are deterministic: neighbours are ordered by distance, then by training-row index (lowest
      first), in `impute` and in `tf_impute` alike. To make "equal" mean equal, the distances that decide
      are computed directly, ``sum over common columns of (a - b)^2`` (the fast ``|a|^2 + |b|^2 - 2ab``
      matrix product only pre-selects candidates, and is checked against), and compared after truncation
      to 32 mantissa bits, so that summation-order rounding (numpy, TensorFlow, BLAS kernels of another
      CPU) cannot reorder rows at the same distance. Distances within ~2e-10 relative of each other thus
      count as tied. sklearn breaks ties arbitrarily (argpartition), so its pick may differ at ties.
    """

    contract_params = {"n_neighbors": 3, "weights": "distance"}

    def __init__(self, n_neighbors=5, weights="uniform"):
        super().__init__()
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
            raise ValueError(f"knn: n_neighbors must be a positive integer, got {n_neighbors!r}")
        if weights not in ("uniform", "distance"):
            raise ValueError(f"knn: weights must be 'uniform' or 'distance', got {weights!r}")
        self.n_neighbors = int(n_neighbors)
        self.weights = weights

    def get_config(self):
        return {"n_neighbors": self.n_neighbors, "weights": self.weights}

    def _fit(self, x, mask):
        self.fit_x_ = x  # zeros at missing entries
        self.fit_mask_ = mask
        self.column_means_ = x.sum(axis=0) / mask.sum(axis=0)
        # the three blocks of ||a - b||^2 restricted to columns observed in both, as one matrix product
        self._dist_right = np.hstack([mask, x**2, -2.0 * x]).T.copy()
        self._count_right = mask.T.astype(np.float32)  # small integer counts are exact in float32
        self._max_sq_norm = float((x**2).sum(axis=1).max())  # for the candidates' rounding bound

    def _impute(self, x, mask):
        out = np.array(x, dtype=np.float64)
        rows = np.flatnonzero((mask == 0).any(axis=1))
        n_fit = self.fit_x_.shape[0]
        chunk = max(1, _CHUNK_ENTRIES // n_fit)
        for start in range(0, rows.size, chunk):
            r = rows[start : start + chunk]
            out[r] = self._impute_rows(x[r], mask[r])
        return out

    def _candidates(self, n_fit):
        """How many nearest rows to keep per row so that nearly always >= k of them observe each column.

        Sized for the rarest 5% of columns, not the rarest one: a column that few training rows observe
        (an image region that is nearly always missing) would otherwise make every row a candidate
        (5,000 of them for MNIST's trapezoid holes). Rows short of k usable candidates in such a column
        go to `_impute_exhaustive`, which is exact."""
        observed = np.quantile(self.fit_mask_.mean(axis=0), 0.05)
        return int(min(n_fit, max(64, np.ceil(4 * self.n_neighbors / max(observed, 1.0 / n_fit)) + 16)))

    def _direct_sq(self, x, mask, donors):
        """Nan-euclidean squared distances computed term by term, ``d / n_common * sum (a - b)^2`` over
        the columns observed in both (inf when there is none), from rows ``x`` [r, d] to the training
        rows ``donors`` [r, c] (indices, per row) -> [r, c]."""
        d = self.fit_x_.shape[1]
        out = np.empty(donors.shape)
        step = max(1, _DIRECT_ENTRIES // max(1, donors.shape[1] * d))
        for start in range(0, x.shape[0], step):
            rows = slice(start, start + step)
            common = self.fit_mask_[donors[rows]] * mask[rows, None, :]
            diff = (x[rows, None, :] - self.fit_x_[donors[rows]]) * common
            count = common.sum(axis=2)
            with np.errstate(divide="ignore", invalid="ignore"):
                sq = (diff * diff).sum(axis=2) * d / count
            sq[count == 0] = np.inf
            out[rows] = sq
        return out

    def _sorted_neighbours(self, x, mask, donors):
        """``donors`` [r, c] of each row sorted by (truncated direct distance, row index), with their
        direct distances and tie keys."""
        exact = self._direct_sq(x, mask, donors)
        key = _tie_key(exact)
        order = np.lexsort((donors, key), axis=-1)  # last key first: distance, then row index
        take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
        return take(donors), take(exact), take(key)

    def _impute_rows(self, x, mask):
        n_fit, d = self.fit_x_.shape
        k = self.n_neighbors
        # fast approximate distances (one matrix product) to pre-select candidates
        count = mask.astype(np.float32) @ self._count_right  # exact small integers
        sq = np.hstack([x**2, mask, x]) @ self._dist_right
        np.maximum(sq, 0.0, out=sq)  # rounding can make it slightly negative
        with np.errstate(divide="ignore", invalid="ignore"):
            # in float64: a float32 factor would be off by ~1e-7, beyond `err` below
            sq *= np.divide(d, count, dtype=np.float64)
        sq[count == 0] = np.inf  # no common observed column: not a neighbour (sklearn: NaN distance)

        n_cand = self._candidates(n_fit)
        if n_cand < n_fit:
            cand = np.argpartition(sq, n_cand - 1, axis=1)[:, :n_cand]
            # every other training row has an approximate distance >= boundary, hence a direct one >=
            # boundary - err: |approx - direct| <= gamma_{3d} * 2 (|a|^2 + |b|^2) * d / n_common rounded
            # a few more times; `err` bounds that generously (8x, with the largest |b|^2)
            boundary = np.take_along_axis(sq, cand, axis=1).max(axis=1)
            scale = (x**2 * mask).sum(axis=1) + self._max_sq_norm
            err = 8.0 * (3 * d + 4) * np.finfo(np.float64).eps * 2.0 * scale * d
            with np.errstate(invalid="ignore"):  # inf - finite stays inf
                outside = _tie_key(np.maximum(boundary - err, 0.0))  # lower bound on the others' keys
        else:
            cand = np.broadcast_to(np.arange(n_fit), sq.shape)
        cand, cand_sq, cand_key = self._sorted_neighbours(x, mask, cand)

        out = x.copy()
        for j in range(d):
            rec = np.flatnonzero(mask[:, j] == 0)
            if rec.size == 0:
                continue
            donors = cand[rec]
            usable = (self.fit_mask_[donors, j] == 1) & np.isfinite(cand_sq[rec])
            chosen = usable & (np.cumsum(usable, axis=1) <= k)  # the k nearest usable candidates
            values = self._average(self.fit_x_[donors, j], cand_sq[rec], chosen, j)
            if n_cand < n_fit:
                # search all donors when a row outside the candidates could be among the k nearest or
                # tie with the k-th: fewer than k usable candidates while farther rows exist, or a k-th
                # key not below every outside row's lower bound
                n_chosen = chosen.sum(axis=1)
                kth = np.where(chosen, cand_key[rec], -np.inf).max(axis=1)
                redo = np.flatnonzero(
                    ((n_chosen < k) & np.isfinite(boundary[rec])) | ((n_chosen == k) & (kth >= outside[rec]))
                )
                if redo.size:
                    r = rec[redo]
                    values[redo] = self._impute_exhaustive(x[r], mask[r], sq[r], err[r], j)
            out[rec, j] = values
        return out

    def tf_impute(self, x, mask):
        """`_impute` in TensorFlow (float64 inside) for export: per column, the k nearest training rows
        observing it by exact top-k over all of them (the training rows are embedded as constants).

        Row by row (`tf.map_fn`), the distances are computed directly and truncated as in `_impute`
        (`_tie_key`), and `tf.math.top_k` puts equal values in index order, lowest first: the same
        neighbours as `impute`, whatever the batch, when given the same values (float64 tensors; spam,
        1000 rows: largest difference 6e-17). float32 tensors, as the export passes, are the values
        rounded to float32: rows tied in float64 (e.g. several at distance 0) can then be at slightly
        different distances and other neighbours chosen."""
        fitted = self._eager_constants(
            self.fit_x_,
            lambda: {
                "fit_x": self.fit_x_.astype(np.float64),
                "fit_mask": self.fit_mask_.astype(np.float64),
                "donor": self.fit_mask_.T > 0,
            },
        )
        fit_x, fit_mask, donor = fitted["fit_x"], fitted["fit_mask"], fitted["donor"]
        d = self.fit_x_.shape[1]
        k = min(self.n_neighbors, self.fit_x_.shape[0])
        tie_mask = tf.constant(int(_TIE_MASK.view(np.int64)), tf.int64)
        inf = tf.constant(np.inf, tf.float64)
        means = tf.constant(self.column_means_, tf.float64)
        uniform = self.weights == "uniform"
        fit_x_t = tf.transpose(fit_x)  # [d, n_fit]

        def one_row(args):
            xi, pi = args  # [d]
            common = fit_mask * pi[None, :]  # [n_fit, d]
            diff = (xi[None, :] - fit_x) * common
            count = tf.reduce_sum(common, axis=1)
            sq = tf.reduce_sum(diff * diff, axis=1) * d / tf.maximum(count, 1.0)
            sq = tf.where(count > 0, sq, inf)  # [n_fit]
            key = tf.bitcast(tf.bitwise.bitwise_and(tf.bitcast(sq, tf.int64), tie_mask), tf.float64)
            donor_key = tf.where(donor, key[None, :], inf)  # [d, n_fit]: rows observing each column
            neg_key, idx = tf.math.top_k(-donor_key, k=k)  # [d, k]; equal keys: lower index first
            chosen = tf.math.is_finite(neg_key)
            if uniform:
                w = tf.cast(chosen, tf.float64)
            else:
                dist = tf.sqrt(tf.where(chosen, tf.gather(sq, idx), 1.0))
                exact = chosen & (dist == 0)
                w = tf.where(
                    tf.reduce_any(exact, axis=1, keepdims=True), tf.cast(exact, tf.float64), tf.where(chosen, 1.0 / dist, 0.0)
                )
            total = tf.reduce_sum(w, axis=1)
            values = tf.gather(fit_x_t, idx, batch_dims=1)  # [d, k]: column j of its neighbours
            avg = tf.reduce_sum(w * values, axis=1) / tf.maximum(total, 1e-300)
            return tf.where(total > 0, avg, means)

        p = tf.cast(mask, tf.float64)
        x = tf.cast(x, tf.float64) * p
        out = tf.map_fn(one_row, (x, p), fn_output_signature=tf.TensorSpec([d], tf.float64))
        return tf.cast(out, mask.dtype)

    def _impute_exhaustive(self, x, mask, sq, err, j):
        """Column j of rows `x` from all training rows observing it, nearest first (ties: lowest index).

        `sq` [r, n_fit] are the approximate distances and `err` [r] their error bound: with ``A_k`` the
        k-th smallest approximate distance among the donors, the k-th smallest direct one is at most
        ``A_k + err``, so every donor at or tied with it has an approximate distance at most
        ``A_k + 2 err`` (times 1 + 2**-30 for the key's truncation). All rows at once: each row's
        `k + 32` donors nearest by approximate distance hold all those donors unless the farthest of
        them is still within that bound; only such rows are searched one by one, with every donor
        within the bound computed directly. A superset of the donors within the bound changes nothing:
        the direct distances still order them, and every row tied with the k-th is inside it.
        """
        donors = np.flatnonzero(self.fit_mask_[:, j] == 1)
        k = min(self.n_neighbors, donors.size)
        approx = sq[:, donors]
        bound = lambda a_k, i: (a_k + 2.0 * err[i]) * (1.0 + 2.0**-30)  # noqa: E731
        m = min(donors.size, k + 32)
        if m < donors.size:
            part = np.argpartition(approx, m - 1, axis=1)[:, :m]
            part_approx = np.take_along_axis(approx, part, axis=1)
        else:
            part = np.broadcast_to(np.arange(donors.size), approx.shape)
            part_approx = approx
        a_k = np.partition(part_approx, k - 1, axis=1)[:, k - 1]  # inf when fewer than k share a column
        with np.errstate(invalid="ignore"):  # inf - inf
            complete = (m == donors.size) | (part_approx.max(axis=1) > bound(a_k, np.arange(len(a_k))))
        values = np.empty(x.shape[0])
        rows = np.flatnonzero(complete)
        if rows.size:
            values[rows] = self._nearest_average(x[rows], mask[rows], donors[part[rows]], k, j)
        for i in np.flatnonzero(~complete):
            a_ki = np.partition(approx[i], k - 1)[k - 1]
            near = donors[approx[i] <= bound(a_ki, i)]
            values[i] = self._nearest_average(x[i : i + 1], mask[i : i + 1], near[None, :], k, j)[0]
        return values

    def _nearest_average(self, x, mask, donors, k, j):
        """Column j averaged over the k of `donors` [r, c] (all observing it) nearest each row by
        direct distance (ties: lowest index)."""
        near, exact, _ = self._sorted_neighbours(x, mask, donors)
        exact = exact[:, :k]
        return self._average(self.fit_x_[near[:, :k], j], exact, np.isfinite(exact), j)

    def _average(self, values, sq, chosen, j):
        """Average of `values` over `chosen` per row; rows with nothing chosen get the column mean."""
        if self.weights == "uniform":
            w = chosen.astype(np.float64)
        else:
            with np.errstate(divide="ignore"):
                w = np.where(chosen, 1.0 / np.sqrt(np.where(chosen, sq, 1.0)), 0.0)
            exact = np.isinf(w)
            hit = exact.any(axis=1)
            w[hit] = exact[hit]  # as sklearn: a neighbour at distance 0 takes all the weight
        total = w.sum(axis=1)
        avg = np.full(values.shape[0], self.column_means_[j])
        ok = total > 0
        avg[ok] = (w[ok] * values[ok]).sum(axis=1) / total[ok]
        return avg
