"""SavedModel export in TF Serving's layout: `<base_path>/<name>/<version>/`.

    from serving.export import export
    export(fitted_zoo_imputer, "saved_models/serving", "gain_breast", version=1)

Signatures (inputs and outputs float32, raw scale — the imputer's min-max scaling is baked in):

* ``serving_default(x)`` -> ``{"imputed": ...}``: ``x`` [None, D] with NaN marking missing values;
* ``impute_with_mask(x, mask)`` -> ``{"imputed": ...}``: ``mask`` 1 = observed, 0 = missing;
* ``multiple_imputation(x, n)`` -> ``{"imputations": [n, None, D]}`` (generative models only).

Observed entries pass through unchanged (selected, never recomputed). Deep models export now;
classical baselines need TensorFlow versions of their imputation and are not exportable yet
(issue #4).
"""
import os

import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, keep_observed


class _ImputerModule(tf.Module):
    """The graph TF Serving runs: scale, impute with the trained network, unscale, keep observed."""

    def __init__(self, model, data_min, data_range, constant_columns):
        super().__init__(name="keraszoo_imputer")
        # Track the model's variables, not the Keras model: saving a tracked Keras model would also
        # trace its `call` with Keras's own default signature, which does not fit (x, mask) inputs.
        self.model_variables = list(model.variables)
        self._network = lambda: model
        self.data_min = tf.constant(data_min, tf.float32)
        self.data_range = tf.constant(data_range, tf.float32)
        self.constant_columns = tf.constant(constant_columns, tf.bool)

    def _complete(self, x, mask, impute_scaled):
        scaled = tf.where(mask > 0, (x - self.data_min) / self.data_range, tf.zeros_like(x))
        imputed = impute_scaled(scaled, mask) * self.data_range + self.data_min
        imputed = tf.where(self.constant_columns, tf.broadcast_to(self.data_min, tf.shape(imputed)), imputed)
        return keep_observed(x, mask, imputed)

    def impute_with_mask(self, x, mask):
        return {"imputed": self._complete(x, mask, lambda s, m: self._network()((s, m), training=False))}

    def serving_default(self, x):
        mask = tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)
        return self.impute_with_mask(x, mask)

    def multiple_imputation(self, x, n):
        mask = tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)

        def draw(_):
            return self._complete(x, mask, lambda s, m: self._network().sample_draw(s, m))

        return {"imputations": tf.map_fn(draw, tf.range(n), fn_output_signature=tf.float32)}


def export(imputer, base_path, name, version=1):
    """Write fitted `imputer` (a `keraszoo.sklearn.ZooImputer`) as a SavedModel; returns its directory."""
    if not hasattr(imputer, "model_"):
        raise ValueError("export needs a fitted ZooImputer: call fit first")
    model = imputer.model_
    if not isinstance(model, DeepImputer):
        raise NotImplementedError(
            f"model {imputer.name!r} is a classical baseline: SavedModel export exists for deep models only so far"
        )
    if not (isinstance(name, str) and name and os.path.basename(name) == name and name not in (".", "..")):
        raise ValueError(f"model name must be a plain directory name, got {name!r}")
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    scaler = imputer.scaler_
    d = scaler.n_features
    module = _ImputerModule(
        model, scaler.data_min_.astype(np.float32), scaler.data_range_.astype(np.float32), imputer.constant_columns_
    )
    x_spec = tf.TensorSpec([None, d], tf.float32, name="x")
    signatures = {
        "serving_default": tf.function(module.serving_default, input_signature=[x_spec]),
        "impute_with_mask": tf.function(
            module.impute_with_mask, input_signature=[x_spec, tf.TensorSpec([None, d], tf.float32, name="mask")]
        ),
    }
    if model.generative:
        signatures["multiple_imputation"] = tf.function(
            module.multiple_imputation, input_signature=[x_spec, tf.TensorSpec([], tf.int32, name="n")]
        )
    path = os.path.join(base_path, name, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: TF Serving versions are immutable, export a new version number")
    tf.saved_model.save(module, path, signatures=signatures)
    return path
