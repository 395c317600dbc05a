"""SavedModel export in TF Serving's layout: `<base_path>/<name>/<version>/`.

    from serving.export import export
    export(fitted_zoo_imputer, "saved_models/serving", "gain_breast", version=1)

Signatures (inputs and outputs float32, raw scale — the imputer's min-max scaling is baked in):

* ``serving_default(x)`` -> ``{"imputed": ...}``: ``x`` [None, D] (tables) or [None, H, W, C] (images)
  with NaN marking missing values;
* ``impute_with_mask(x, mask)`` -> ``{"imputed": ...}``: ``mask`` 1 = observed, 0 = missing;
* ``multiple_imputation(x, n)`` -> ``{"imputations": [n, None, ...]}`` (generative models only).

Classifiers (`keraszoo.sklearn.ZooClassifier`) export ``predict(x)`` (also ``serving_default``) and
``predict_with_mask(x, mask)`` -> ``{"probabilities": [None, n_classes]}`` (columns in the order of
the classifier's `classes_`).

Deep models impute at most `rows_per_chunk` rows at a time inside the graph (their memory hint), so
a request's memory is bounded by the chunk, not by its row count.

Each export also rewrites `<base_path>/models.config`, TF Serving's model config listing every
model exported under `base_path` (every version served), and `models.docker.config`, the same with
paths under `/models` for the TF Serving container of `docker-compose.yml`. A version appears
atomically (written under a hidden name, then renamed), so a polling server never loads half of one.

Bad input is rejected inside the graph (so TF Serving itself answers INVALID_ARGUMENT naming it):
inf anywhere in `x`, NaN at an entry `mask` marks observed, a mask other than 0/1, and `n` outside
[1, MAX_DRAWS] or n x rows above MAX_DRAWN_ROWS.

Observed entries pass through unchanged (selected, never recomputed). Deep models export, and so
do the classical baselines with a TensorFlow version of their imputation (`tf_impute`: zero, mean,
median, most_frequent, em, matrix, knn, mice, missforest); only mice with sample_posterior=True is
refused (its random draws cannot be replayed in a graph).
"""
import os
import shutil

import numpy as np
import tensorflow as tf

from keraszoo.models.base import IMPUTE_MEMORY_VALUES, DeepImputer, chunked_rows, keep_observed

#: where docker-compose.yml mounts the export base path inside the TF Serving container, and the
#: config file (beside models.config) whose paths point there.
DOCKER_MODELS_ROOT = "/models"
DOCKER_CONFIG_NAME = "models.docker.config"
#: the most imputations one `multiple_imputation` call may draw (bounds the memory a request can ask for).
MAX_DRAWS = 1000
#: the most rows (draws x rows) one `multiple_imputation` call may return.
MAX_DRAWN_ROWS = 500_000


