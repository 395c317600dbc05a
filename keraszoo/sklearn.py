"""`ZooImputer`: any registered model as a scikit-learn transformer (NaN marks missing values).

    >>> from keraszoo.sklearn import ZooImputer
    >>> imp = ZooImputer("gain", iterations=2000).fit(train_df)   # pandas or numpy, NaN = missing
    >>> test_completed = imp.transform(test_df)                    # same type, index and columns back

Inductive: `transform` imputes new rows with the model fitted by `fit` and never retrains.
Min-max scaling is fitted on the observed training entries and undone after imputation; observed
entries come back bit for bit.

Documented results for edge cases:

* no missing values: the input comes back unchanged (as a float array / float columns);
* a row with every value missing: imputed by the model from what it learned (mean-like models give
  the column means; GAIN generates from its noise);
* a constant column: its missing entries get the constant.

Errors (`keraszoo.validation.ImputationInputError`, a ValueError) name the problem for: a different
number of columns (or different column names) at transform than at fit, non-numeric columns, inf,
empty input, and a column with no observed value at fit.
"""
import json
import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from keraszoo.data.scaling import MinMaxScaler
from keraszoo.registry import get_model, get_model_class, is_deep, model_parameters
from keraszoo.validation import ImputationInputError, keep_observed

#: parameters of `ZooImputer` that configure training (deep models' `fit_arrays`), not the model.
FIT_PARAMETERS = ("iterations", "epochs", "batch_size", "learning_rate", "verbose")


