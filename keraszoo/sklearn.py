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
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from keraszoo.data.scaling import MinMaxScaler
from keraszoo.registry import get_model, get_model_class, is_deep, model_parameters, model_task
from keraszoo.validation import ImputationInputError, keep_observed


def fit_parameters(name):
    """{training parameter: default} of model `name` (a deep model's `fit_arrays` keywords; none for classical ones)."""
    cls = get_model_class(name)
    return cls.fit_parameters() if hasattr(cls, "fit_parameters") else {}


class _ZooEstimator(BaseEstimator):
    """What ZooImputer and ZooClassifier share: parameters, reading and scaling input, saving."""

    _task = None

    def __init__(self, name="gain", **params):
        self.name = name
        self.params = dict(params)
        self._split_params(self.name, self.params)  # fail early on unknown names or parameters

    # scikit-learn's get_params/set_params see `name` and every model parameter, so clone() and
    # grid search work.
    def get_params(self, deep=True):
        return {"name": self.name, **self.params}

    def set_params(self, **params):
        """Validated first: on an unknown name or parameter nothing changes."""
        name = params.pop("name", self.name)
        merged = {**self.params, **params}
        self._split_params(name, merged)
        self.name, self.params = name, merged
        return self

    def _split_params(self, name, params):
        if model_task(name) != self._task:
            raise ValueError(
                f"model {name!r} is for task {model_task(name)!r}; {type(self).__name__} needs a model for task {self._task!r}"
            )
        valid_model = model_parameters(name)
        fit_names = fit_parameters(name)
        model_params, fit_params = {}, {}
        for key, value in params.items():
            if key in valid_model:
                model_params[key] = value
            elif key in fit_names:
                fit_params[key] = value
            else:
                valid = sorted(set(valid_model) | set(fit_names))
                raise ValueError(f"{type(self).__name__}({name!r}) has no parameter {key!r}; valid parameters: {', '.join(valid)}")
        if is_deep(name):
            fit_params["seed"] = model_params.get("seed", 0)
        return model_params, fit_params

    # --- reading and scaling --------------------------------------------------------------------
    def _fit_scaling(self, values, mask):
        """Fit the min-max scaler: per column for tables, per channel for images [rows, H, W, C]."""
        self.input_shape_ = tuple(int(s) for s in values.shape[1:])
        flat_values, flat_mask = self._columns(values), self._columns(mask)
        empty = np.flatnonzero(flat_mask.sum(axis=0) == 0)
        if empty.size:
            what = "column" if values.ndim == 2 else "channel"
            names = [str(self.feature_names_in_[i]) if hasattr(self, "feature_names_in_") else str(i) for i in empty]
            raise ImputationInputError(f"fit: {what}(s) {', '.join(names)} have no observed value; drop them or supply data")
        self.n_features_in_ = values.shape[1] if values.ndim == 2 else int(np.prod(values.shape[1:]))
        self.scaler_ = MinMaxScaler().fit(flat_values, flat_mask)
        # constant columns (channels) are imputed with their constant, whatever the model says
        self.constant_columns_ = self.scaler_.data_max_ == self.scaler_.data_min_
        cls = get_model_class(self.name)
        self.model_input_shape_ = cls.model_example_shape(self.input_shape_) if is_deep(self.name) else self.input_shape_

    @staticmethod
    def _columns(a):
        return a.reshape(-1, a.shape[-1])

    def _scaled(self, values, mask):
        """Scaled values (0 at missing entries) in the model's layout [rows, *model_input_shape_]."""
        scaled = self.scaler_.transform(self._columns(values)).reshape(values.shape)
        scaled = np.where(mask == 1, scaled, 0.0)
        shape = (len(values),) + self.model_input_shape_
        return scaled.reshape(shape), mask.reshape(shape)

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
        takes_images = is_deep(self.name)
        if values.ndim != 2 and not (values.ndim == 4 and takes_images):
            if values.ndim == 3 and takes_images:
                raise ImputationInputError(f"expected images [rows, H, W, C], got shape {values.shape}: add a channel axis (x[..., None])")
            expected = "a 2-D table [rows, columns] or images [rows, H, W, C]" if takes_images else "a 2-D table [rows, columns]"
            raise ImputationInputError(f"expected {expected}, got shape {values.shape}")
        if values.size == 0:
            raise ImputationInputError(f"input is empty (shape {values.shape})")
        if not at_fit and tuple(values.shape[1:]) != self.input_shape_:
            if values.ndim == 2 and len(self.input_shape_) == 1:
                raise ImputationInputError(f"expected {self.n_features_in_} columns as at fit, got {values.shape[1]}")
            raise ImputationInputError(f"expected examples of shape {self.input_shape_} as at fit, got {tuple(values.shape[1:])}")
        infinite = np.isinf(values)
        if infinite.any():
            where = tuple(int(i) for i in np.argwhere(infinite)[0])
            if values.ndim == 2:
                col = where[1]
                name = self.feature_names_in_[col] if hasattr(self, "feature_names_in_") and col < len(self.feature_names_in_) else col
                raise ImputationInputError(f"column {name} holds inf: replace it with a finite value or NaN (missing)")
            raise ImputationInputError(f"entry {list(where)} holds inf: replace it with a finite value or NaN (missing)")
        mask = (~np.isnan(values)).astype(np.float64)
        return values, mask

    def _fit_model(self, values, mask, y=None, derived=None, callbacks=None):
        """Build and train the model; `derived` are model parameters found from the data (a classifier's
        number of classes), given to the model without changing `get_params()`."""
        model_params, fit_params = self._split_params(self.name, self.params)
        self.model_ = get_model(self.name, **{**(derived or {}), **model_params})
        scaled, model_mask = self._scaled(values, mask)
        if is_deep(self.name):
            args = (scaled, model_mask) if y is None else (scaled, model_mask, y)
            self.history_ = self.model_.fit_arrays(*args, **fit_params, callbacks=callbacks)
        else:
            self.model_.fit_arrays(scaled, model_mask)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")

    # --- saving ---------------------------------------------------------------------------------
    def _meta(self):
        return {
            "name": self.name,
            "params": _plain(self.params),
            "input_shape": list(self.input_shape_),
            "n_features_in": int(self.n_features_in_),
            "scaler": self.scaler_.to_dict(),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else [str(c) for c in self.feature_names_in_],
        }

    def save(self, path):
        """Save the fitted estimator to directory `path` (created): metadata JSON plus the model.

        Deep models are saved as `.keras` files; classical ones with joblib (load only files you trust).
        """
        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "imputer.json"), "w") as f:
            json.dump(self._meta(), f, indent=2)
        if is_deep(self.name):
            self.model_.save(os.path.join(path, "model.keras"))
        else:
            import joblib

            joblib.dump(self.model_, os.path.join(path, "model.joblib"))
        return path

    @classmethod
    def load(cls, path):
        """Load an estimator written by `save`."""
        with open(os.path.join(path, "imputer.json")) as f:
            meta = json.load(f)
        estimator = cls(meta["name"], **meta["params"])
        estimator.n_features_in_ = meta["n_features_in"]
        estimator.input_shape_ = tuple(meta.get("input_shape") or [meta["n_features_in"]])
        estimator.scaler_ = MinMaxScaler.from_dict(meta["scaler"])
        estimator.constant_columns_ = estimator.scaler_.data_max_ == estimator.scaler_.data_min_
        if meta["feature_names_in"] is not None:
            estimator.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        model_class = get_model_class(meta["name"])  # registers the class with keras.saving
        if is_deep(meta["name"]):
            import keras

            estimator.model_input_shape_ = model_class.model_example_shape(estimator.input_shape_)
            estimator.model_ = keras.models.load_model(os.path.join(path, "model.keras"), compile=False)
        else:
            import joblib

            estimator.model_input_shape_ = estimator.input_shape_
            estimator.model_ = joblib.load(os.path.join(path, "model.joblib"))
        estimator._load_extra(meta)
        return estimator

    def _load_extra(self, meta):
        pass


