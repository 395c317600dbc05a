"""Imputation metrics following the GAIN / G2LGN protocol (mask == 1 OBSERVED, 0 MISSING).

:func:`rmse`, :func:`mse` and :func:`mae` score only the MISSING entries, pooled over every missing
entry: ``sqrt(sum of squared errors / number of missing entries)`` for :func:`rmse`, the same without
the root for :func:`mse`, the mean absolute error for :func:`mae`.

Scaling (``normalize``), applied to ``truth`` and ``imputed`` alike, per column, before the error:

* ``True`` or ``"minmax"`` (the default) -- min-max: ``(v - min) / (max - min)``. With the default
  ``source="truth"`` min and max are the TRUTH's over all rows, as GAIN's reference ``rmse_loss``
  does. One deliberate difference from GAIN's code: GAIN divides by ``max - min + 1e-6``; here the
  divisor is exactly ``max - min``, with 1 for constant columns (so they contribute their raw error).
  The epsilon only matters for columns with a tiny range, where it would silently shrink their errors.
* ``"zscore"`` -- ``(v - mean) / std`` with the column's mean and population standard deviation
  (``numpy.std``, ddof = 0), as MIWAE's notebooks standardise the complete data before masking them
  (their MSE is in these units); a constant column gets std 1.
* ``False`` or ``"none"`` -- raw values.

``source`` says which entries the statistics come from: ``"truth"`` (every entry of the complete
data, GAIN's RMSE and MIWAE's z-score) or ``"observed"`` (only the entries with ``mask == 1``, what an
imputer that never sees the removed values could compute; e.g. GAIN's own data normalisation, which
uses nanmin / nanmax of the incomplete table). A column without any observed entry has no observed
statistics: it is scaled with offset 0 and scale 1 (raw), like a constant column.
:func:`scaling_statistics` computes those statistics from other rows, and ``statistics=`` passes them
in: a benchmark scoring 20% test rows can scale them with the statistics of the whole table.

Examples of any rank: arrays ``[N, d1, d2, ...]`` (e.g. images ``[N, H, W, C]`` with a mask of the
same shape) are flattened to one row per example, ``[N, d1 * d2 * ...]``, before anything else, so
each pixel (and channel) is a column and the result for an N-D input equals the result for its
flattened 2-D form. Scaling needs at least 2-D input (rows and features); 1-D input is accepted only
with ``normalize=False``.
"""
import numpy as np
import pandas as pd

#: Accepted values of ``normalize`` (besides ``True`` = "minmax" and ``False`` = "none").
SCALINGS = ("minmax", "zscore", "none")
#: Accepted values of ``source``.
SOURCES = ("truth", "observed")


def _float_array(a, what, where):
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {what} must be numeric ({err})") from None


def _scaling(normalize, where):
    if normalize is True:
        return "minmax"
    if normalize is False or normalize is None:
        return "none"
    if isinstance(normalize, str) and normalize in SCALINGS:
        return normalize
    raise ValueError(f"{where}: normalize must be True, False or one of {', '.join(SCALINGS)}; got {normalize!r}")


def scaling_statistics(values, mask=None, normalize=True, source="truth"):
    """Per-column ``(offset, scale)`` that :func:`rmse`, :func:`mse` and :func:`mae` apply with
    ``normalize`` (``v -> (v - offset) / scale``), computed from ``values`` ``[N, ...]`` (flattened to
    ``[N, -1]``): from every entry (``source="truth"``), or from the entries with ``mask == 1``
    (``source="observed"``, ``mask`` required; NaN in ``values`` at missing entries is fine then).
    Pass the result as ``statistics=`` to score other rows with these statistics. ``normalize=False``
    gives offset 0 and scale 1."""
    where = "scaling_statistics"
    scaling = _scaling(normalize, where)
    if source not in SOURCES:
        raise ValueError(f"{where}: source must be one of {', '.join(SOURCES)}; got {source!r}")
    values = _float_array(values, "values", where)
    if values.ndim < 2:
        raise ValueError(f"{where}: values must be at least 2-D [examples, features, ...], got shape {values.shape}")
    values = values.reshape(values.shape[0], -1)
    if mask is None:
        if source == "observed":
            raise ValueError(f"{where}: source='observed' needs the mask")
        mask = np.ones_like(values)
    else:
        mask = _float_array(mask, "mask", where).reshape(values.shape[0], -1)
        if mask.shape != values.shape:
            raise ValueError(f"{where}: mask {mask.shape} and values {values.shape} must have the same shape")
    if source == "truth" and not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: with source='truth' the values must be complete and finite")
    if scaling == "none":
        return np.zeros(values.shape[1]), np.ones(values.shape[1])
    return _column_stats(values, mask, scaling, source)


