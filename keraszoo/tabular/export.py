"""SavedModel export of the tabular imputers, taking raw columns as named inputs (TF Serving's layout).

    from keraszoo.tabular.export import export
    export(completer_or_imputer, "saved_models/serving", "adult_complete")

Inputs: one [None] tensor per input column, named by `signature_keys` (the column name with every
character outside TF's signature alphabet ``[A-Za-z0-9_.-]`` replaced by ``_``, made unique):
float32 for numeric columns (NaN = missing), string for categorical and text columns ("" = missing;
a category is given as its text, e.g. "True" for a bool column). Outputs:

* a `TableImputer` / `SimpleImputer`: ``serving_default`` -> ``<key>_imputed`` for every row (each
  output predicted with its own cell hidden, as `predict`), and ``<key>_imputed_proba`` (float32, the
  calibrated probability) for categorical outputs; a categorical imputation below the export's
  `precision_threshold` (its per-class cut-offs are baked in) is "";
* a `Completer`: ``serving_default`` -> ``<key>`` for every imputed column: the column with its missing
  cells filled, observed cells passed through unchanged; a Completer fitted with ``rounds`` > 1 runs its
  rounds in turn, as `transform` does.

Categorical imputations are strings (the category's text). The key of every column is written to
``assets.extra/keraszoo_columns.json`` beside TF Serving's warm-up file, whose requests are rows of
typical values (each column's mean or most frequent value, a fifth of the cells missing).
"""
import json
import os
import re

import numpy as np
import pandas as pd
import tensorflow as tf

from keraszoo.tabular.imputer import Completer, TableImputer

_INVALID = re.compile(r"[^A-Za-z0-9_.\-]")
WARMUP_ROWS = (1, 8)


def signature_keys(columns):
    """{column: its signature input key}: invalid characters to "_", a leading "c_" where needed, unique."""
    keys, used = {}, set()
    for name in columns:
        key = _INVALID.sub("_", str(name)) or "c"
        if not re.match(r"[A-Za-z0-9.]", key):
            key = "c" + key
        base, i = key, 2
        while key in used or any(key == f"{other}_imputed" or key == f"{other}_imputed_proba" for other in used):
            key, i = f"{base}_{i}", i + 1
        used.add(key)
        keys[name] = key
    return keys


class _TableModule(tf.Module):
    """`rounds`: lists of imputers run in turn (a `Completer`'s rounds; one list otherwise). Every round
    but the last fills all missing cells (no cut-off) for the next one to read; numeric imputations of
    the last round are averaged with the round before's, as `Completer.transform` does."""

    def __init__(self, rounds, specs, keys, cutoffs, complete, constants=None):
        super().__init__()
        self.constants = dict(constants or {})
        # one flat list: the SavedModel did not restore the weights of networks held in nested lists
        self.networks = [imputer.network for imputers in rounds for imputer in imputers]
        self.round_sizes = [len(imputers) for imputers in rounds]
        self.specs, self.keys, self.complete = specs, keys, complete
        # nullable integer columns: `transform` rounds their imputations, so a round's output is rounded
        # before the next round reads it (the final output is not, see the module docstring)
        self.integer_columns = {name for name, spec in specs.items() if spec.kind == "numeric" and pd.api.types.is_integer_dtype(spec.dtype)}
        self.classes = {
            name: tf.constant(imputer.network.classes(name))
            for imputers in rounds
            for imputer in imputers
            for name in imputer.output_columns
            if specs[name].kind == "categorical"
        }
        self.cutoffs = {name: tf.constant(value, tf.float32) for name, value in cutoffs.items()}

    def _predict(self, networks, columns, last):
        """{output: (label or value for every row, top probability or None)} from one round's networks."""
        predictions = {}
        for network in networks:
            raw = network.predict_outputs({c: columns[c] for c in network.input_columns}, hide_targets=not self.complete)
            for j, name in enumerate(network.output_columns):
                spec = network.specs[name]  # its own: a later round's inputs are fitted on the completed table
                if spec.kind == "categorical":
                    probabilities = tf.nn.softmax(raw[j] / network.temperatures[j], axis=-1)
                    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
                    top = tf.reduce_max(probabilities, axis=-1)
                    label = tf.gather(self.classes[name], predicted)
                    if last:
                        label = tf.where(top >= tf.gather(self.cutoffs[name], predicted), label, "")
                    predictions[name] = (label, top)
                else:
                    predictions[name] = (raw[j][:, 0] * spec.std + spec.mean, None)
        return predictions

    @staticmethod
    def _filled(given, imputed):
        if given.dtype == tf.string:
            return tf.where(tf.equal(given, ""), imputed, given)
        return tf.where(tf.math.is_finite(given), given, imputed)

    def serve(self, inputs):
        columns = {name: inputs[key] for name, key in self.keys.items() if key in inputs}
        constants = {
            name: self._filled(columns[name], tf.constant(str(value)) if columns[name].dtype == tf.string else tf.constant(float(value), tf.float32))
            for name, value in self.constants.items()
        }
        out = {self.keys[name]: filled for name, filled in constants.items()}
        stage, previous, start = columns, {}, 0
        for r, size in enumerate(self.round_sizes):
            networks, start = self.networks[start : start + size], start + size
            last = r == len(self.round_sizes) - 1
            predictions = self._predict(networks, stage, last)
            if not last:  # the next round reads the table completed by this one
                stage = {**columns, **constants}
                for name, (value, _) in predictions.items():
                    stage[name] = self._filled(columns[name], tf.round(value) if name in self.integer_columns else value)
                previous = predictions
        for name, (value, top) in predictions.items():
            key = self.keys[name]
            if name in previous and top is None:  # numeric: the mean of the last two rounds
                value = (value + previous[name][0]) / 2
            if self.complete:
                out[key] = self._filled(columns[name], value)
            else:
                out[f"{key}_imputed"] = value
                if top is not None:
                    out[f"{key}_imputed_proba"] = top
        return out


