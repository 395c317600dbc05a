"""not-MIWAE's models of the missingness p(s | x), s = 1 where an entry is observed.

Each gives the logits of P(s = 1 | x), entry by entry, for a complete example x (observed entries and
drawn missing ones), the four processes of the authors' code (nbip/notMIWAE, `notMIWAE.py`):

- "selfmasking": logit P(s_j = 1 | x_j) = −w_j (x_j − b_j), one (w_j, b_j) per entry, w of either sign
  (the paper's self-masking logistic model).
- "selfmasking_known": the same with w_j = softplus(·) ≥ 0, i.e. the user knows that larger values are
  the more often missing ones (our `mnar_mask` and the paper's UCI simulation are of that kind).
- "linear": one dense layer from the whole example to every entry's logit (any entry can drive any
  other's missingness).
- "nonlinear": a tanh hidden layer of `missing_units`, then a dense layer to the logits.
"""
import keras
import tensorflow as tf

PROCESSES = ("selfmasking", "selfmasking_known", "linear", "nonlinear")


class SelfMasking(keras.layers.Layer):
    """logit P(s_j = 1 | x_j) = −w_j (x_j − b_j) per entry; w_j = softplus(raw) when the sign is known.

    w and b start at 0 (w at softplus(0) with a known sign): every entry starts equally likely to be
    observed whatever its value, and the gradient of the bound moves them from there.
    """

    def __init__(self, example_shape, known_sign=False, **kwargs):
        super().__init__(**kwargs)
        self.example_shape = tuple(int(s) for s in example_shape)
        self.known_sign = bool(known_sign)
        self.raw_weight = self.add_weight(name="weight", shape=self.example_shape, initializer="zeros")
        self.offset = self.add_weight(name="offset", shape=self.example_shape, initializer="zeros")

    def slope(self):
        """w of every entry: > 0 means larger values are more often missing."""
        return tf.math.softplus(self.raw_weight) if self.known_sign else tf.convert_to_tensor(self.raw_weight)

    def call(self, x):
        return -self.slope() * (x - self.offset)  # broadcasts over any leading (draw, row) axes

    def get_config(self):
        return {**super().get_config(), "example_shape": self.example_shape, "known_sign": self.known_sign}


class NetworkMasking(keras.layers.Layer):
    """The logits of every entry from the whole (flattened) example: one dense layer ("linear") or a tanh
    hidden layer of `units` then a dense layer ("nonlinear")."""

    def __init__(self, example_shape, units=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.example_shape = tuple(int(s) for s in example_shape)
        self.units = None if units is None else int(units)
        n_features = 1
        for s in self.example_shape:
            n_features *= s
        self.n_features = n_features
        self.hidden = None
        if self.units is not None:
            self.hidden = keras.layers.Dense(self.units, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed), name="hidden")
        self.logits = keras.layers.Dense(n_features, kernel_initializer=keras.initializers.GlorotUniform(seed + 1), name="logits")
        self.build(None)  # the weights exist before the first call (the optimizers are built before fit)

    def build(self, input_shape):
        # in `build`, the dense layers' weights are named under this layer ("missingness/logits/kernel")
        if self.hidden is not None:
            self.hidden.build((None, self.n_features))
        self.logits.build((None, self.n_features if self.units is None else self.units))

    def call(self, x):
        lead = tf.shape(x)[: tf.rank(x) - len(self.example_shape)]
        h = tf.reshape(x, [-1, self.n_features])
        if self.hidden is not None:
            h = self.hidden(h)
        return tf.reshape(self.logits(h), tf.concat([lead, self.example_shape], axis=0))

    def get_config(self):
        return {**super().get_config(), "example_shape": self.example_shape, "units": self.units}


def missingness_model(process, example_shape, units, seed):
    """The layer of `process` (one of `PROCESSES`) for examples of `example_shape`."""
    if process == "selfmasking":
        return SelfMasking(example_shape, known_sign=False, name="missingness")
    if process == "selfmasking_known":
        return SelfMasking(example_shape, known_sign=True, name="missingness")
    if process == "linear":
        return NetworkMasking(example_shape, None, seed, name="missingness")
    return NetworkMasking(example_shape, units, seed, name="missingness")


def log_prob_observed_pattern(logits, mask, axes):
    """log p(s | x) = Σ_j [s_j log σ(l_j) + (1 − s_j) log σ(−l_j)] over `axes` (a Bernoulli per entry)."""
    return -tf.reduce_sum(mask * tf.math.softplus(-logits) + (1.0 - mask) * tf.math.softplus(logits), axis=axes)