def _column_stats(truth, mask, scaling, source):
    """Per-column (offset, scale) of `scaling` computed on `truth` (all entries) or its observed entries."""
    if source == "truth":
        values = truth
    else:
        values = np.where(mask == 1, truth, np.nan)
    seen = ~np.all(np.isnan(values), axis=0)  # always true for source="truth"
    safe = np.where(seen, values, 0.0) if not seen.all() else values
    if scaling == "minmax":
        lo = np.nanmin(safe, axis=0)
        span = np.nanmax(safe, axis=0) - lo
    else:  # zscore
        lo = np.nanmean(safe, axis=0)
        span = np.nanstd(safe, axis=0)
    lo = np.where(seen, lo, 0.0)
    span = np.where(seen & (span != 0), span, 1.0)
    return lo, span


def _prepare(truth, imputed, mask, normalize, where, source="truth", statistics=None):
    truth = _float_array(truth, "truth", where)
    imputed = _float_array(imputed, "imputed", where)
    mask = _float_array(mask, "mask", where)
    scaling = _scaling(normalize, where)
    if source not in SOURCES:
        raise ValueError(f"{where}: source must be one of {', '.join(SOURCES)}; got {source!r}")
    if truth.shape != imputed.shape or truth.shape != mask.shape:
        raise ValueError(
            f"{where}: truth {truth.shape}, imputed {imputed.shape} and mask {mask.shape} must have the same shape"
        )
    if scaling != "none" and truth.ndim < 2:
        raise ValueError(
            f"{where}: normalize={normalize!r} needs arrays of at least 2-D [examples, features, ...], got shape {truth.shape}"
        )
    if truth.ndim > 2:  # one row per example: [N, d1, d2, ...] -> [N, d1 * d2 * ...]
        n = truth.shape[0]
        truth, imputed, mask = truth.reshape(n, -1), imputed.reshape(n, -1), mask.reshape(n, -1)
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{where}: mask must hold only 0 (missing) and 1 (observed)")
    missing = mask == 0
    if not missing.any():
        raise ValueError(f"{where}: the mask has no missing entries (mask == 0), so there is nothing to score")
    if not np.all(np.isfinite(truth)):
        raise ValueError(f"{where}: truth must be complete and finite (it is the ground truth)")
    if not np.all(np.isfinite(imputed[missing])):
        raise ValueError(f"{where}: imputed holds NaN or inf at a missing entry; every missing entry must be filled")
    if statistics is not None:
        lo, span = (np.asarray(v, dtype=np.float64).reshape(-1) for v in statistics)
        if lo.shape != (truth.shape[1],) or span.shape != (truth.shape[1],):
            raise ValueError(f"{where}: statistics must be two vectors of {truth.shape[1]} values (one per column), "
                             f"got {lo.shape} and {span.shape}")
        if scaling == "none":
            raise ValueError(f"{where}: statistics= given with normalize={normalize!r}; pass the normalize they were computed with")
        truth = (truth - lo) / span
        imputed = (imputed - lo) / span
    elif scaling != "none":
        lo, span = _column_stats(truth, mask, scaling, source)
        truth = (truth - lo) / span
        imputed = (imputed - lo) / span
    err = np.where(missing, imputed, 0.0) - np.where(missing, truth, 0.0)
    return err, missing


def rmse(truth, imputed, mask, normalize=True, source="truth", statistics=None):
    """Root mean squared error over the missing entries (``mask == 0``), pooled over all of them.

    ``truth``: the complete data; ``imputed``: the imputation (only its missing entries are read, so
    observed entries may hold anything, NaN included); ``mask``: 1 observed, 0 missing; all three of
    one shape ``[N, ...]`` (N-D examples are flattened to rows, see the module doc). ``normalize``:
    ``True``/``"minmax"`` (default: the truth's per-column min and max, GAIN's), ``"zscore"``, or
    ``False``/``"none"`` (raw values, any shape); ``source``: ``"truth"`` (default) or ``"observed"``,
    the entries the scaling statistics come from (see the module doc); ``statistics``: an
    ``(offset, scale)`` pair from :func:`scaling_statistics` to use instead of computing them here
    (``source`` is then ignored). Raises ``ValueError`` when nothing is missing or shapes differ.
    """
    err, missing = _prepare(truth, imputed, mask, normalize, "rmse", source, statistics)
    return float(np.sqrt(np.sum(err**2) / np.sum(missing)))


