"""The network of the tabular imputer: column encoders, a shared dense trunk, one head per output column.

Datawig trains one model per output column on the other columns. Here one Keras model holds the
heads of any number of output columns, and an output column may also be an input (as in `complete`,
where every column both predicts and is predicted). What keeps a head from reading its own answer is
hiding: each training row is seen in copies, and in each copy one output column is hidden from the
inputs (its encoder's features zeroed and its observed flag set to 0, exactly as a missing cell) and
predicted by its head. With at most `max_copies` outputs, copy k hides output k for every row, which
is Datawig's per-column training with the trunk shared; with more, each copy hides a random output
per row (each head then trains on ``max_copies / n_outputs`` of the rows per step, on average).
A missing cell needs no hiding, so imputing missing cells takes a single copy (`predict_outputs` with
``hide_targets=False``); predicting every row's value of an output (`call`, as Datawig's `predict`
does) hides each output in its own copy.

Losses (section 7.2 of the paper): cross-entropy for categorical outputs, squared error of the
z-scored value for numeric outputs, each averaged over the rows whose cell is observed and hidden,
summed over outputs. Categorical heads carry a temperature (non-trainable, fitted on validation data by
`calibration.fit_temperature`) that `call` divides the logits by.
"""
import keras
import tensorflow as tf

from keraszoo.tabular.columns import ColumnSpec
from keraszoo.tabular.layers import CategoricalEncoder, HashedTextEncoder, NumericEncoder, SequenceTextEncoder


