"""SavedModel export in TF Serving's layout: `<base_path>/<name>/<version>/`.

    from serving.export import export
    export(fitted_zoo_imputer, "saved_models/serving", "gain_breast", version=1)

Signatures (inputs and outputs float32, raw scale — the imputer's min-max scaling is baked in):

* ``serving_default(x)`` -> ``{"imputed": ...}``: ``x`` [None, D] with NaN marking missing values;
* ``impute_with_mask(x, mask)`` -> ``{"imputed": ...}``: ``mask`` 1 = observed, 0 = missing;
* ``multiple_imputation(x, n)`` -> ``{"imputations": [n, None, D]}`` (generative models only).

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

from keraszoo.models.base import DeepImputer, keep_observed

#: where docker-compose.yml mounts the export base path inside the TF Serving container, and the
#: config file (beside models.config) whose paths point there.
DOCKER_MODELS_ROOT = "/models"
DOCKER_CONFIG_NAME = "models.docker.config"
#: the most imputations one `multiple_imputation` call may draw (bounds the memory a request can ask for).
MAX_DRAWS = 1000
#: the most rows (draws x rows) one `multiple_imputation` call may return.
MAX_DRAWN_ROWS = 500_000


class _ImputerModule(tf.Module):
    """The graph TF Serving runs: scale, impute in scaled space, unscale, keep observed entries.

    `impute_scaled(scaled, mask)` and `draw_scaled(scaled, mask)` (None if not generative) are
    closures over the model, so only its variables are tracked here: saving a tracked Keras model
    would also trace its `call` with Keras's own default signature, which does not fit (x, mask).
    """

    def __init__(self, variables, impute_scaled, draw_scaled, data_min, data_range, constant_columns):
        super().__init__(name="keraszoo_imputer")
        self.model_variables = list(variables)
        self._impute_scaled = impute_scaled
        self._draw_scaled = draw_scaled
        # float64, as ZooImputer.transform scales: a float32 scaling can land one ulp away and send a
        # value to the other side of a MissForest split
        self.data_min = tf.constant(data_min, tf.float64)
        self.data_range = tf.constant(data_range, tf.float64)
        self.constant_columns = tf.constant(constant_columns, tf.bool)

    def _complete(self, x, mask, impute_scaled):
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
            x = tf.identity(x)
        x64 = tf.cast(x, tf.float64)
        scaled = tf.cast(tf.where(mask > 0, (x64 - self.data_min) / self.data_range, tf.zeros_like(x64)), tf.float32)
        imputed = tf.cast(impute_scaled(scaled, mask), tf.float64) * self.data_range + self.data_min
        imputed = tf.where(self.constant_columns, tf.broadcast_to(self.data_min, tf.shape(imputed)), imputed)
        imputed = tf.cast(imputed, tf.float32)
        return keep_observed(x, mask, imputed)

    def impute_with_mask(self, x, mask):
        return {"imputed": self._complete(x, mask, self._impute_scaled)}

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
        draw = lambda _: self._complete(x, mask, self._draw_scaled)  # noqa: E731
        return {"imputations": tf.map_fn(draw, tf.range(n), fn_output_signature=tf.float32)}


def _observed(x):
    return tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)


def export(imputer, base_path, name, version=None):
    """Write fitted `imputer` (a `keraszoo.sklearn.ZooImputer`) as a SavedModel; returns its directory.

    `version=None` (default) takes the next free version number (see `next_version`).
    """
    if not hasattr(imputer, "model_"):
        raise ValueError("export needs a fitted ZooImputer: call fit first")
    model = imputer.model_
    if isinstance(model, DeepImputer):
        variables = model.variables
        impute_scaled = lambda s, m: model((s, m), training=False)  # noqa: E731
        draw_scaled = model.sample_draw if model.generative else None
    elif model.exportable():
        variables, impute_scaled, draw_scaled = [], model.tf_impute, None
    else:
        raise NotImplementedError(
            f"model {imputer.name!r} has no TensorFlow imputation yet, so it cannot be exported as a SavedModel"
        )
    if not (isinstance(name, str) and name and os.path.basename(name) == name and name not in (".", "..")):
        raise ValueError(f"model name must be a plain directory name, got {name!r}")
    version = next_version(base_path, name) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    scaler = imputer.scaler_
    d = scaler.n_features
    module = _ImputerModule(
        variables,
        impute_scaled,
        draw_scaled,
        scaler.data_min_.astype(np.float64),
        scaler.data_range_.astype(np.float64),
        imputer.constant_columns_,
    )
    x_spec = tf.TensorSpec([None, d], tf.float32, name="x")
    signatures = {
        "serving_default": tf.function(module.serving_default, input_signature=[x_spec]),
        "impute_with_mask": tf.function(
            module.impute_with_mask, input_signature=[x_spec, tf.TensorSpec([None, d], tf.float32, name="mask")]
        ),
    }
    if draw_scaled is not None:
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
