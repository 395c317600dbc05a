"""The contract every classical (non-Keras) baseline follows.

A classical imputer works on min-max scaled arrays exactly like a deep model: `fit_arrays(x, mask)`
learns from the observed entries (mask == 1 means observed), `impute(x, mask)` returns a full
float64 matrix whose observed entries are `x`'s own, bit for bit. It is inductive: `impute` on new
rows uses only what `fit_arrays` learned.
"""
import numpy as np

from keraszoo.validation import check_x_mask, keep_observed


class ClassicalImputer:
    """Base class: subclasses implement `_fit(x, mask)` and `_impute(x, mask)` on validated float64 arrays.

    `x` given to `_fit`/`_impute` holds 0.0 at missing entries; `mask` is float64 0/1.
    """

    registry_name = None
    #: non-default constructor parameters the contract checks use (`contract_example`).
    contract_params = {}
    task = "impute"

    def __init__(self):
        self.n_features_ = None

    # public contract -------------------------------------------------------------------------
    def fit_arrays(self, x, mask):
        x, mask = check_x_mask(x, mask, where=f"{self.registry_name}.fit", dtype=np.float64)
        empty = np.flatnonzero(mask.sum(axis=0) == 0)
        if empty.size:
            raise ValueError(
                f"{self.registry_name}.fit: column(s) {empty.tolist()} have no observed value; nothing can be learned for them"
            )
        self.n_features_ = x.shape[1]
        self._fit(x, mask)
        return self

    def impute(self, x, mask):
        if self.n_features_ is None:
            raise RuntimeError(f"{self.registry_name}: call fit_arrays before impute")
        x, mask = check_x_mask(x, mask, n_features=self.n_features_, where=f"{self.registry_name}.impute", dtype=np.float64)
        if mask.all():
            return x
        return keep_observed(x, mask, self._impute(x, mask))

    def tf_impute(self, x, mask):
        """TensorFlow version of `_impute` on scaled float32 tensors, for SavedModel export.

        Uses only what `fit_arrays` learned (as constants); the caller keeps observed entries.
        Models without one cannot be exported yet.
        """
        raise NotImplementedError(f"{self.registry_name} has no TensorFlow imputation yet, so it cannot be exported")

    def export_variables(self):
        """TensorFlow variables `tf_impute` reads (the SavedModel must track them): none for the
        classical baselines, whose fitted state becomes constants; a model that runs Keras networks
        inside its `tf_impute` (`auto` with a deep member) lists their variables."""
        return []

    def _eager_constants(self, source, build):
        """The dict `build()` returns, its numpy arrays as tensors made once, outside any trace.

        Reused by every later trace while `source` (the fitted state they come from) is the same
        object: a SavedModel stores an eager tensor its functions capture once, whereas a constant
        made while tracing is stored once per signature (twice for serving_default and
        impute_with_mask). Other values (Python ints, ...) pass through. Dropped when pickled.
        """
        cached = self.__dict__.get("_eager_cache")
        if cached is None or cached[0] is not source:
            import tensorflow as tf

            with tf.init_scope():  # eager even while tracing
                tensors = {k: tf.constant(v) if isinstance(v, np.ndarray) else v for k, v in build().items()}
            self._eager_cache = (source, tensors)
        return self._eager_cache[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_eager_cache", None)
        return state

    @classmethod
    def exportable(cls):
        return cls.tf_impute is not ClassicalImputer.tf_impute

    @classmethod
    def contract_example(cls):
        """The small table `keraszoo.contract` checks this model on, with `contract_params`."""
        from keraszoo.testing import table_example

        x, mask = table_example()
        return {"x": x, "mask": mask, "params": dict(cls.contract_params)}

    def get_config(self):
        """Constructor parameters, so `type(m)(**m.get_config())` builds an identical untrained model."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # subclass hooks --------------------------------------------------------------------------
    def _fit(self, x, mask):
        raise NotImplementedError

    def _impute(self, x, mask):
        raise NotImplementedError