def mse(truth, imputed, mask, normalize=True, source="truth", statistics=None):
    """Mean squared error over the missing entries (:func:`rmse` squared, same conventions).

    MIWAE's notebooks report this with ``normalize="zscore"``: the z-score of the complete data."""
    err, missing = _prepare(truth, imputed, mask, normalize, "mse", source, statistics)
    return float(np.sum(err**2) / np.sum(missing))


def mae(truth, imputed, mask, normalize=True, source="truth", statistics=None):
    """Mean absolute error over the missing entries, with the same conventions as :func:`rmse`."""
    err, missing = _prepare(truth, imputed, mask, normalize, "mae", source, statistics)
    return float(np.sum(np.abs(err)) / np.sum(missing))


def categorical_accuracy(truth, imputed, mask, columns=None):
    """Fraction of missing categorical entries recovered exactly (``imputed == truth``).

    Works on any values (strings, ints, pandas categories); arrays or DataFrames of equal shape.
    ``columns`` optionally restricts the scoring to some columns (integer positions, or names when
    ``truth`` is a DataFrame). Entries whose TRUTH is itself missing (None/NaN, e.g. adult's "?") are
    not scored. Raises ``ValueError`` when no entry is left to score.
    """
    names = list(truth.columns) if isinstance(truth, pd.DataFrame) else None
    t = np.asarray(truth, dtype=object)
    i = np.asarray(imputed, dtype=object)
    m = _float_array(mask, "mask", "categorical_accuracy")
    if t.shape != i.shape or t.shape != m.shape:
        raise ValueError(
            f"categorical_accuracy: truth {t.shape}, imputed {i.shape} and mask {m.shape} must have the same shape"
        )
    if not np.all((m == 0) | (m == 1)):
        raise ValueError("categorical_accuracy: mask must hold only 0 (missing) and 1 (observed)")
    if columns is not None:
        if t.ndim != 2:
            raise ValueError("categorical_accuracy: columns= needs 2-D data")
        idx = []
        for c in columns:
            if isinstance(c, (int, np.integer)):
                idx.append(int(c))
            elif names is not None and c in names:
                idx.append(names.index(c))
            else:
                raise ValueError(f"categorical_accuracy: unknown column {c!r}")
        t, i, m = t[:, idx], i[:, idx], m[:, idx]
    scored = (m == 0) & ~pd.isna(t)
    n = int(scored.sum())
    if n == 0:
        raise ValueError("categorical_accuracy: no missing entry with a known true value to score")
    hits = np.frompyfunc(lambda a, b: bool(a == b), 2, 1)(t[scored], i[scored]).astype(bool)
    return float(hits.sum() / n)


def downstream_accuracy(x_imputed_train, y_train, x_imputed_test, y_test, classifier=None, seed=0):
    """Test accuracy of a classifier fitted on imputed training data (GAIN's prediction protocol).

    ``classifier``: ``None`` or ``"logistic"`` -- standardisation followed by scikit-learn's
    ``LogisticRegression(max_iter=1000)``; ``"random_forest"`` -- ``RandomForestClassifier(
    n_estimators=100)``; or any scikit-learn classifier, which is cloned (never fitted in place).
    ``seed`` sets ``random_state`` where the estimator has one. Inputs must be complete (finite);
    returns a float in [0, 1].
    """
    from sklearn.base import clone
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    where = "downstream_accuracy"
    xtr = _float_array(x_imputed_train, "x_imputed_train", where)
    xte = _float_array(x_imputed_test, "x_imputed_test", where)
    ytr = np.asarray(y_train).ravel() if np.ndim(y_train) == 2 and np.shape(y_train)[1] == 1 else np.asarray(y_train)
    yte = np.asarray(y_test).ravel() if np.ndim(y_test) == 2 and np.shape(y_test)[1] == 1 else np.asarray(y_test)
    for name, x in (("x_imputed_train", xtr), ("x_imputed_test", xte)):
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{where}: {name} must be a non-empty 2-D array [rows, features], got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{where}: {name} holds NaN or inf; impute every missing entry first")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"{where}: train has {xtr.shape[1]} features but test has {xte.shape[1]}")
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{where}: y_{name} must be 1-D with {x.shape[0]} labels (one per row), got shape {y.shape}")
    if np.unique(ytr).size < 2:
        raise ValueError(f"{where}: y_train has a single class; a classifier needs at least two")

    if classifier is None or classifier == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    elif classifier == "random_forest":
        model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1)
    elif isinstance(classifier, str):
        raise ValueError(f"{where}: unknown classifier {classifier!r}; use 'logistic', 'random_forest' or an estimator")
    else:
        model = clone(classifier)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
    model.fit(xtr, ytr)
    return float(accuracy_score(yte, model.predict(xte)))
