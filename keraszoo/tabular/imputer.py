"""Datawig-style imputation of mixed-type pandas tables: `SimpleImputer`, `TableImputer` and `complete`.

The API follows awslabs/datawig (reference-implementations.md, A2): ``SimpleImputer(input_columns,
output_column).fit(train_df).predict(df)`` adds ``<output>_imputed`` (and ``<output>_imputed_proba``
for categorical outputs) to a copy of the frame, and ``SimpleImputer.complete(df)`` fills every column
that has missing values. What differs, and why:

* One network may hold many output columns (`TableImputer`, `network.MixedTableNet`): ``complete(df,
  per_column=False)`` trains one model for the whole table. The default is Datawig's loop of one model
  per column, which was the more accurate on adult and wine (benchmarks/results/tabular_adult.md, tabular_wine.md).
* String columns are categorical (`StringLookup` + embedding) or free text (hashed n-grams) by their
  number of distinct values (`columns`), where Datawig hashes every string input.
* `precision_threshold` is a precision on validation data, per class (`calibration`); cells left
  missing are counted in the returned frame's ``attrs["cells_left_missing"]`` and in a warning.
* Defaults: Adam at 4e-3, at most 100 epochs, patience 5 (Datawig's), batch 128 (Datawig's 16 makes a
  30k-row epoch take ~2,000 steps), one hidden layer of 100 units (Datawig's `numeric_latent_dim`).
"""
import json
import os
import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from keraszoo.tabular import calibration
from keraszoo.tabular.columns import ColumnSpec, check_frame, column_values, fit_spec, missing_cells, restore_value
from keraszoo.tabular.network import MixedTableNet

#: rows per call when predicting (bounded memory whatever the frame's length).
PREDICT_CHUNK_ROWS = 8192
#: probabilities within this of a precision cut-off count as reaching it (float32 against float64 rounding).
CUTOFF_TOLERANCE = 1e-6
_META_FILE, _WEIGHTS_FILE = "imputer.json", "imputer.weights.h5"


def _column_list(columns, what):
    if isinstance(columns, str) or not hasattr(columns, "__iter__"):
        raise TypeError(f"{what} must be a list of column names, got {columns!r}")
    columns = list(columns)
    if len(set(columns)) != len(columns):
        raise ValueError(f"{what} names a column more than once: {columns}")
    return columns