class ZooImputer(TransformerMixin, _ZooEstimator):
    """scikit-learn transformer over a keraszoo imputer `name` (NaN marks missing values).

    `params` are the model's constructor parameters (see `keraszoo.model_parameters(name)`) plus, for
    deep models, their training parameters (`keraszoo.sklearn.fit_parameters(name)`: `iterations`,
    `epochs`, `batch_size`, `learning_rate` (a float or one rate per optimizer), `verbose` (1 shows
    Keras's progress bar with the losses), and any a model adds). `seed` seeds the model (if it takes
    one) and the data shuffling. Unknown parameters are an error at construction.

    Input: a table (DataFrame or [rows, columns] array) or, for deep models, images [rows, H, W, C]
    (scaled per channel; a table-only model such as GAIN sees them flattened to rows).
    """

    _task = "impute"

    def fit(self, X, y=None, callbacks=None):
        """Fit on X (NaN = missing). `callbacks`: Keras callbacks for a deep model's training (ignored by
        the classical ones), e.g. a progress display."""
        values, mask = self._read(X, at_fit=True)
        self._fit_scaling(values, mask)
        self._fit_model(values, mask, callbacks=callbacks)
        return self

    def transform(self, X):
        self._check_fitted()
        values, mask = self._read(X, at_fit=False)
        if mask.all():
            completed = values
        else:
            scaled, model_mask = self._scaled(values, mask)
            imputed = np.asarray(self.model_.impute(scaled, model_mask), dtype=np.float64).reshape(values.shape)
            columns = self._columns(imputed)
            columns[:] = self.scaler_.inverse_transform(columns)
            columns[:, self.constant_columns_] = self.scaler_.data_min_[self.constant_columns_]
            completed = keep_observed(values, mask, imputed)
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(completed, index=X.index, columns=X.columns)
        return completed

    def sample(self, X, n):
        """`n` imputations of X drawn by a generative model, [n, rows, ...] (raw scale, observed entries kept)."""
        self._check_fitted()
        values, mask = self._read(X, at_fit=False)
        scaled, model_mask = self._scaled(values, mask)
        draws = np.asarray(self.model_.sample_imputations(scaled, model_mask, n), dtype=np.float64).reshape((int(n),) + values.shape)
        columns = draws.reshape(-1, values.shape[-1])
        columns[:] = self.scaler_.inverse_transform(columns)
        columns[:, self.constant_columns_] = self.scaler_.data_min_[self.constant_columns_]
        return np.where(mask[None] == 1, values[None], draws)