def export(imputer, base_path, name, version=None, precision_threshold=0.0):
    """Write a fitted `TableImputer`, `SimpleImputer` or `Completer` as a SavedModel version (see the
    module docstring) under `<base_path>/<name>/<version>/`; returns its directory."""
    from serving.export import save_version

    if isinstance(imputer, Completer):
        if imputer.imputers is None:
            raise RuntimeError("Completer is not fitted: call fit first")
        rounds, columns, complete, constants = imputer.imputer_rounds, imputer.frame_columns, True, imputer.constants
        imputers = [member for members in rounds for member in members]
        if not imputers and not constants:
            raise ValueError("this Completer imputes no column (nothing was missing at fit): there is nothing to export")
    elif isinstance(imputer, TableImputer):
        imputer._check_fitted()
        imputers, columns, complete, constants = [imputer], imputer.input_columns, False, {}
        rounds = [imputers]
    else:
        raise TypeError(f"export takes a fitted TableImputer, SimpleImputer or Completer, got {type(imputer).__name__}")
    specs = {}  # for the columns' kinds and the warm-up rows (each network denormalises with its own specs)
    for member in imputers:
        specs.update(member.specs)
    if complete:
        specs.update({c: imputer.specs[c] for c in columns})
    cutoffs = {}
    for member in imputers:
        for output in member.output_columns:
            if specs[output].kind == "categorical":
                cutoffs[output] = member._cutoffs(output, precision_threshold).astype(np.float32)
    keys = signature_keys(list(columns) + [c for c in specs if c not in columns])  # inputs, then outputs that are not inputs
    module = _TableModule(rounds, specs, keys, cutoffs, complete, constants)
    input_specs = {keys[c]: tf.TensorSpec([None], tf.float32 if specs[c].kind == "numeric" else tf.string, name=keys[c]) for c in columns}
    serve = tf.function(module.serve, input_signature=[input_specs])
    signatures = {"serving_default": serve}

    def finish(staging):
        folder = os.path.join(staging, "assets.extra")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "keraszoo_columns.json"), "w", encoding="utf-8") as f:
            json.dump({"keys": keys, "inputs": [keys[c] for c in columns], "precision_threshold": precision_threshold}, f, ensure_ascii=False, indent=1)
        write_warmup_requests(staging, name, {c: specs[c] for c in columns}, keys)

    return save_version(module, signatures, base_path, name, version, finish)


def typical_rows(specs, rows, seed=0):
    """{column: values} of `rows` typical rows: numeric means, most frequent categories, short text; a fifth missing."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in specs.items():
        missing = rng.random(rows) < 0.2
        if spec.kind == "numeric":
            out[name] = np.where(missing, np.nan, spec.mean).astype(np.float32)
        else:
            value = spec.vocabulary[0] if spec.kind == "categorical" else "text"
            out[name] = np.array([b"" if m else value.encode("utf-8") for m in missing], dtype=object)
    return out


def write_warmup_requests(saved_model_dir, name, specs, keys):
    """TF Serving's warm-up file for the tabular signature: `WARMUP_ROWS` requests of `typical_rows`."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from serving.tensors import to_tensor_proto

    path = os.path.join(saved_model_dir, "assets.extra", "tf_serving_warmup_requests")
    with tf.io.TFRecordWriter(path) as writer:
        for rows in WARMUP_ROWS:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = "serving_default"
            for column, values in typical_rows(specs, rows).items():
                request.inputs[keys[column]].CopyFrom(to_tensor_proto(values))
            writer.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())
    return path