class _ImputerModule(tf.Module):
    """The graph TF Serving runs: scale, impute (or classify) in scaled space, unscale, keep observed entries.

    `impute_scaled(scaled, mask)`, `draw_scaled(scaled, mask, n)` (None if not generative) and
    `proba_scaled(scaled, mask)` (classifiers) are closures over the model, so only its variables are
    tracked here: saving a tracked Keras model would also trace its `call` with Keras's own default
    signature, which does not fit (x, mask). They take the model's layout [rows, *model_shape]; the
    module reshapes requests [rows, *input_shape] to it and back (images to a table-only model).
    """

    def __init__(self, variables, functions, data_min, data_range, constant_columns, model_shape):
        super().__init__(name="keraszoo_imputer")
        self.model_variables = list(variables)
        self._functions = functions
        self._model_shape = list(model_shape)
        # float64, as ZooImputer.transform scales: a float32 scaling can land one ulp away and send a
        # value to the other side of a MissForest split. Per column (tables) or channel (images): the last axis.
        self.data_min = tf.constant(data_min, tf.float64)
        self.data_range = tf.constant(data_range, tf.float64)
        self.constant_columns = tf.constant(constant_columns, tf.bool)

    def _checked(self, x, mask):
        # Checked in the graph, so TF Serving itself answers INVALID_ARGUMENT with these messages.
        checks = [
            tf.debugging.Assert(
                tf.reduce_all((mask == 0.0) | (mask == 1.0)), ["mask must hold only 0 (missing) and 1 (observed)"]
            ),
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(x) | (mask == 0.0)),
                ["x holds inf (or NaN at an observed entry): mark missing values with NaN (or 0 in mask)"],
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(x)

    def _scaled(self, x, mask):
        x64 = tf.cast(x, tf.float64)
        scaled = tf.cast(tf.where(mask > 0, (x64 - self.data_min) / self.data_range, tf.zeros_like(x64)), tf.float32)
        model_shape = tf.concat([tf.shape(x)[:1], self._model_shape], axis=0)
        return tf.reshape(scaled, model_shape), tf.reshape(mask, model_shape)

    def _unscaled(self, x, mask, imputed):
        imputed = tf.cast(tf.reshape(imputed, tf.shape(x)), tf.float64) * self.data_range + self.data_min
        imputed = tf.where(self.constant_columns, tf.broadcast_to(self.data_min, tf.shape(imputed)), imputed)
        return keep_observed(x, mask, tf.cast(imputed, tf.float32))

    def impute_with_mask(self, x, mask):
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        return {"imputed": self._unscaled(x, mask, self._functions["impute"](scaled, model_mask))}

    def serving_default(self, x):
        return self.impute_with_mask(x, _observed(x))

    def multiple_imputation(self, x, n):
        in_range = tf.logical_and(n >= 1, n <= MAX_DRAWS)
        total = tf.cast(n, tf.int64) * tf.cast(tf.shape(x)[0], tf.int64)
        checks = [
            tf.debugging.Assert(in_range, [f"n must be in [1, {MAX_DRAWS}]"]),
            tf.debugging.Assert(total <= MAX_DRAWN_ROWS, [f"n x rows must be at most {MAX_DRAWN_ROWS}: send fewer rows or draws"]),
        ]
        with tf.control_dependencies(checks):
            n = tf.identity(n)
        mask = _observed(x)
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        draws = self._functions["sample"](scaled, model_mask, n)
        unscale = lambda draw: self._unscaled(x, mask, draw)  # noqa: E731
        return {"imputations": tf.map_fn(unscale, draws, fn_output_signature=tf.float32)}

    def predict_with_mask(self, x, mask):
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        return {"probabilities": self._functions["proba"](scaled, model_mask)}

    def predict(self, x):
        return self.predict_with_mask(x, _observed(x))


def _observed(x):
    return tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)


def _model_functions(model):
    """(variables, {"impute"/"sample"/"proba": graph function on scaled [rows, *model_shape]}) of a fitted model.

    Deep models run their graph hooks on at most `rows_per_chunk` rows at a time (`chunked_rows`), so
    a large request is imputed in bounded memory.
    """
    if isinstance(model, DeepImputer):
        functions = {}
        if model.task == "classify":
            functions["proba"] = lambda s, m: chunked_rows(model._proba_graph, [s, m], model.rows_per_chunk())
        else:
            functions["impute"] = lambda s, m: chunked_rows(model._impute_graph, [s, m], model.rows_per_chunk())
            if model.generative:

                def sample(s, m, n):
                    chunk = IMPUTE_MEMORY_VALUES // tf.maximum(tf.cast(model.values_per_row(n), tf.int64), 1)
                    return chunked_rows(lambda a, b: model._sample_graph(a, b, n), [s, m], tf.cast(chunk, tf.int32), axis=1)

                functions["sample"] = sample
        return model.variables, functions
    if model.exportable():
        return [], {"impute": model.tf_impute}
    return None, None