class TableImputer:
    """Imputes `output_columns` of a table from `input_columns` with one Keras network (see the module docstring).

    An output column may also be an input (then it is hidden whenever it is predicted). Parameters:
    `column_kinds` ({column: "numeric" | "categorical" | "text"}) overrides the kinds read from dtypes;
    `hidden_units`, `dropout`: the trunk; `embedding_dim`: categorical embeddings; `text_encoder`
    ("hashed" or "lstm"), `num_hash_buckets`, `ngram_range`, `tokens` ("chars" or "words"): text inputs;
    `num_labels`: the most classes a categorical output predicts (its most frequent values);
    `max_copies`: see `network.MixedTableNet`; `numeric_bins` > 0 adds the piecewise-linear encoding
    of numeric inputs over that many quantile bins (`layers.NumericEncoder`): off by default for now;
    on wine at 10% MCAR (one seed) 8 bins lowered the per-column RMSE from 0.0603 to 0.0587.
    """

    def __init__(
        self,
        input_columns,
        output_columns,
        *,
        column_kinds=None,
        hidden_units=(100,),
        dropout=0.0,
        embedding_dim=10,
        text_encoder="hashed",
        num_hash_buckets=2**15,
        ngram_range=(1, 5),
        tokens="chars",
        num_labels=100,
        max_copies=8,
        numeric_bins=0,
        seed=0,
    ):
        self.input_columns = _column_list(input_columns, "input_columns")
        self.output_columns = _column_list(output_columns, "output_columns")
        if not self.input_columns:
            raise ValueError("input_columns is empty: give at least one column to impute from")
        if not self.output_columns:
            raise ValueError("output_columns is empty: give at least one column to impute")
        self.column_kinds = dict(column_kinds or {})
        self.network_params = dict(
            hidden_units=[int(u) for u in hidden_units],
            dropout=float(dropout),
            embedding_dim=int(embedding_dim),
            text_encoder=text_encoder,
            num_hash_buckets=int(num_hash_buckets),
            ngram_range=[int(n) for n in ngram_range],
            tokens=tokens,
            num_labels=int(num_labels),
            max_copies=int(max_copies),
            seed=int(seed),
        )
        self.seed = int(seed)
        self.numeric_bins = int(numeric_bins)
        self.init_params = {"column_kinds": self.column_kinds, "numeric_bins": self.numeric_bins, **self.network_params}
        self.network = None
        self.specs = None
        self.history = None
        self.calibration_ = {}
        self.precision_recall_ = {}
        self._validation = {}  # per categorical output: top probability, predicted and correct, for cut-offs

    # --- fitting --------------------------------------------------------------------------------------
    @property
    def columns(self):
        return self.input_columns + [c for c in self.output_columns if c not in self.input_columns]

    def _fit_specs(self, df):
        unknown_kinds = sorted(set(self.column_kinds) - set(self.columns))
        if unknown_kinds:
            raise ValueError(f"column_kinds names column(s) that are neither inputs nor outputs: {', '.join(map(repr, unknown_kinds))}")
        specs = {name: fit_spec(df[name], self.column_kinds.get(name), numeric_bins=self.numeric_bins) for name in self.columns}
        for name in self.output_columns:
            spec = specs[name]
            if spec.kind == "text":
                raise ValueError(
                    f"column {name!r} is free text ({df[name].nunique()} distinct values): text columns are inputs only; "
                    f"pass column_kinds={{{name!r}: 'categorical'}} to impute it as a category"
                )
            if spec.kind == "categorical" and len(spec.vocabulary) < 2:
                raise ValueError(f"column {name!r} has a single observed value ({spec.vocabulary[0]!r}): nothing to learn about it")
        return specs

    def _arrays(self, df, columns):
        return {name: column_values(df[name], self.specs[name]) for name in columns}

    def _targets(self, arrays):
        targets = {}
        for name in self.output_columns:
            spec, values = self.specs[name], arrays[name]
            if spec.kind == "categorical":
                index = {label: i for i, label in enumerate(self.network.classes(name))}
                targets[name] = np.array([index.get(v, -1) for v in values], np.int32)  # "" and rare labels: -1
            else:
                targets[name] = ((values - spec.mean) / spec.std).astype(np.float32)
        return targets

    def _dataset(self, inputs, targets, batch_size, shuffle):
        inputs = {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in inputs.items()}
        targets = {k: tf.constant(v) for k, v in targets.items()}
        n = len(next(iter(targets.values())))
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        return ds.map(lambda i: ({k: tf.gather(v, i) for k, v in inputs.items()}, {k: tf.gather(v, i) for k, v in targets.items()})).prefetch(
            tf.data.AUTOTUNE
        )

    def fit(
        self,
        train_df,
        test_df=None,
        *,
        learning_rate=4e-3,
        epochs=100,
        patience=5,
        test_split=0.1,
        batch_size=128,
        calibrate=True,
        callbacks=None,
        verbose=0,
    ):
        """Train on `train_df` (the rows where some output is observed), early-stopping on `test_df` or on a
        seeded `test_split` of the rows; then calibrate categorical outputs and compute their per-class
        precision and recall on that validation data. Returns self. The frames are not modified.

        For repeatable runs it sets Keras's global random seed (`keras.utils.set_random_seed`) to the
        imputer's `seed` first."""
        check_frame(train_df, self.columns, "fit")
        if test_df is not None:
            check_frame(test_df, self.columns, "fit (test_df)")
        if not 0 <= test_split < 1:
            raise ValueError(f"test_split must be in [0, 1), got {test_split!r}")
        keras.utils.set_random_seed(self.seed)
        self.specs = self._fit_specs(train_df)
        text_vocabularies = {}
        if self.network_params["text_encoder"] == "lstm":
            for name in self.input_columns:
                if self.specs[name].kind == "text":
                    chars = set("".join(column_values(train_df[name], self.specs[name])).lower())
                    text_vocabularies[name] = sorted(chars)
        self.network = MixedTableNet(
            [self.specs[c].to_dict() for c in self.columns], self.input_columns, self.output_columns, text_vocabularies=text_vocabularies, **self.network_params
        )
        self.network.build()

        arrays = self._arrays(train_df, self.columns)
        targets = self._targets(arrays)
        labelled = np.zeros(len(train_df), bool)
        for name, target in targets.items():
            labelled |= (target >= 0) if target.dtype == np.int32 else np.isfinite(target)
        if not labelled.any():
            raise ValueError(f"no training row has an observed value of {', '.join(map(repr, self.output_columns))} that the model can learn")
        rows = np.flatnonzero(labelled)
        if test_df is not None:
            val_arrays = self._arrays(test_df, self.columns)
            val_targets, train_rows = self._targets(val_arrays), rows
        else:
            shuffled = np.random.default_rng(self.seed).permutation(rows)
            n_val = int(round(test_split * len(rows))) if len(rows) >= 10 else 0
            val_rows, train_rows = np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:])
            val_arrays = {k: v[val_rows] for k, v in arrays.items()}
            val_targets = {k: v[val_rows] for k, v in targets.items()}
        has_validation = len(next(iter(val_targets.values()))) > 0
        train = self._dataset({k: arrays[k][train_rows] for k in self.input_columns}, {k: v[train_rows] for k, v in targets.items()}, batch_size, True)
        callbacks = list(callbacks or [])
        validation = None
        if has_validation:
            validation = self._dataset({k: val_arrays[k] for k in self.input_columns}, val_targets, 4096, False)
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
        self.network.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=8)
        self.history = self.network.fit(train, validation_data=validation, epochs=int(epochs), callbacks=callbacks, verbose=verbose, shuffle=False)
        self.calibration_, self.precision_recall_, self._validation = {}, {}, {}
        if has_validation:
            self._calibrate({k: val_arrays[k] for k in self.input_columns}, val_targets, calibrate)
        return self

    def _clone(self, **overrides):
        """An unfitted imputer like this one, with some constructor parameters changed."""
        return TableImputer(self.input_columns, self.output_columns, **{**self.init_params, **overrides})

    def fit_hpo(self, train_df, test_df=None, *, space=None, max_trials=10, time_budget_seconds=600, directory=None, **fit_params):
        """Random search with keras-tuner over `space` (default `tuning.DEFAULT_SPACE`: trunk widths,
        embedding size, hash buckets, dropout, learning rate), at most `max_trials` trials and no trial
        started after `time_budget_seconds`; keeps the trial with the lowest validation loss (this imputer
        becomes it) and every trial's parameters and score in `hpo_results_`. `fit_params` go to `fit`.
        Returns self."""
        from keraszoo.tabular import tuning

        best, results = tuning.search(
            lambda params: self._clone(**params),
            train_df,
            test_df,
            space=space,
            max_trials=max_trials,
            time_budget_seconds=time_budget_seconds,
            seed=self.seed,
            directory=directory,
            **fit_params,
        )
        self.__dict__.update(best.__dict__)
        self.hpo_results_ = results
        return self

    def _raw_outputs(self, inputs, hide_targets=True):
        """Head outputs (numpy) per output column, chunked: logits or z-scores."""
        n = len(next(iter(inputs.values())))
        fn = self._predict_fn(hide_targets)
        parts = [[] for _ in self.output_columns]
        for start in range(0, n, PREDICT_CHUNK_ROWS):
            chunk = {k: tf.constant(v[start : start + PREDICT_CHUNK_ROWS].astype(str) if v.dtype == object else v[start : start + PREDICT_CHUNK_ROWS]) for k, v in inputs.items() if k in self.input_columns}
            for j, value in enumerate(fn(chunk)):
                parts[j].append(value.numpy())
        return [np.concatenate(p) for p in parts]

    def _predict_fn(self, hide_targets):
        cache = self.__dict__.setdefault("_predict_fns", {})
        if hide_targets not in cache:
            # one trace whatever the chunk's length: every column a [None] vector of its dtype
            signature = {name: tf.TensorSpec([None], tf.float32 if self.specs[name].kind == "numeric" else tf.string) for name in self.input_columns}
            cache[hide_targets] = tf.function(lambda inputs: self.network.predict_outputs(inputs, hide_targets=hide_targets), input_signature=[signature])
        return cache[hide_targets]

    def _calibrate(self, inputs, targets, calibrate):
        raw = self._raw_outputs(inputs)
        temperatures = self.network.temperatures.numpy()
        for j, name in enumerate(self.output_columns):
            if self.specs[name].kind != "categorical":
                continue
            labels = targets[name]
            known = labels >= 0
            logits, labels = raw[j][known], labels[known]
            before = calibration.probabilities(logits)
            temperature = calibration.fit_temperature(logits, labels) if calibrate else 1.0
            after = calibration.probabilities(logits, temperature)
            temperatures[j] = temperature
            predicted = after.argmax(axis=1) if len(after) else np.zeros(0, int)
            self.calibration_[name] = {
                "temperature": temperature,
                "ece_before": calibration.expected_calibration_error(before, labels),
                "ece_after": calibration.expected_calibration_error(after, labels),
                "validation_rows": int(len(labels)),
            }
            self.precision_recall_[name] = calibration.per_class_report(predicted, labels, self.network.classes(name))
            self._validation[name] = {
                "top_probability": after.max(axis=1).tolist() if len(after) else [],
                "predicted": predicted.tolist(),
                "correct": (predicted == labels).tolist(),
            }
        self.network.temperatures.assign(temperatures)

    # --- predicting -----------------------------------------------------------------------------------
    def _check_fitted(self):
        if self.network is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")

    def _cutoffs(self, name, precision_threshold):
        if not 0 <= precision_threshold <= 1:
            raise ValueError(f"precision_threshold must be in [0, 1], got {precision_threshold!r}")
        n_classes = self.network.n_classes(name)
        if precision_threshold <= 0:
            return np.zeros(n_classes)
        validation = self._validation.get(name)
        if not validation:
            raise ValueError(f"precision_threshold needs validation data, and column {name!r} had none at fit (too few labelled rows)")
        cutoffs = calibration.precision_cutoffs(validation["top_probability"], validation["predicted"], validation["correct"], n_classes, precision_threshold)
        # a validation row's probability sits exactly on a cut-off: float32 (the SavedModel) and float64
        # (here) must both keep it
        return cutoffs - CUTOFF_TOLERANCE

    def predict_values(self, df, precision_threshold=0.0, hide_targets=True):
        """{output: (values as object/float array with None/NaN where left missing, top probability or None)}."""
        self._check_fitted()
        check_frame(df, self.input_columns, "predict")
        raw = self._raw_outputs(self._arrays(df, self.input_columns), hide_targets)
        out = {}
        for j, name in enumerate(self.output_columns):
            spec = self.specs[name]
            if spec.kind == "categorical":
                probabilities = calibration.probabilities(raw[j], float(self.network.temperatures.numpy()[j]))
                predicted = probabilities.argmax(axis=1)
                top = probabilities.max(axis=1)
                keep = top >= self._cutoffs(name, precision_threshold)[predicted]
                classes = self.network.classes(name)
                values = np.array([restore_value(classes[c], spec) if k else None for c, k in zip(predicted, keep)], dtype=object)
                out[name] = (values, top)
            else:
                out[name] = (raw[j][:, 0].astype(np.float64) * spec.std + spec.mean, None)
        return out

    def predict(self, df, precision_threshold=0.0, imputation_suffix="_imputed", score_suffix="_imputed_proba", inplace=False):
        """`df` with ``<output><imputation_suffix>`` for every row (each output predicted with its own
        cell hidden) and ``<output><score_suffix>`` (the calibrated probability of the imputed class)
        for categorical outputs. Below `precision_threshold` (a precision on validation data, see
        `calibration`) a categorical imputation is left missing; the counts are in
        ``attrs["cells_left_missing"]`` and a warning. `df` itself is modified only with `inplace`."""
        predictions = self.predict_values(df, precision_threshold)
        out = df if inplace else df.copy()
        left = {}
        for name, (values, top) in predictions.items():
            out[f"{name}{imputation_suffix}"] = values
            if top is not None:
                out[f"{name}{score_suffix}"] = top
                left[name] = int(sum(v is None for v in values))
        _report_left_missing(out, left, precision_threshold)
        return out

    def predict_proba(self, df):
        """{categorical output: DataFrame of calibrated class probabilities, one column per class}."""
        self._check_fitted()
        check_frame(df, self.input_columns, "predict_proba")
        raw = self._raw_outputs(self._arrays(df, self.input_columns))
        out = {}
        for j, name in enumerate(self.output_columns):
            if self.specs[name].kind == "categorical":
                p = calibration.probabilities(raw[j], float(self.network.temperatures.numpy()[j]))
                out[name] = pd.DataFrame(p, index=df.index, columns=self.network.classes(name))
        return out

    # --- saving ----------------------------------------------------------------------------------------
    def save(self, path):
        """Write the fitted imputer to directory `path` (a JSON description and the Keras weights)."""
        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        meta = {
            "class": type(self).__name__,
            "input_columns": self.input_columns,
            "output_columns": self.output_columns,
            "column_kinds": self.column_kinds,
            "network_params": self.network_params,
            "numeric_bins": self.numeric_bins,
            "network_config": self.network.get_config(),
            "calibration": self.calibration_,
            "precision_recall": {k: v.to_dict(orient="list") for k, v in self.precision_recall_.items()},
            "validation": self._validation,
        }
        with open(os.path.join(path, _META_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        self.network.save_weights(os.path.join(path, _WEIGHTS_FILE))

    @classmethod
    def load(cls, path):
        """An imputer written by `save`."""
        with open(os.path.join(path, _META_FILE), encoding="utf-8") as f:
            meta = json.load(f)
        imputer = cls.__new__(cls)
        TableImputer.__init__(
            imputer, meta["input_columns"], meta["output_columns"], column_kinds=meta["column_kinds"], numeric_bins=meta.get("numeric_bins", 0), **meta["network_params"]
        )
        imputer.network = MixedTableNet.from_config(meta["network_config"])
        imputer.network.build()
        imputer.network.load_weights(os.path.join(path, _WEIGHTS_FILE))
        imputer.specs = {c["name"]: ColumnSpec.from_dict(c) for c in meta["network_config"]["columns"]}
        imputer.calibration_ = meta["calibration"]
        imputer.precision_recall_ = {k: pd.DataFrame(v) for k, v in meta["precision_recall"].items()}
        imputer._validation = meta["validation"]
        return imputer


def _report_left_missing(frame, left, precision_threshold):
    frame.attrs["cells_left_missing"] = dict(left)
    total = sum(left.values())
    if total:
        shown = ", ".join(f"{name}: {n}" for name, n in left.items() if n)
        warnings.warn(
            f"precision_threshold={precision_threshold}: {total} cell(s) left missing where the imputation's class does not reach "
            f"that precision on validation data ({shown}); attrs['cells_left_missing'] has the counts",
            stacklevel=3,
        )


class SimpleImputer(TableImputer):
    """Imputes one column from `input_columns` (Datawig's `SimpleImputer`); see `TableImputer` for parameters.

    >>> imputer = SimpleImputer(["age", "occupation", "education"], "workclass").fit(train)
    >>> imputer.predict(test)[["workclass", "workclass_imputed", "workclass_imputed_proba"]]
    """

    def __init__(self, input_columns, output_column, **params):
        input_columns = _column_list(input_columns, "input_columns")
        if not isinstance(output_column, str) and not np.isscalar(output_column):
            raise TypeError(f"output_column must be one column name, got {output_column!r}")
        if output_column in input_columns:
            raise ValueError(f"column {output_column!r} is both the output column and an input column: the model would read its answer")
        super().__init__(input_columns, [output_column], **params)
        self.output_column = output_column

    def _clone(self, **overrides):
        return SimpleImputer(self.input_columns, self.output_column, **{**self.init_params, **overrides})

    @classmethod
    def load(cls, path):
        imputer = super().load(path)
        imputer.output_column = imputer.output_columns[0]
        return imputer

    @staticmethod
    def complete(df, precision_threshold=0.0, inplace=False, *, columns=None, per_column=True, column_kinds=None, verbose=0, fit_params=None, **params):
        """`df` with every missing cell of the columns to impute filled (see `complete`)."""
        return complete(
            df, precision_threshold, inplace=inplace, columns=columns, per_column=per_column, column_kinds=column_kinds, verbose=verbose, fit_params=fit_params, **params
        )


def complete(df, precision_threshold=0.0, inplace=False, *, columns=None, per_column=True, column_kinds=None, verbose=0, fit_params=None, **params):
    """Impute every missing cell of `columns` (default: every numeric or categorical column with a missing
    value) from all the other columns, and return a new frame (`df` itself with `inplace`).

    ``Completer(...).fit(df).transform(df)``: see `Completer` for what is kept and how it trains.
    Cells left missing by `precision_threshold` are counted in ``attrs["cells_left_missing"]``.
    """
    completer = Completer(columns=columns, per_column=per_column, column_kinds=column_kinds, verbose=verbose, fit_params=fit_params, **params)
    return completer.fit(df).transform(df, precision_threshold, inplace=inplace)


class Completer:
    """Fills the missing cells of a table's columns, inductively: `fit` on one frame, `transform` any
    frame with the same columns (new rows are imputed by the fitted models, never refitted).

    `columns`: the columns to impute (default: every numeric or categorical column with a missing value
    at fit; free-text columns are inputs only). Every other column of the frame is an input. By default
    one `SimpleImputer` per column, as Datawig; ``per_column=False`` trains one network for every column
    instead (`TableImputer` with each column both an input and an output, hidden when it is predicted):
    about 3-4x faster, and less accurate on adult and wine (benchmarks/results/tabular_adult.md, tabular_wine.md).
    `rounds` > 1 refines the imputations as MissForest does: round 1 reads the table as it is (a missing
    input is seen as missing); each further round refits every column's imputer on the table completed
    by the round before (the imputer's own column keeps only its observed cells), and `transform` chains
    the rounds the same way. A numeric imputation is then the mean of the last two rounds' (the
    iteration oscillates about its fixed point; the mean damps it); a categorical one is the last
    round's, with its calibration and cut-offs. Each round costs one more fit. On wine, ``rounds=3`` lowers
    the numeric RMSE below MissForest's (benchmarks/results/tabular_wine.md), in 4-5x the time of one round.
    `transform` never changes an observed cell and keeps dtypes: categories stay categories, nullable
    integer columns get rounded imputations and stay integer, other columns keep their dtype. A column
    with a single observed value is completed with that value.
    `fit_params` go to each imputer's `fit` (e.g. ``epochs``), `params` to the imputers (e.g. ``seed``).
    """

    def __init__(self, *, columns=None, per_column=True, column_kinds=None, hpo=None, rounds=1, verbose=0, fit_params=None, **params):
        self.columns = None if columns is None else _column_list(columns, "columns")
        if hpo is not None and not per_column:
            raise ValueError("hpo searches each column's SimpleImputer: it needs per_column=True")
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds must be a whole number >= 1, got {rounds!r}")
        if rounds > 1 and not per_column:
            raise ValueError("rounds > 1 refits each column's SimpleImputer on the completed table: it needs per_column=True")
        self.hpo = None if hpo is None else dict(hpo)
        self.rounds = int(rounds)
        self.per_column, self.column_kinds, self.params = bool(per_column), dict(column_kinds or {}), params
        self.fit_params = {"verbose": verbose, **dict(fit_params or {})}
        self.imputers = None
        self.imputer_rounds = None

    def fit(self, df):
        check_frame(df, list(self.columns or []), "complete")
        if len(df.columns) < 2:
            raise ValueError("complete needs at least two columns: one to impute and one to impute it from")
        self.specs = specs = {name: fit_spec(df[name], self.column_kinds.get(name)) for name in df.columns}  # names a column with no observed value
        self.kinds = {name: spec.kind for name, spec in specs.items()}
        self.frame_columns = list(df.columns)
        if self.columns is None:
            targets = [name for name in df.columns if self.kinds[name] != "text" and missing_cells(df[name]).any()]
        else:
            targets = self.columns
            for name in targets:
                if self.kinds[name] == "text":
                    raise ValueError(f"column {name!r} is free text: text columns are inputs only; pass column_kinds={{{name!r}: 'categorical'}} to impute it")
        self.targets = targets
        # a column with a single observed value is completed with it (nothing to learn, nothing to doubt)
        self.constants = {}
        for name in targets:
            spec = specs[name]
            if spec.kind == "categorical" and len(spec.vocabulary) == 1:
                self.constants[name] = restore_value(spec.vocabulary[0], spec)
            elif spec.kind == "numeric" and df[name].nunique() == 1:
                self.constants[name] = spec.mean
        targets = [name for name in targets if name not in self.constants]
        kinds = {c: self.kinds[c] for c in df.columns}
        missing = {name: missing_cells(df[name]) for name in self.targets}
        self.imputer_rounds, frame = [], df
        for r in range(self.rounds if targets else 1):
            if r:  # round r + 1 learns from the table as round r completed it (round r read the frame before)
                frame = self._staged(df, missing, self._predict_round(self.imputer_rounds[-1], frame, missing, 0.0))
            self.imputer_rounds.append(self._fit_round(df, frame, targets, kinds))
        self.imputers = self.imputer_rounds[-1]
        return self

    def _fit_round(self, df, frame, targets, kinds):
        """The imputers of one round, trained on `frame` (`df`, or `df` completed by the rounds before, where
        each imputer's own column keeps `df`'s missing cells: it learns only from observed values)."""
        if not targets:
            return []
        if not self.per_column:
            return [TableImputer(list(df.columns), targets, column_kinds=kinds, **self.params).fit(df, **self.fit_params)]
        imputers = []
        for name in targets:
            imputer = SimpleImputer([c for c in df.columns if c != name], name, column_kinds=kinds, **self.params)
            train = frame
            if frame is not df:
                train = frame.copy()
                train[name] = df[name]
            if self.hpo is not None:  # the budget is shared equally by the columns and rounds
                budget = float(self.hpo.get("time_budget_seconds", 600)) / (len(targets) * self.rounds)
                imputer.fit_hpo(train, **{**self.hpo, "time_budget_seconds": budget}, **self.fit_params)
            else:
                imputer.fit(train, **self.fit_params)
            imputers.append(imputer)
        return imputers

    def _predict_round(self, imputers, frame, missing, precision_threshold):
        """{column: imputations of its missing cells} from one round's imputers reading `frame`."""
        values = {}
        for imputer in imputers:
            rows = np.zeros(len(frame), bool)
            for name in imputer.output_columns:
                rows |= missing[name]
            if not rows.any():
                values.update({name: np.empty(0, object) for name in imputer.output_columns})
                continue
            predicted = imputer.predict_values(frame.loc[rows], precision_threshold, hide_targets=False)  # missing cells are hidden already
            for name in imputer.output_columns:
                values[name] = predicted[name][0][missing[name][rows]]
        return values

    def _staged(self, df, missing, values):
        """`df` with its missing cells filled by the constants and `values` (the input of the next round)."""
        stage = df.copy()
        self._fill_constants(stage, df, missing)
        for name, imputed in values.items():
            if missing[name].any():
                _fill(stage, name, missing[name], imputed, df[name].dtype)
        return stage

    def _fill_constants(self, out, df, missing):
        """Fill the single-valued columns' missing cells of `out` with their value; {column: cells left missing}."""
        return {name: _fill(out, name, missing[name], np.full(int(missing[name].sum()), value, dtype=object), df[name].dtype) for name, value in self.constants.items()}

    def _run_rounds(self, df, missing, rounds, precision_threshold):
        """Imputations of the missing cells by the last of `rounds` (the threshold applies to it alone: an
        intermediate round fills every cell) and by the round before it ({} for a single round)."""
        values, previous, stage = {}, {}, df
        for r, imputers in enumerate(rounds):
            if r:
                previous, stage = values, self._staged(df, missing, values)
            values = self._predict_round(imputers, stage, missing, precision_threshold if r == len(rounds) - 1 else 0.0)
        return values, previous

    def transform(self, df, precision_threshold=0.0, inplace=False):
        if self.imputers is None:
            raise RuntimeError("Completer is not fitted: call fit first")
        check_frame(df, self.frame_columns, "complete")
        out = df if inplace else df.copy()
        missing = {name: missing_cells(df[name]) for name in self.targets}
        values, previous = self._run_rounds(df, missing, self.imputer_rounds, precision_threshold)
        left = self._fill_constants(out, df, missing)
        for name, imputed in values.items():
            if not missing[name].any():
                left[name] = 0
                continue
            if name in previous and self.kinds[name] == "numeric":  # the mean of the last two rounds
                imputed = (imputed.astype(np.float64) + previous[name].astype(np.float64)) / 2
            left[name] = _fill(out, name, missing[name], imputed, df[name].dtype)
        _report_left_missing(out, left, precision_threshold)
        return out


def _fill(out, name, missing, imputed, dtype):
    """Write `imputed` into the missing cells of column `name`, keeping its dtype; returns cells left missing."""
    imputed = np.asarray(imputed, dtype=object)
    left = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in imputed], bool)
    column = out[name]
    if isinstance(dtype, pd.CategoricalDtype):
        values = np.array(column.astype(object).to_numpy(), dtype=object)
        values[missing] = [None if skip else v for v, skip in zip(imputed, left)]
        out[name] = pd.Categorical(values, categories=dtype.categories, ordered=dtype.ordered)
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = np.array([np.nan if skip else float(v) for v, skip in zip(imputed, left)])
        if pd.api.types.is_integer_dtype(dtype):  # a nullable integer column (plain int64 cannot hold a missing cell)
            numbers = np.round(numbers)
        values = np.array(column.to_numpy(dtype=np.float64, na_value=np.nan))
        values[missing] = numbers
        out[name] = pd.array(values, dtype=dtype) if pd.api.types.is_extension_array_dtype(dtype) else values.astype(dtype)
    else:
        values = np.array(column.astype(object).to_numpy(), dtype=object)
        values[missing] = [None if skip else v for v, skip in zip(imputed, left)]
        try:
            out[name] = pd.array(values, dtype=dtype) if pd.api.types.is_extension_array_dtype(dtype) else pd.Series(values, index=out.index, dtype=dtype)
        except (TypeError, ValueError):
            out[name] = pd.Series(values, index=out.index, dtype=object)
    return int(left.sum())
