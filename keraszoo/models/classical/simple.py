"""Per-column constant imputation: every missing entry of column j gets one statistic of column j's
observed training values (the usual "simple imputation" baselines, cf. sklearn's SimpleImputer)."""
import numpy as np
import tensorflow as tf

from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import register_model


class _ColumnStatisticImputer(ClassicalImputer):
    """Learns one value per column from its observed entries; `_statistic` says which."""

    def _fit(self, x, mask):
        observed = mask == 1
        self.statistics_ = np.array([self._statistic(x[observed[:, j], j]) for j in range(x.shape[1])], dtype=np.float64)

    def _impute(self, x, mask):
        return np.broadcast_to(self.statistics_, x.shape)

    def tf_impute(self, x, mask):
        return tf.broadcast_to(tf.constant(self.statistics_, x.dtype), tf.shape(x))

    def _statistic(self, values):
        raise NotImplementedError


@register_model("zero")
class ZeroImputer(_ColumnStatisticImputer):
    """Fills every missing entry with 0 (the minimum of the min-max scaled range)."""

    def _statistic(self, values):
        return 0.0


@register_model("mean")
class MeanImputer(_ColumnStatisticImputer):
    """Fills column j with the mean of its observed training values."""

    def _statistic(self, values):
        return values.mean()


@register_model("median")
class MedianImputer(_ColumnStatisticImputer):
    """Fills column j with the median of its observed training values."""

    def _statistic(self, values):
        return np.median(values)


@register_model("most_frequent")
class MostFrequentImputer(_ColumnStatisticImputer):
    """Fills column j with its most frequent observed training value; ties go to the smallest value,
    as in sklearn's SimpleImputer(strategy="most_frequent")."""

    def _statistic(self, values):
        uniques, counts = np.unique(values, return_counts=True)
        return uniques[np.argmax(counts)]  # np.unique sorts, argmax takes the first maximum