def export(imputer, base_path, name, version=None):
    """Write a fitted `keraszoo.sklearn.ZooImputer` (or `ZooClassifier`) as a SavedModel; returns its directory.

    `version=None` (default) takes the next free version number (see `next_version`). Inputs are
    [None, *example shape] as fitted: [None, D] for tables, [None, H, W, C] for images.
    """
    if not hasattr(imputer, "model_"):
        raise ValueError("export needs a fitted ZooImputer: call fit first")
    variables, functions = _model_functions(imputer.model_)
    if functions is None:
        raise NotImplementedError(
            f"model {imputer.name!r} has no TensorFlow imputation yet, so it cannot be exported as a SavedModel"
        )
    if not (isinstance(name, str) and name and os.path.basename(name) == name and name not in (".", "..")):
        raise ValueError(f"model name must be a plain directory name, got {name!r}")
    version = next_version(base_path, name) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    scaler = imputer.scaler_
    input_shape = tuple(getattr(imputer, "input_shape_", (scaler.n_features,)))
    model_shape = tuple(getattr(imputer, "model_input_shape_", input_shape))
    module = _ImputerModule(
        variables,
        functions,
        scaler.data_min_.astype(np.float64),
        scaler.data_range_.astype(np.float64),
        imputer.constant_columns_,
        model_shape,
    )
    x_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="x")
    mask_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="mask")
    if "proba" in functions:
        signatures = {
            "serving_default": tf.function(module.predict, input_signature=[x_spec]),
            "predict": tf.function(module.predict, input_signature=[x_spec]),
            "predict_with_mask": tf.function(module.predict_with_mask, input_signature=[x_spec, mask_spec]),
        }
    else:
        signatures = {
            "serving_default": tf.function(module.serving_default, input_signature=[x_spec]),
            "impute_with_mask": tf.function(module.impute_with_mask, input_signature=[x_spec, mask_spec]),
        }
        if "sample" in functions:
            signatures["multiple_imputation"] = tf.function(
                module.multiple_imputation, input_signature=[x_spec, tf.TensorSpec([], tf.int32, name="n")]
            )
    path = os.path.join(base_path, name, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: TF Serving versions are immutable, export a new version number")
    # Written under a hidden name, then renamed: a server polling base_path never sees half a model.
    staging = os.path.join(base_path, name, f".{version}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    tf.saved_model.save(module, staging, signatures=signatures)
    os.rename(staging, path)
    write_models_config(base_path)
    write_models_config(base_path, serving_root=DOCKER_MODELS_ROOT, filename=DOCKER_CONFIG_NAME)
    return path


def next_version(base_path, name):
    """One more than the highest version exported as `name` under `base_path` (1 for a new model)."""
    folder = os.path.join(base_path, name)
    versions = [int(v) for v in os.listdir(folder) if v.isdigit()] if os.path.isdir(folder) else []
    return max(versions, default=0) + 1


def write_models_config(base_path, serving_root=None, filename="models.config"):
    """Write `<base_path>/models.config` (TF Serving's text format) listing every exported model there.

    A model is a folder holding at least one numeric version folder with a `saved_model.pb`; base
    paths are absolute, as `tensorflow_model_server --model_config_file` needs. Each entry asks for
    every version to be served (`model_version_policy { all {} }`; TF Serving's own default is the
    latest only), so a client's `model_spec.version` can pick an older one; requests without a
    version get the latest. `serving_root` replaces `base_path` in the entries (for a server that
    sees the folder elsewhere, e.g. `/models` inside the TF Serving container). Returns the file path.
    """
    base_path = os.path.abspath(base_path)
    root = base_path if serving_root is None else serving_root
    names = sorted(
        name
        for name in os.listdir(base_path)
        if os.path.isdir(os.path.join(base_path, name))
        and any(
            v.isdigit() and os.path.exists(os.path.join(base_path, name, v, "saved_model.pb"))
            for v in os.listdir(os.path.join(base_path, name))
        )
    )
    entries = "".join(
        f"  config {{\n    name: '{name}'\n    base_path: '{root.rstrip('/')}/{name}'\n    model_platform: 'tensorflow'\n"
        "    model_version_policy { all {} }\n  }\n"
        for name in names
    )
    config_path = os.path.join(base_path, filename)
    with open(config_path, "w") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")
    return config_path
