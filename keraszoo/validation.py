"""Checks shared by every imputer, so all models reject bad input with the same clear messages.

Mask convention for the whole project: ``mask == 1`` means OBSERVED, ``mask == 0`` means MISSING.
Arrays handed to models hold finite numbers at observed entries; what they hold at missing entries
is ignored (NaN is allowed there and is how the scikit-learn wrapper marks missing values).
"""
import numpy as np


class ImputationInputError(ValueError):
    """Input that no imputer can use: the message names the problem."""


def check_x_mask(x, mask, n_features=None, where="impute", dtype=np.float32):
    """Validate `x` and `mask` and return them as `dtype` arrays with missing entries of `x` set to 0.

    Raises ImputationInputError naming the problem for: non-numeric values, shape mismatch, rank other
    than 2, an empty array, the wrong number of columns, a mask that is not 0/1, or a non-finite
    value at an observed entry.
    """
    x = _as_float_array(x, "x", where)
    mask = _as_float_array(mask, "mask", where)
    if x.shape != mask.shape:
        raise ImputationInputError(f"{where}: x has shape {x.shape} but mask has shape {mask.shape}; they must match")
    if x.ndim != 2:
        raise ImputationInputError(f"{where}: expected a 2-D array [rows, features], got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ImputationInputError(f"{where}: input is empty (shape {x.shape})")
    if n_features is not None and x.shape[1] != n_features:
        raise ImputationInputError(f"{where}: expected {n_features} features (columns), got {x.shape[1]}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ImputationInputError(f"{where}: mask must hold only 0 (missing) and 1 (observed)")
    observed = mask == 1
    bad = observed & ~np.isfinite(x)
    if bad.any():
        col = int(np.argwhere(bad)[0][1])
        raise ImputationInputError(
            f"{where}: x has a non-finite value (NaN or inf) at an observed entry (first in column {col}); "
            "mark it missing in the mask or fix the value"
        )
    return np.where(observed, x, 0.0).astype(dtype), mask.astype(dtype)


def keep_observed(x, mask, imputed):
    """Entries observed in `mask` come from `x` exactly; only missing ones from `imputed`."""
    return np.where(np.asarray(mask) == 1, np.asarray(x), np.asarray(imputed))


def _as_float_array(a, what, where):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ImputationInputError(f"{where}: {what} must be numeric ({err})") from None
    return arr
