"""Datawig's per-column imputers for numeric tables, all columns trained at once (registered as "datawig").

`keraszoo.tabular` is the mixed-type, pandas-in pandas-out imputer; this model is its numeric core
behind the zoo's contract, so that `ZooImputer("datawig")`, the CLI, the benchmarks and `serving.export`
take it like any other model. Datawig's `complete` trains, for each column j, a network that predicts
column j from every other column (numeric inputs: mean-filled, standardised, one dense layer of
`numeric_latent_dim` = 100 units with ReLU, then a linear output; squared loss on the rows where j is
observed). Here the D networks are one layer, `PerColumnMLP`: their first weights are a [D, 2D, H]
tensor whose block for network j has zeros at column j's value and observed flag (a constant mask, so
network j never sees its own column), and one einsum runs all D networks on a batch. Every observed
entry is a training target of its column's network, so one step trains every column on every row.

Inputs differ from Datawig's in two ways: values are the contract's min-max scaled ones with 0 at
missing entries (Datawig fills the mean, then standardises), and each column's observed flag is an
input too (Datawig has none), so a network can tell a missing value from a small one.
Datawig stops each column's training early on a held-out split; under the contract training runs a
fixed number of steps (`default_iterations`).
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.registry import register_model


@keras.saving.register_keras_serializable(package="keraszoo")
class PerColumnMLP(keras.layers.Layer):
    """D one-hidden-layer networks, network j predicting column j from [x * m, m] without column j."""

    def __init__(self, n_features, units=100, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.n_features, self.units, self.seed = int(n_features), int(units), int(seed)

    def build(self, input_shape=None):
        d, h = self.n_features, self.units
        init = keras.initializers.GlorotUniform(seed=self.seed)
        self.w1 = self.add_weight(name="w1", shape=(d, 2 * d, h), initializer=lambda shape, dtype=None: tf.stack([init((2 * d, h)) for _ in range(d)]))
        self.b1 = self.add_weight(name="b1", shape=(d, h), initializer="zeros")
        self.w2 = self.add_weight(name="w2", shape=(d, h), initializer=keras.initializers.GlorotUniform(seed=self.seed + 1))
        self.b2 = self.add_weight(name="b2", shape=(d,), initializer="zeros")
        # network j reads neither column j's value (index j) nor its observed flag (index d + j)
        own = tf.one_hot(tf.range(d), 2 * d) + tf.one_hot(tf.range(d) + d, 2 * d)
        self.blind = (1.0 - own)[:, :, None]
        self.built = True

    def call(self, x, mask):
        inputs = tf.concat([x * mask, mask], axis=1)
        hidden = tf.nn.relu(tf.einsum("bi,jih->bjh", inputs, self.w1 * self.blind) + self.b1)
        return tf.einsum("bjh,jh->bj", hidden, self.w2) + self.b2

    def get_config(self):
        return {**super().get_config(), "n_features": self.n_features, "units": self.units, "seed": self.seed}


@register_model("datawig")
class DatawigImputer(DeepImputer):
    """One network per column, each predicting its column from the others (see the module docstring).

    `units`: the hidden width of every column's network (Datawig's `numeric_latent_dim`, 100).
    Adam at 4e-3 (Datawig's learning rate), batch 128 (Datawig: 16), 3,000 steps by default.
    """

    example_kinds = ("table",)
    optimizer_networks = {"optimizer_": "networks"}
    default_learning_rates = {"optimizer_": 4e-3}
    default_iterations = 3000
    imputation_cost = 4

    def __init__(self, units=100, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(units, bool) or int(units) != units or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.loss_tracker = keras.metrics.Mean(name="mse_observed")

    def build_networks(self, example_shape):
        (n_features,) = example_shape
        self.networks = PerColumnMLP(n_features, self.units, seed=self.seed, name="networks")
        self.networks.build()

    def values_per_row(self, draws=1):
        return (self.units + 4) * self.n_features * draws  # the [rows, D, H] hidden layer

    @property
    def metrics(self):
        return [self.loss_tracker]

    def impute_batch(self, x, mask):
        return self.networks(x, mask)

    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        count = tf.maximum(global_sum(tf.reduce_sum(mask)), 1.0)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(mask * tf.square(self.networks(x, mask) - x)) / count  # every observed entry, by its column's network
        gradients = tape.gradient(loss, self.networks.trainable_variables)
        self.optimizer_.apply_gradients(zip(gradients, self.networks.trainable_variables))
        self.loss_tracker.update_state(global_sum(loss))
        return {"mse_observed": self.loss_tracker.result()}

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {"units": 7, "seed": 2}
        return example

    def get_config(self):
        return {**super().get_config(), "units": self.units}
