"""Min-max scaling fitted on OBSERVED entries only (mask == 1 means observed)."""
import numpy as np

from keraszoo.validation import check_x_mask


class MinMaxScaler:
    """Per-column min-max scaling to [0, 1] whose statistics come from observed entries only.

    ``fit(x, mask)`` takes the min and max of each column over the entries with ``mask == 1``; what
    ``x`` holds at missing entries (NaN, garbage, huge values) is ignored. Without a mask, NaN entries
    are the missing ones. Columns whose observed values are all equal use a range of 1, so they map
    to 0 and back to their value exactly. A column with no observed value raises ``ValueError``
    naming its index.

    ``transform(x) = (x - min) / range`` and ``inverse_transform(z) = z * range + min``, in float64;
    NaN passes through both unchanged (values outside the fitted range are not clipped). The fitted
    state is plain Python lists (``to_dict`` / ``from_dict``), so it saves as JSON.
    """

    def __init__(self):
        self.data_min_ = None
        self.data_max_ = None

    # ---------------------------------------------------------------- fitting
    def fit(self, x, mask=None):
        x = _as_2d_float(x, "fit")
        if mask is None:
            mask = ~np.isnan(x)
        # shape, 0/1 mask and finite observed values: the project-wide checks
        x, mask = check_x_mask(x, mask, where="MinMaxScaler.fit", dtype=np.float64)
        observed = mask == 1
        empty = np.flatnonzero(~observed.any(axis=0))
        if empty.size:
            raise ValueError(
                f"MinMaxScaler.fit: column(s) {empty.tolist()} have no observed value, so their range is unknown"
            )
        self.data_min_ = np.where(observed, x, np.inf).min(axis=0)
        self.data_max_ = np.where(observed, x, -np.inf).max(axis=0)
        return self

    def fit_transform(self, x, mask=None):
        return self.fit(x, mask).transform(x)

    # ---------------------------------------------------------------- applying
    @property
    def n_features(self):
        self._check_fitted()
        return int(self.data_min_.shape[0])

    @property
    def data_range_(self):
        """max - min per column, with 1 for constant columns (the divisor actually used)."""
        self._check_fitted()
        span = self.data_max_ - self.data_min_
        return np.where(span == 0, 1.0, span)

    def transform(self, x):
        x = self._check_input(x, "transform")
        return (x - self.data_min_) / self.data_range_

    def inverse_transform(self, x):
        x = self._check_input(x, "inverse_transform")
        return x * self.data_range_ + self.data_min_

    # ---------------------------------------------------------------- state
    def to_dict(self):
        self._check_fitted()
        return {"data_min": self.data_min_.tolist(), "data_max": self.data_max_.tolist()}

    get_config = to_dict

    @classmethod
    def from_dict(cls, state):
        try:
            lo = np.asarray(state["data_min"], dtype=np.float64)
            hi = np.asarray(state["data_max"], dtype=np.float64)
        except (KeyError, TypeError) as err:
            raise ValueError(f"MinMaxScaler.from_dict: expected keys 'data_min' and 'data_max' ({err})") from None
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError("MinMaxScaler.from_dict: 'data_min' and 'data_max' must be lists of equal length")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi >= lo)):
            raise ValueError("MinMaxScaler.from_dict: bounds must be finite with data_max >= data_min")
        scaler = cls()
        scaler.data_min_, scaler.data_max_ = lo, hi
        return scaler

    from_config = from_dict

    # ---------------------------------------------------------------- internals
    def _check_fitted(self):
        if self.data_min_ is None:
            raise RuntimeError("MinMaxScaler is not fitted yet: call fit(x, mask) first")

    def _check_input(self, x, where):
        self._check_fitted()
        x = _as_2d_float(x, where)
        if x.shape[1] != self.data_min_.shape[0]:
            raise ValueError(
                f"MinMaxScaler.{where}: expected {self.data_min_.shape[0]} columns (as fitted), got {x.shape[1]}"
            )
        return x

    def __repr__(self):
        state = "unfitted" if self.data_min_ is None else f"n_features={self.n_features}"
        return f"MinMaxScaler({state})"


def _as_2d_float(x, where):
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"MinMaxScaler.{where}: x must be numeric ({err})") from None
    if x.ndim != 2:
        raise ValueError(f"MinMaxScaler.{where}: expected a 2-D array [rows, features], got shape {x.shape}")
    return x
