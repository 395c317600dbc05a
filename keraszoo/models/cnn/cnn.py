"""A convolutional classifier of (incomplete) images, the downstream network of miwae.md Table 1.

miwae.md (Sec. 3, Table 1): "We train a two-layer convolutional network (whose architecture is similar to
the dropout one of Wan et al., 2013 and model selection is done using early stopping)". The paper gives
no more. Our reading of Wan et al.'s MNIST network (DropConnect, ICML 2013, its "dropout" column): two
5x5 convolutions with 32 and 64 feature maps, each followed by ReLU and 2x2 max-pooling, a 150-unit
ReLU layer with dropout (rate 0.5), and a softmax. Early stopping is the caller's choice of when to stop
(`training.miwae_mnist` keeps the weights of the best validation cross-entropy).

Incomplete inputs: the network sees the zero-filled image and its mask as channels ([H, W, 2C]), so the
same model classifies complete images (mask of ones, Table 1's case) and incomplete ones.
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepClassifier, positive_int
from keraszoo.registry import register_model


@register_model("cnn")
class ConvClassifier(DeepClassifier):
    """Class probabilities of images [H, W, C] (C channels, any H and W of at least 4) and their masks.

    filters: the two convolutions' feature maps (Wan et al.: 32, 64); dense_units: the hidden layer
    (150); dropout: its dropout rate during training (0.5); kernel_size: 5.
    """

    example_kinds = ("image",)
    optimizer_networks = {"classifier_optimizer": ("features", "head")}
    default_learning_rates = {"classifier_optimizer": 1e-3}
    default_iterations = 2_000

    def __init__(self, filters=(32, 64), dense_units=150, dropout=0.5, kernel_size=5, n_classes=None, seed=0, **kwargs):
        super().__init__(n_classes=n_classes, seed=seed, **kwargs)
        if not isinstance(filters, (list, tuple)) or len(filters) != 2:
            raise ValueError(f"filters must be two positive integers (the two convolutions), got {filters!r}")
        for i, value in enumerate(filters):
            positive_int(value, f"filters[{i}]")
        for name, value in (("dense_units", dense_units), ("kernel_size", kernel_size)):
            positive_int(value, name)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.filters = [int(f) for f in filters]
        self.dense_units = int(dense_units)
        self.dropout = float(dropout)
        self.kernel_size = int(kernel_size)
        self.trackers = {"loss": keras.metrics.Mean(name="loss"), "accuracy": keras.metrics.Mean(name="accuracy")}

    def build_networks(self, example_shape):
        height, width, channels = example_shape
        if min(height, width) < 4:
            raise ValueError(f"cnn needs images of at least 4x4 (two 2x2 poolings), got {height}x{width}")
        layers = [keras.Input((height, width, 2 * channels))]
        for i, n_maps in enumerate(self.filters):
            layers += [
                keras.layers.Conv2D(n_maps, self.kernel_size, padding="same", activation="relu", kernel_initializer=keras.initializers.HeNormal(self.seed * 10 + i), name=f"conv_{i}"),
                keras.layers.MaxPooling2D(2, name=f"pool_{i}"),
            ]
        layers += [
            keras.layers.Flatten(),
            keras.layers.Dense(self.dense_units, activation="relu", kernel_initializer=keras.initializers.HeNormal(self.seed * 10 + 2), name="hidden"),
        ]
        self.features = keras.Sequential(layers, name="features")
        self.head = keras.Sequential(
            [keras.Input((self.dense_units,)), keras.layers.Dense(self.n_classes, kernel_initializer=keras.initializers.GlorotUniform(self.seed * 10 + 3), name="logits")],
            name="head",
        )

    @property
    def metrics(self):
        return list(self.trackers.values())

    def logits(self, x, mask, training=False):
        hidden = self.features(tf.concat([x * mask, mask], axis=-1), training=training)
        if training and self.dropout > 0:
            # Dropout through the base's random numbers, which differ between replicas (a Dropout layer's
            # own seed generator would give every replica the same pattern under a strategy).
            keep = tf.cast(self.random_uniform(tf.shape(hidden)) >= self.dropout, hidden.dtype)
            hidden = hidden * keep / (1.0 - self.dropout)
        return self.head(hidden, training=training)

    def values_per_row(self, draws=1):
        # per pixel: the 2C input channels, the first convolution's maps, and a quarter of the second's
        height, width, channels = self.example_shape
        return height * width * (2 * channels + self.filters[0] + self.filters[1] // 4 + 1) * draws

    def predict_proba_batch(self, x, mask):
        return tf.nn.softmax(self.logits(x, mask))

    def train_step(self, data):
        x, mask, y = data
        weights = self.features.trainable_variables + self.head.trainable_variables
        values = self.cross_entropy_step(self.classifier_optimizer, weights, lambda: self.logits(x, mask, training=True), y)
        return self.record(self.trackers, values)

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import labelled_image_example

        return labelled_image_example({"filters": [4, 6], "dense_units": 12, "dropout": 0.25, "kernel_size": 3, "seed": 3})

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "dense_units": self.dense_units, "dropout": self.dropout, "kernel_size": self.kernel_size})
        return config