class ZooImputer(TransformerMixin, BaseEstimator):
    """scikit-learn transformer over a keraszoo model `name`.

    `params` are the model's constructor parameters (see `keraszoo.model_parameters(name)`) plus,
    for deep models, the training parameters `iterations`, `epochs`, `batch_size`, `learning_rate`
    and `verbose`. `seed` seeds the model (if it takes one) and the data shuffling. Unknown
    parameters are an error at construction.
    """

    def __init__(self, name="gain", **params):
        self.name = name
        self.params = dict(params)
        self._split_params()  # fail early on unknown names or parameters

    # scikit-learn's get_params/set_params see `name` and every model parameter, so clone() and
    # grid search work.
    def get_params(self, deep=True):
        return {"name": self.name, **self.params}

    def set_params(self, **params):
        if "name" in params:
            self.name = params.pop("name")
        self.params.update(params)
        self._split_params()
        return self

    def _split_params(self):
        valid_model = model_parameters(self.name)
        deep = is_deep(self.name)
        fit_names = FIT_PARAMETERS if deep else ()
        model_params, fit_params = {}, {}
        for key, value in self.params.items():
            if key in valid_model:
                model_params[key] = value
            elif key in fit_names:
                fit_params[key] = value
            else:
                valid = sorted(set(valid_model) | set(fit_names))
                raise ValueError(f"ZooImputer({self.name!r}) has no parameter {key!r}; valid parameters: {', '.join(valid)}")
        if deep:
            fit_params["seed"] = model_params.get("seed", 0)
        return model_params, fit_params

    # --- fitting and imputing -------------------------------------------------------------------
    def fit(self, X, y=None):
        values, mask = self._read(X, at_fit=True)
        empty = np.flatnonzero(mask.sum(axis=0) == 0)
        if empty.size:
            names = [str(self.feature_names_in_[i]) if hasattr(self, "feature_names_in_") else str(i) for i in empty]
            raise ImputationInputError(f"fit: column(s) {', '.join(names)} have no observed value; drop them or supply data")
        self.n_features_in_ = values.shape[1]
        self.scaler_ = MinMaxScaler().fit(values, mask)
        # constant columns are imputed with their constant, whatever the model says
        self.constant_columns_ = self.scaler_.data_max_ == self.scaler_.data_min_
        model_params, fit_params = self._split_params()
        self.model_ = get_model(self.name, **model_params)
        scaled = np.where(mask == 1, self.scaler_.transform(values), 0.0)
        if is_deep(self.name):
            self.history_ = self.model_.fit_arrays(scaled, mask, **fit_params)
        else:
            self.model_.fit_arrays(scaled, mask)
        return self

    def transform(self, X):
        if not hasattr(self, "model_"):
            raise RuntimeError("ZooImputer is not fitted: call fit first")
        values, mask = self._read(X, at_fit=False)
        if mask.all():
            completed = values
        else:
            scaled = np.where(mask == 1, self.scaler_.transform(values), 0.0)
            imputed = self.scaler_.inverse_transform(self._impute_scaled(scaled, mask))
            imputed[:, self.constant_columns_] = self.scaler_.data_min_[self.constant_columns_]
            completed = keep_observed(values, mask, imputed)
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(completed, index=X.index, columns=X.columns)
        return completed

    def _impute_scaled(self, scaled, mask, batch_size=8192):
        if not is_deep(self.name):
            return np.asarray(self.model_.impute(scaled, mask), dtype=np.float64)
        out = [
            np.asarray(self.model_.impute(scaled[i : i + batch_size], mask[i : i + batch_size]), dtype=np.float64)
            for i in range(0, len(scaled), batch_size)
        ]
        return np.concatenate(out)

    def _read(self, X, at_fit):
        """Return (float64 values, float64 mask) after checking X; the mask is 1 where observed."""
        if isinstance(X, pd.Series):
            raise ImputationInputError("expected a 2-D table (DataFrame or array), got a Series; use series.to_frame()")
        if isinstance(X, pd.DataFrame):
            non_numeric = [str(c) for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]))]
            if non_numeric:
                raise ImputationInputError(
                    f"non-numeric column(s) {', '.join(non_numeric)}: encode them as numbers first (this imputer handles numeric data)"
                )
            names = np.asarray([str(c) for c in X.columns], dtype=object)
            if at_fit:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_") and len(names) == len(self.feature_names_in_) and not np.array_equal(
                names, self.feature_names_in_
            ):
                raise ImputationInputError(
                    f"column names differ from those seen at fit: expected {list(self.feature_names_in_)}, got {list(names)}"
                )
            values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            if at_fit and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            try:
                values = np.asarray(X, dtype=np.float64)
            except (TypeError, ValueError):
                raise ImputationInputError("input has non-numeric values: encode them as numbers first") from None
        if values.ndim != 2:
            raise ImputationInputError(f"expected a 2-D table [rows, columns], got shape {values.shape}")
        if values.shape[0] == 0 or values.shape[1] == 0:
            raise ImputationInputError(f"input is empty (shape {values.shape})")
        if not at_fit and values.shape[1] != self.n_features_in_:
            raise ImputationInputError(f"expected {self.n_features_in_} columns as at fit, got {values.shape[1]}")
        infinite = np.isinf(values)
        if infinite.any():
            col = int(np.argwhere(infinite)[0][1])
            name = self.feature_names_in_[col] if hasattr(self, "feature_names_in_") and col < len(self.feature_names_in_) else col
            raise ImputationInputError(f"column {name} holds inf: replace it with a finite value or NaN (missing)")
        mask = (~np.isnan(values)).astype(np.float64)
        return values, mask

    # --- saving ---------------------------------------------------------------------------------
    def save(self, path):
        """Save the fitted imputer to directory `path` (created): metadata JSON plus the model.

        Deep models are saved as `.keras` files; classical ones with joblib (load only files you trust).
        """
        if not hasattr(self, "model_"):
            raise RuntimeError("ZooImputer is not fitted: nothing to save")
        os.makedirs(path, exist_ok=True)
        meta = {
            "name": self.name,
            "params": self.params,
            "n_features_in": int(self.n_features_in_),
            "scaler": self.scaler_.to_dict(),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else [str(c) for c in self.feature_names_in_],
        }
        with open(os.path.join(path, "imputer.json"), "w") as f:
            json.dump(meta, f, indent=2)
        if is_deep(self.name):
            self.model_.save(os.path.join(path, "model.keras"))
        else:
            import joblib

            joblib.dump(self.model_, os.path.join(path, "model.joblib"))
        return path

    @classmethod
    def load(cls, path):
        """Load an imputer written by `save`."""
        with open(os.path.join(path, "imputer.json")) as f:
            meta = json.load(f)
        imputer = cls(meta["name"], **meta["params"])
        imputer.n_features_in_ = meta["n_features_in"]
        imputer.scaler_ = MinMaxScaler.from_dict(meta["scaler"])
        imputer.constant_columns_ = imputer.scaler_.data_max_ == imputer.scaler_.data_min_
        if meta["feature_names_in"] is not None:
            imputer.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        if is_deep(meta["name"]):
            import keras

            get_model_class(meta["name"])  # registers the class with keras.saving
            imputer.model_ = keras.models.load_model(os.path.join(path, "model.keras"), compile=False)
        else:
            import joblib

            imputer.model_ = joblib.load(os.path.join(path, "model.joblib"))
        return imputer