@keras.saving.register_keras_serializable(package="keraszoo")
class MixedTableNet(keras.Model):
    """Encoders for `input_columns`, a dense trunk (`hidden_units`, ReLU, `dropout`) and a head per output.

    `columns` is a list of `ColumnSpec` dicts for every input and output column. `text_encoder`
    "hashed" (n-gram hashing, the default) or "lstm"; `num_labels` bounds a categorical head's classes
    (its column's most frequent values; rarer labels are left out of the loss, as in Datawig).
    """

    def __init__(
        self,
        columns,
        input_columns,
        output_columns,
        hidden_units=(100,),
        dropout=0.0,
        embedding_dim=10,
        text_encoder="hashed",
        num_hash_buckets=2**15,
        ngram_range=(1, 5),
        tokens="chars",
        text_vocabularies=None,
        num_labels=100,
        max_copies=8,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.columns = [dict(c) for c in columns]
        self.specs = {c["name"]: ColumnSpec.from_dict(c) for c in self.columns}
        self.input_columns, self.output_columns = list(input_columns), list(output_columns)
        self.hidden_units, self.dropout = [int(u) for u in hidden_units], float(dropout)
        self.embedding_dim, self.text_encoder = int(embedding_dim), text_encoder
        self.num_hash_buckets, self.ngram_range, self.tokens = int(num_hash_buckets), tuple(ngram_range), tokens
        self.text_vocabularies = dict(text_vocabularies or {})
        self.num_labels, self.max_copies, self.seed = int(num_labels), int(max_copies), int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        if text_encoder not in ("hashed", "lstm"):
            raise ValueError(f"text_encoder must be 'hashed' or 'lstm', got {text_encoder!r}")

        self.encoders = [self._make_encoder(self.specs[name], i) for i, name in enumerate(self.input_columns)]
        self.trunk = [keras.layers.Dense(u, activation="relu", name=f"trunk_{i}") for i, u in enumerate(self.hidden_units)]
        self.trunk_dropout = keras.layers.Dropout(self.dropout, seed=self.seed)
        self.heads = [keras.layers.Dense(self.n_classes(name) if self.specs[name].kind == "categorical" else 1, name=f"head_{j}") for j, name in enumerate(self.output_columns)]
        # where each output sits among the inputs (-1: not an input), used to hide it
        self.output_input_index = [self.input_columns.index(name) if name in self.input_columns else -1 for name in self.output_columns]
        self.loss_trackers = [keras.metrics.Mean(name=f"loss_{j}") for j in range(len(self.output_columns))]
        self.total_tracker = keras.metrics.Mean(name="loss")

    def _make_encoder(self, spec, i):
        if spec.kind == "numeric":
            return NumericEncoder(spec.mean, spec.std, spec.edges, name=f"encoder_{i}")
        if spec.kind == "categorical":
            return CategoricalEncoder(spec.vocabulary, self.embedding_dim, name=f"encoder_{i}")
        if self.text_encoder == "lstm":
            return SequenceTextEncoder(self.text_vocabularies.get(spec.name, []), name=f"encoder_{i}")
        return HashedTextEncoder(self.num_hash_buckets, max(self.embedding_dim, 16), self.ngram_range, self.tokens, name=f"encoder_{i}")

    def n_classes(self, name):
        return min(len(self.specs[name].vocabulary), self.num_labels)

    def classes(self, name):
        """The labels of a categorical output's head, in the order of its probabilities."""
        return self.specs[name].vocabulary[: self.n_classes(name)]

    def build(self, input_shape=None):
        if self.built:
            return
        self.temperatures = self.add_weight(name="temperatures", shape=(len(self.output_columns),), initializer="ones", trainable=False)
        width = sum(encoder.width for encoder in self.encoders) + len(self.input_columns)  # features + observed flags
        for layer in self.trunk:
            layer.build((None, width))
            width = layer.units
        for head in self.heads:
            head.build((None, width))
        for encoder, name in zip(self.encoders, self.input_columns):
            encoder.build((None,))
        self.built = True

    # --- forward ------------------------------------------------------------------------------------
    def encode(self, inputs):
        """[(features [batch, width], observed [batch])] per input column, from a dict of raw columns."""
        return [encoder(inputs[name]) for encoder, name in zip(self.encoders, self.input_columns)]

    def trunk_outputs(self, encoded, hidden_output, training=False):
        """Trunk activations of copies of the batch: `hidden_output` [copies, batch] names, per copy and row,
        the output whose input column is hidden (-1: none). Returns [copies * batch, units]."""
        copies = tf.shape(hidden_output)[0]
        hidden_flat = tf.reshape(hidden_output, [-1])
        # which input column each (copy, row) hides: -1 when the output is not an input
        index = tf.constant(self.output_input_index + [-1], tf.int32)
        hidden_input = tf.gather(index, tf.where(hidden_flat < 0, len(self.output_input_index), hidden_flat))
        parts, flags = [], []
        for i, (features, observed) in enumerate(encoded):
            keep = tf.tile(observed, [copies]) * tf.cast(tf.not_equal(hidden_input, i), tf.float32)
            parts.append(tf.tile(features, [copies, 1]) * keep[:, None])
            flags.append(keep[:, None])
        h = tf.concat(parts + flags, axis=1)
        for layer in self.trunk:
            h = self.trunk_dropout(layer(h), training=training)
        return h

    def predict_outputs(self, inputs, hide_targets=True, training=False):
        """Per output, its head's raw output [batch, classes] (logits) or [batch, 1] (z-score).

        `hide_targets`: each output is predicted with its own column hidden (one copy per output), the
        value the model gives a row whether or not the cell is observed; False: one copy, as the row is
        (right for missing cells, which are hidden already).
        """
        encoded = self.encode(inputs)
        batch = tf.shape(encoded[0][1])[0] if encoded else tf.shape(next(iter(inputs.values())))[0]
        n_out = len(self.output_columns)
        if hide_targets:
            hidden = tf.tile(tf.range(n_out, dtype=tf.int32)[:, None], [1, batch])
            h = tf.reshape(self.trunk_outputs(encoded, hidden, training), [n_out, batch, -1])
            return [head(h[j]) for j, head in enumerate(self.heads)]
        h = self.trunk_outputs(encoded, -tf.ones([1, batch], tf.int32), training)
        return [head(h) for head in self.heads]

    def finish(self, raw):
        """Head outputs to {column: probabilities (temperature-scaled) or value in the column's units}."""
        out = {}
        for j, (name, value) in enumerate(zip(self.output_columns, raw)):
            spec = self.specs[name]
            if spec.kind == "categorical":
                out[name] = tf.nn.softmax(value / self.temperatures[j], axis=-1)
            else:
                out[name] = value[:, 0] * spec.std + spec.mean
        return out

    def call(self, inputs, training=False, hide_targets=True):
        return self.finish(self.predict_outputs(inputs, hide_targets=hide_targets, training=training))

    # --- training -------------------------------------------------------------------------------------
    def head_losses(self, inputs, targets, training):
        """Per output, its mean loss over the (copy, row) pairs where it is hidden and observed."""
        encoded = self.encode(inputs)
        batch = tf.shape(encoded[0][1])[0]
        n_out = len(self.output_columns)
        if n_out <= self.max_copies:
            hidden = tf.tile(tf.range(n_out, dtype=tf.int32)[:, None], [1, batch])
        else:
            draws = keras.random.randint((self.max_copies, batch), 0, n_out, seed=self.seed_generator)
            hidden = tf.cast(draws, tf.int32)
        h = self.trunk_outputs(encoded, hidden, training)
        hidden_flat = tf.reshape(hidden, [-1])
        copies = tf.shape(hidden)[0]
        losses = []
        for j, (name, head) in enumerate(zip(self.output_columns, self.heads)):
            target = tf.tile(targets[name], [copies])
            if self.specs[name].kind == "categorical":
                valid = target >= 0
                per_row = keras.losses.sparse_categorical_crossentropy(tf.maximum(target, 0), head(h), from_logits=True)
            else:
                valid = tf.math.is_finite(target)
                per_row = tf.square(head(h)[:, 0] - tf.where(valid, target, 0.0))
            weight = tf.cast(valid & tf.equal(hidden_flat, j), tf.float32)
            losses.append(tf.reduce_sum(per_row * weight) / tf.maximum(tf.reduce_sum(weight), 1.0))
        return losses

    def train_step(self, data):
        inputs, targets = data
        with tf.GradientTape() as tape:
            losses = self.head_losses(inputs, targets, training=True)
            total = tf.add_n(losses)
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._record(losses, total)

    def test_step(self, data):
        inputs, targets = data
        losses = self.head_losses(inputs, targets, training=False)
        return self._record(losses, tf.add_n(losses))

    def _record(self, losses, total):
        for tracker, loss in zip(self.loss_trackers, losses):
            tracker.update_state(loss)
        self.total_tracker.update_state(total)
        return {"loss": self.total_tracker.result(), **{t.name: t.result() for t in self.loss_trackers}}

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers]

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "input_columns": self.input_columns,
            "output_columns": self.output_columns,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "embedding_dim": self.embedding_dim,
            "text_encoder": self.text_encoder,
            "num_hash_buckets": self.num_hash_buckets,
            "ngram_range": list(self.ngram_range),
            "tokens": self.tokens,
            "text_vocabularies": self.text_vocabularies,
            "num_labels": self.num_labels,
            "max_copies": self.max_copies,
            "seed": self.seed,
        }