class ZooClassifier(ClassifierMixin, _ZooEstimator):
    """scikit-learn classifier over a keraszoo classifier of incomplete inputs (NaN marks missing values).

    Same parameters and input as `ZooImputer`; `y` holds any labels (`classes_` keeps them in sorted
    order, the columns of `predict_proba`). `score` is the accuracy.
    """

    _task = "classify"

    def __init__(self, name="", **params):
        super().__init__(name, **params)

    def fit(self, X, y):
        values, mask = self._read(X, at_fit=True)
        y = np.asarray(y)
        if y.shape != (len(values),):
            raise ValueError(f"y must hold one label per row ({len(values)}), got shape {y.shape}")
        self.classes_, indices = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y holds a single class: a classifier needs at least two")
        self._fit_scaling(values, mask)
        derived = {"n_classes": len(self.classes_)} if "n_classes" in model_parameters(self.name) else {}
        self._fit_model(values, mask, indices.astype(np.int32), derived=derived)
        return self

    def predict_proba(self, X):
        self._check_fitted()
        values, mask = self._read(X, at_fit=False)
        scaled, model_mask = self._scaled(values, mask)
        return np.asarray(self.model_.predict_proba(scaled, model_mask), dtype=np.float64)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _meta(self):
        return {**super()._meta(), "classes": self.classes_.tolist()}

    def _load_extra(self, meta):
        self.classes_ = np.asarray(meta["classes"])


def _plain(value):
    """JSON-ready copy of parameters: numpy scalars and arrays (what a grid search passes) as Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
