"""The contract every deep imputer follows (GAIN is the reference implementation to copy).

A deep imputer is a `keras.Model` subclass with a custom `train_step`, trained by `model.fit` on a
`tf.data.Dataset` of `(x, mask)` batches:

* ``x``: float32 [batch, features], min-max scaled to [0, 1]; values at missing entries are ignored
  (the model zeroes them before use, so NaN there is fine).
* ``mask``: float32, same shape, **1 = observed, 0 = missing** (the project-wide convention).

It exposes

* ``impute(x, mask)``: a `tf.function` returning a single imputation; observed entries come back
  exactly as given.
* ``sample_imputations(x, mask, n)`` (generative models only): ``n`` draws, shape [n, batch, features].
* ``fit_arrays(x, mask, ...)``: the convenience path used by `keraszoo.sklearn.ZooImputer` and the
  benchmarks; it builds the dataset, compiles with the model's default optimizers if the user did
  not compile, and calls `fit`.
* ``get_config``/``from_config`` and ``.keras`` saving through `keras.saving`.

Subclasses implement ``build_networks(n_features)``, ``generate(x, mask, noise)`` (the network's
completion of every entry), ``noise_like(x, deterministic)``, ``compile`` and ``train_step``. So that
the same `train_step` is right on any number of replicas (`keraszoo.distribute`), it divides its loss
sums by counts over the global batch (`global_sum`), reports `global_sum` of its losses, and draws
random numbers with `random_uniform`.
"""
import keras
import numpy as np
import tensorflow as tf

from keraszoo.validation import check_x_mask


def make_dataset(x, mask, batch_size=128, shuffle=True, repeat=True, seed=0):
    """A `tf.data.Dataset` of `(x, mask)` batches from in-memory arrays (x's missing entries zeroed).

    For training (`shuffle` and `repeat`, the default) the rows are drawn without replacement: each
    epoch is a new permutation of the row indices (stateless, from `seed` and the epoch number, so
    runs repeat exactly), cut into full batches, and each batch's rows are gathered in one op. The
    last ``len(x) % batch_size`` rows of each permutation are left out of that epoch (different rows
    every epoch), so every batch has the same static shape: one trace, and even replica splits.
    Shuffling row by row (``Dataset.shuffle`` before ``batch``) cost ~390 us of CPU per batch of 128
    on 2 cores, a fifth of a GAIN step; the gathered batches cost ~60 us.
    """
    x = np.where(np.asarray(mask) == 1, np.asarray(x), 0.0).astype(np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    n_rows = len(x)
    if shuffle and repeat and n_rows >= batch_size:
        return _shuffled_batches(x, mask, batch_size, seed)
    ds = tf.data.Dataset.from_tensor_slices((x, mask))
    if shuffle:
        ds = ds.shuffle(min(n_rows, 100_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=repeat and n_rows >= batch_size).prefetch(tf.data.AUTOTUNE)


def _shuffled_batches(x, mask, batch_size, seed):
    """An endless stream of batches: per epoch, a stateless permutation of the rows in full batches."""
    n_rows = len(x)
    batches_per_epoch = n_rows // batch_size
    values, observed = tf.constant(x), tf.constant(mask)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n_rows), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[: batches_per_epoch * batch_size], [batches_per_epoch, batch_size]))

    rows = tf.data.Dataset.counter().flat_map(epoch_batches)
    return rows.map(lambda index: (tf.gather(values, index), tf.gather(observed, index))).prefetch(tf.data.AUTOTUNE)


