"""SavedModel export in TF Serving's layout: `<base_path>/<name>/<version>/`.

    from serving.export import export
    export(fitted_zoo_imputer, "saved_models/serving", "gain_breast", version=1)

Signatures (inputs and outputs float32, raw scale — the imputer's min-max scaling is baked in):

* ``serving_default(x)`` -> ``{"imputed": ...}``: ``x`` [None, D] with NaN marking missing values;
* ``impute_with_mask(x, mask)`` -> ``{"imputed": ...}``: ``mask`` 1 = observed, 0 = missing;
* ``multiple_imputation(x, n)`` -> ``{"imputations": [n, None, D]}`` (generative models only).

Each export also rewrites `<base_path>/models.config`, TF Serving's model config listing every
model exported under `base_path`.

Observed entries pass through unchanged (selected, never recomputed). Deep models export, and so
do the classical baselines with a TensorFlow version of their imputation (`tf_impute`: zero, mean,
median, most_frequent, em, matrix, knn); mice and missforest are not exportable yet (issue #4).
"""
import os

import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, keep_observed


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
        self.data_min = tf.constant(data_min, tf.float32)
        self.data_range = tf.constant(data_range, tf.float32)
        self.constant_columns = tf.constant(constant_columns, tf.bool)

    def _complete(self, x, mask, impute_scaled):
        scaled = tf.where(mask > 0, (x - self.data_min) / self.data_range, tf.zeros_like(x))
        imputed = impute_scaled(scaled, mask) * self.data_range + self.data_min
        imputed = tf.where(self.constant_columns, tf.broadcast_to(self.data_min, tf.shape(imputed)), imputed)
        return keep_observed(x, mask, imputed)

    def impute_with_mask(self, x, mask):
        return {"imputed": self._complete(x, mask, self._impute_scaled)}

    def serving_default(self, x):
        return self.impute_with_mask(x, _observed(x))

    def multiple_imputation(self, x, n):
        mask = _observed(x)
        draw = lambda _: self._complete(x, mask, self._draw_scaled)  # noqa: E731
        return {"imputations": tf.map_fn(draw, tf.range(n), fn_output_signature=tf.float32)}


def _observed(x):
    return tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)


def export(imputer, base_path, name, version=1):
    """Write fitted `imputer` (a `keraszoo.sklearn.ZooImputer`) as a SavedModel; returns its directory."""
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
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    scaler = imputer.scaler_
    d = scaler.n_features
    module = _ImputerModule(
        variables,
        impute_scaled,
        draw_scaled,
        scaler.data_min_.astype(np.float32),
        scaler.data_range_.astype(np.float32),
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
    tf.saved_model.save(module, path, signatures=signatures)
    write_models_config(base_path)
    return path


def write_models_config(base_path):
    """Write `<base_path>/models.config` (TF Serving's text format) listing every exported model there.

    A model is a folder holding at least one numeric version folder with a `saved_model.pb`; base
    paths are absolute, as `tensorflow_model_server --model_config_file` needs. Returns the file path.
    """
    base_path = os.path.abspath(base_path)
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
        f"  config {{\n    name: '{name}'\n    base_path: '{os.path.join(base_path, name)}'\n    model_platform: 'tensorflow'\n  }}\n"
        for name in names
    )
    config_path = os.path.join(base_path, "models.config")
    with open(config_path, "w") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")
    return config_path
