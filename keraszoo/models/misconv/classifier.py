"""What section 1.2's classifiers share (MisConv's and the first-layer baselines'): the network after the
first conv_n, the widths, trackers and probabilities."""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepClassifier, positive_int
from keraszoo.models.layers import conv_relu_bn, torch_default_init


def section_body(example_shape, first_filters, filters, latent, n_classes, seed):
    """Everything after the first conv_n of section 1.2: down, [conv_filters] x 2, lin_latent, lin_classes;
    weights initialised as PyTorch does (`torch_default_init`, which says why)."""
    height, width, _ = example_shape
    return keras.Sequential(
        [keras.Input((height, width, first_filters))]
        + conv_relu_bn(first_filters, 2, seed=seed * 100 + 1, initializer=torch_default_init)  # down
        + conv_relu_bn(filters, seed=seed * 100 + 2, initializer=torch_default_init)
        + conv_relu_bn(filters, seed=seed * 100 + 3, initializer=torch_default_init)
        + [
            keras.layers.Flatten(),
            keras.layers.Dense(latent, activation="relu", kernel_initializer=torch_default_init(seed * 100 + 4)),
            keras.layers.Dense(n_classes, kernel_initializer=torch_default_init(seed * 100 + 5)),
        ],
        name="body",
    )


class SectionClassifier(DeepClassifier):
    """Section 1.2's classifier; a subclass builds `first` (the first conv_n) and `body` (`section_body`),
    and gives `logits`. first_filters (32), filters (64), latent (20): section 1.2's widths."""

    example_kinds = ("image",)
    default_batch_size = 24
    default_steps_per_execution = 10

    def __init__(self, first_filters=32, filters=64, latent=20, n_classes=None, seed=0, **kwargs):
        super().__init__(n_classes=n_classes, seed=seed, **kwargs)
        self.first_filters = positive_int(first_filters, "first_filters")
        self.filters = positive_int(filters, "filters")
        self.latent = positive_int(latent, "latent")
        self.trackers = {"loss": keras.metrics.Mean(name="loss"), "accuracy": keras.metrics.Mean(name="accuracy")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def predict_proba_batch(self, x, mask):
        return tf.nn.softmax(self.logits(x, mask))

    def get_config(self):
        config = super().get_config()
        config.update({"first_filters": self.first_filters, "filters": self.filters, "latent": self.latent})
        return config