def global_sum(value):
    """`value` summed over every replica training in sync; `value` itself with a single replica.

    Under a `tf.distribute` strategy each replica runs `train_step` on its share of the global batch,
    and Keras's optimizers all-reduce the replicas' gradients with a SUM. A loss written as
    ``(sum over this replica's rows) / global_sum(count over this replica's rows)`` therefore gives,
    summed over replicas, exactly the gradient of the global-batch loss, whatever the number of
    replicas (and with one replica it is the plain mean, unchanged). `global_sum` of such a per-replica
    share is the global-batch loss itself, the value to report. Call it in replica context (in
    `train_step`); it is an all-reduce, so every replica must call it the same number of times.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def keep_observed(x, mask, completed):
    """Observed entries from `x`, bit for bit; missing ones from `completed`.

    A select, not `mask * x + (1 - mask) * completed`: TensorFlow on CPU flushes subnormal floats to
    zero in arithmetic, which would change an observed 1e-38 into 0 (found by the property test).
    """
    return tf.where(mask > 0, x, completed)


class DeepImputer(keras.Model):
    """Base class of the zoo's Keras imputers. See the module docstring for the contract."""

    #: whether `sample_imputations` draws different imputations (the model has a noise input).
    generative = False
    #: default number of training steps for `fit_arrays` when neither epochs nor iterations is given.
    default_iterations = 10_000
    #: `fit_arrays` groups `iterations` into Keras epochs of at least this many steps.
    min_steps_per_epoch = 500
    #: train steps run per `tf.function` call by the default compile (Python overhead dominates small MLPs).
    default_steps_per_execution = 50

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.n_features = None

    # --- networks -------------------------------------------------------------------------------
    def build(self, input_shape):
        # Accept [batch, features] or the ((x_shape), (mask_shape)) pair that `call` receives.
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        n_features = int(input_shape[-1])
        if self.n_features is None:
            self.n_features = n_features
            self.build_networks(n_features)
        self.built = True

    def build_networks(self, n_features):
        raise NotImplementedError

    def build_optimizers(self):
        """Create every optimizer's slot variables now (needed before `fit` under a distribution strategy).

        Also builds, with no variables, the placeholder optimizer Keras's `compile` puts in
        `self.optimizer` when it is none of the model's own (no `train_step` uses it): otherwise `fit`
        under a strategy and `BackupAndRestore` build it with slots for every weight, and a backup
        written before that no longer matches the model it is restored into.
        """
        used = set()
        for optimizer, network in self.optimizers_and_networks():
            optimizer.build(network.trainable_variables)
            used.add(id(optimizer))
        placeholder = getattr(self, "optimizer", None)
        if placeholder is not None and id(placeholder) not in used and not placeholder.built:
            placeholder.build([])

    def optimizers_and_networks(self):
        """[(optimizer, network it updates)] — the optimizers `compile` received."""
        raise NotImplementedError

    def generate(self, x, mask, noise, training=False):
        """The network's value for every entry (observed ones included)."""
        raise NotImplementedError

    def noise_like(self, x, deterministic):
        """The noise a generative model feeds at missing entries; its mean when `deterministic`."""
        return tf.zeros_like(x)

    def random_uniform(self, shape, minval=0.0, maxval=1.0):
        """`keras.random.uniform` drawn from the model's seed generator, different on every replica.

        With one replica it is exactly ``keras.random.uniform(shape, minval, maxval, seed=self.seed_generator)``.
        Under a distribution strategy the seed generator is mirrored, so every replica would draw the
        same numbers for its rows (the same noise and hints in each replica's share of the batch);
        here the replica's id is added to the seed instead.
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return keras.random.uniform(shape, minval, maxval, seed=self.seed_generator)
        seed = self.seed_generator.next()
        seed = seed + tf.cast(tf.stack([context.replica_id_in_sync_group, 0]), seed.dtype)
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # as keras.random does for TF
        dtype = keras.config.floatx()
        return tf.random.stateless_uniform(
            shape, seed=seed, minval=tf.cast(minval, dtype), maxval=tf.cast(maxval, dtype), dtype=dtype
        )

    # --- imputation -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        x, mask = inputs
        x_zeroed = tf.where(mask > 0, x, tf.zeros_like(x))
        completed = self.generate(x_zeroed, mask, self.noise_like(x_zeroed, deterministic=True), training=training)
        return keep_observed(x, mask, completed)

    def impute(self, x, mask):
        """Single imputation of `x` [batch, features] (1 = observed in `mask`); observed entries unchanged.

        Deterministic: a generative model uses its noise's mean here (see `sample_imputations`).
        """
        x, mask = self._check_inputs(x, mask)
        return self._impute_fn(x, mask)

    def sample_imputations(self, x, mask, n):
        """`n` imputations drawn with fresh noise, shape [n, batch, features] (generative models only)."""
        if not self.generative:
            raise NotImplementedError(f"{type(self).__name__} is not generative: use impute() for its single imputation")
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of imputations, got {n}")
        x, mask = self._check_inputs(x, mask)
        return self._sample_fn(x, mask, tf.constant(int(n)))

    @tf.function(reduce_retracing=True)
    def _impute_fn(self, x, mask):
        return self((x, mask), training=False)

    @tf.function(reduce_retracing=True)
    def _sample_fn(self, x, mask, n):
        return tf.map_fn(lambda _: self.sample_draw(x, mask), tf.range(n), fn_output_signature=tf.float32)

    def sample_draw(self, x, mask):
        """One imputation with fresh noise (graph-friendly; `sample_imputations` stacks n of them)."""
        x_zeroed = tf.where(mask > 0, x, tf.zeros_like(x))
        completed = self.generate(x_zeroed, mask, self.noise_like(x_zeroed, deterministic=False))
        return keep_observed(x, mask, completed)

    def _check_inputs(self, x, mask):
        if isinstance(x, tf.Tensor) and isinstance(mask, tf.Tensor) and not tf.executing_eagerly():
            return x, mask  # inside a traced graph: shapes are checked by the ops themselves
        if not self.built:
            raise RuntimeError(f"{type(self).__name__} is not built: fit it (or call build) before imputing")
        x, mask = check_x_mask(np.asarray(x), np.asarray(mask), n_features=self.n_features, where=f"{self.name}.impute")
        return tf.constant(x), tf.constant(mask)

    # --- training -------------------------------------------------------------------------------
    def fit_arrays(
        self, x, mask, *, iterations=None, epochs=None, batch_size=128, learning_rate=1e-3, seed=0, verbose=0, callbacks=None
    ):
        """Train on in-memory arrays with `model.fit`; returns the Keras `History`.

        `iterations` is the number of training steps (batches), the unit GAIN's reference code uses;
        they are grouped into Keras epochs of at least `min_steps_per_epoch` steps (callbacks and logs
        see those), each a multiple of the compiled `steps_per_execution`: the total is `iterations` rounded up
        to that (exact for the defaults and round numbers). `epochs` counts passes over the rows instead. Give at most one; neither means
        `default_iterations`. `learning_rate` is used only when the model was not compiled yet (then it
        is compiled with its default optimizers at that rate).
        """
        x, mask = check_x_mask(x, mask, where=f"{self.name}.fit")
        if iterations is not None and epochs is not None:
            raise ValueError("give either iterations or epochs, not both")
        n_rows = len(x)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if epochs is not None and int(epochs) < 1:
            raise ValueError(f"epochs must be positive, got {epochs}")
        steps_per_pass = max(1, n_rows // batch_size)
        if epochs is None:
            iterations = self.default_iterations if iterations is None else int(iterations)
            if iterations < 1:
                raise ValueError(f"iterations must be positive, got {iterations}")
        if not self.built:
            self.build((None, x.shape[1]))
        if not self.compiled:
            total = iterations if epochs is None else steps_per_pass * int(epochs)
            self.compile_default(learning_rate, steps_per_execution=min(self.default_steps_per_execution, total))
        # Keras runs whole executions of `steps_per_execution` steps, so epochs are a multiple of it.
        execution = int(self.steps_per_execution)
        if epochs is None:
            # Keras "epochs" of at least `min_steps_per_epoch` steps: on small tables a pass over the
            # rows is a few batches, and per-epoch overhead would dominate training time.
            epochs = -(-iterations // min(iterations, max(steps_per_pass, self.min_steps_per_epoch)))
            steps_per_epoch = -(-iterations // epochs)
            steps_per_epoch = -(-steps_per_epoch // execution) * execution
        else:
            steps_per_epoch = -(-steps_per_pass // execution) * execution
        dataset = make_dataset(x, mask, batch_size=min(batch_size, n_rows), seed=seed)
        return self.fit(
            dataset, epochs=int(epochs), steps_per_epoch=steps_per_epoch, shuffle=False, verbose=verbose, callbacks=callbacks
        )

    def compile_default(self, learning_rate=1e-3, steps_per_execution=1):
        """Compile with the model's default optimizers (Adam at `learning_rate`)."""
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
