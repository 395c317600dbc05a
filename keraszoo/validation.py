"""Checks shared by every imputer, so all models reject bad input with the same clear messages.

Mask convention for the whole project: ``mask == 1`` means OBSERVED, ``mask == 0`` means MISSING.
Arrays handed to models hold finite numbers at observed entries; what they hold at missing entries
is ignored (NaN is allowed there and is how the scikit-learn wrapper marks missing values).
"""
import numpy as np


class ImputationInputError(ValueError):
    """Input that no imputer can use: the message names the problem."""


def check_x_mask(x, mask, n_features=None, where="impute", dtype=np.float32, example_shape=None, ranks=(2,)):
    """Validate `x` and `mask` and return them as `dtype` arrays with missing entries of `x` set to 0.

    `x` is [rows, *example_shape]: a table [rows, features] (rank 2, the default `ranks`) or, where
    `ranks` allows it, images [rows, H, W, C] (rank 4). Raises ImputationInputError naming the problem
    for: non-numeric values, shape mismatch, a rank not in `ranks`, an empty array, the wrong number
    of columns (`n_features`) or example shape (`example_shape`), a mask that is not 0/1, or a
    non-finite value at an observed entry.
    """
    x = _as_float_array(x, "x", where)
    mask = _as_float_array(mask, "mask", where)
    if x.shape != mask.shape:
        raise ImputationInputError(f"{where}: x has shape {x.shape} but mask has shape {mask.shape}; they must match")
    if x.ndim not in ranks:
        expected = " or ".join(_RANK_NAMES.get(r, f"a {r}-D array") for r in ranks)
        hint = " (add a channel axis to grayscale images: x[..., None])" if x.ndim == 3 and 4 in ranks else ""
        raise ImputationInputError(f"{where}: expected {expected}, got shape {x.shape}{hint}")
    if x.size == 0:
        raise ImputationInputError(f"{where}: input is empty (shape {x.shape})")
    if n_features is not None and x.shape[1] != n_features:
        raise ImputationInputError(f"{where}: expected {n_features} features (columns), got {x.shape[1]}")
    if example_shape is not None and tuple(x.shape[1:]) != tuple(example_shape):
        if len(example_shape) == 1 and x.ndim == 2:
            raise ImputationInputError(f"{where}: expected {example_shape[0]} features (columns), got {x.shape[1]}")
        raise ImputationInputError(f"{where}: expected examples of shape {tuple(example_shape)}, got {tuple(x.shape[1:])}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ImputationInputError(f"{where}: mask must hold only 0 (missing) and 1 (observed)")
    observed = mask == 1
    bad = observed & ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        place = f"column {first[1]}" if x.ndim == 2 else f"index {list(first)}"
        raise ImputationInputError(
            f"{where}: x has a non-finite value (NaN or inf) at an observed entry (first in {place}); "
            "mark it missing in the mask or fix the value"
        )
    return np.where(observed, x, 0.0).astype(dtype), mask.astype(dtype)


_RANK_NAMES = {2: "a 2-D array [rows, features]", 4: "a 4-D array of images [rows, H, W, C]"}


def keep_observed(x, mask, imputed):
    """Entries observed in `mask` come from `x` exactly; only missing ones from `imputed`."""
    return np.where(np.asarray(mask) == 1, np.asarray(x), np.asarray(imputed))


def _as_float_array(a, what, where):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ImputationInputError(f"{where}: {what} must be numeric ({err})") from None
    return arr
