"""The contract every deep model of the zoo follows (GAIN is the reference implementation to copy).

A deep model is a `keras.Model` subclass with a custom `train_step`, trained by `model.fit` on a
`tf.data.Dataset` of ``(x, mask)`` batches (``(x, mask, y)`` for classifiers):

* ``x``: float32 [batch, *example_shape], min-max scaled to [0, 1]; the values at missing entries are
  zeroed before the model sees them. An example is a table row ``[D]`` or an image ``[H, W, C]``:
  the class says which it accepts in `example_kinds` ("table", "image" or both).
* ``mask``: float32, the shape of ``x``, **1 = observed, 0 = missing** (the project-wide convention).
* ``y`` (classifiers): int32 [batch] class indices 0 .. n_classes - 1.

Adding a model is a new folder with a subclass that sets a few class attributes and implements:

* ``build_networks(example_shape)``: create the sub-networks as attributes (built, so their weights
  exist before `fit`);
* ``train_step(data)``: as in keras-io's DCGAN example (sample, discriminator step, generator step,
  update trackers, return a dict). Divide loss sums by counts over the GLOBAL batch (`global_sum`),
  report `global_sum` of the losses and draw random numbers with `random_uniform`/`random_normal`,
  so the same step is right on any number of replicas (`keraszoo.distribute`); `apply_losses` and
  `record` do the last two chores for models with several networks (MisGAN, GAMIN);
* ``impute_batch(x, mask)`` (imputers): the model's value for every entry of a batch, in graph mode
  (the base keeps the observed entries: a model cannot change them); ``sample_batch(x, mask, n)``
  too when the model is `generative` (n draws, [n, batch, ...]);
  ``predict_proba_batch(x, mask)`` (classifiers, `task = "classify"`): class probabilities;
* ``get_config`` for its constructor parameters;

and declares ``optimizer_networks`` ({optimizer attribute: network attribute(s) it trains}) with
``default_learning_rates`` ({optimizer attribute: rate}): the base's `compile` and `compile_default`
make one Adam per optimizer from them, each at its own rate. Optional hooks: ``log_likelihood_batch(x,
mask, samples)`` for density models (`density = True`: MIWAE, the flows), the log-likelihood of each
row's observed entries in scaled units, exported as the ``log_likelihood`` signature; ``log_prob_batch(x)``
for models with an exact density of complete rows (`exact_density = True`: the flows), exported as the
``log_prob`` signature; ``fit_rounds`` (training
in rounds that re-impute the training table, as EMFlow and MCFlow do), ``values_per_row`` (the memory
hint that bounds the rows imputed at once), ``contract_example`` (the small example, with non-default
parameters, that `keraszoo.testing.contract` checks every registered model on).

The base provides ``impute``, ``sample_imputations``, ``predict_proba`` (eager, chunked to bounded
memory, or inside a graph), ``fit_arrays`` (the path `keraszoo.sklearn` and the benchmarks use) and
`.keras` saving through `keras.saving`.
"""
import inspect
import math

import keras
import numpy as np
import tensorflow as tf

from keraszoo.validation import check_x_mask

#: example kinds a model can accept: a table row [D] or an image [H, W, C].
EXAMPLE_KINDS = ("table", "image")
#: tasks: imputers complete their input; classifiers predict a label from an incomplete input.
TASKS = ("impute", "classify")
#: float32 values the eager and exported imputation may hold at once (256 MB), see `values_per_row`.
IMPUTE_MEMORY_VALUES = 64 * 1024 * 1024


def example_kind(example_shape):
    """"table" for an example shape [D], "image" for [H, W, C]; ValueError otherwise."""
    rank = len(example_shape)
    if rank == 1:
        return "table"
    if rank == 3:
        return "image"
    raise ValueError(f"an example is a table row [D] or an image [H, W, C]; got example shape {tuple(example_shape)}")


def make_dataset(x, mask, batch_size=128, shuffle=True, repeat=True, seed=0, y=None):
    """A `tf.data.Dataset` of ``(x, mask)`` (or ``(x, mask, y)``) batches from in-memory arrays.

    ``x`` is [rows, *example_shape] (its missing entries are zeroed), ``mask`` the same shape, ``y`` an
    optional label per row. For training (`shuffle` and `repeat`, the default) the rows are drawn
    without replacement: each epoch is a new permutation of the row indices (stateless, from `seed` and
    the epoch number, so runs repeat exactly), cut into full batches, and each batch's rows are gathered
    in one op. The last ``len(x) % batch_size`` rows of each permutation are left out of that epoch
    (different rows every epoch), so every batch has the same static shape: one trace, and even
    replica splits. Shuffling row by row (``Dataset.shuffle`` before ``batch``) cost ~390 us of CPU per
    batch of 128 on 2 cores, a fifth of a GAIN step; the gathered batches cost ~60 us.
    """
    x = np.where(np.asarray(mask) == 1, np.asarray(x), 0.0).astype(np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    tensors = (x, mask) if y is None else (x, mask, np.asarray(y, dtype=np.int32))
    n_rows = len(x)
    if shuffle and repeat and n_rows >= batch_size:
        return _shuffled_batches(tensors, batch_size, seed)
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        ds = ds.shuffle(min(n_rows, 100_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=repeat and n_rows >= batch_size).prefetch(tf.data.AUTOTUNE)


def _shuffled_batches(arrays, batch_size, seed):
    """An endless stream of batches: per epoch, a stateless permutation of the rows in full batches."""
    n_rows = len(arrays[0])
    batches_per_epoch = n_rows // batch_size
    tensors = tuple(tf.constant(a) for a in arrays)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n_rows), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[: batches_per_epoch * batch_size], [batches_per_epoch, batch_size]))

    rows = tf.data.Dataset.counter().flat_map(epoch_batches)
    return rows.map(lambda index: tuple(tf.gather(t, index) for t in tensors)).prefetch(tf.data.AUTOTUNE)


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


def chunked_rows(fn, tensors, chunk_rows, axis=0):
    """``fn(*tensors)`` computed on at most `chunk_rows` rows at a time, in a graph; results joined on `axis`.

    `tensors` all have the rows first; `fn` returns one tensor whose `axis` is the rows (0 for an
    imputation, 1 for [n, rows, ...] draws). One call when the rows fit, else a `tf.while_loop`:
    the memory held is bounded by the chunk, whatever the request.
    """
    chunk_rows = tf.maximum(tf.cast(chunk_rows, tf.int32), 1)
    n_rows = tf.shape(tensors[0])[0]

    def looped():
        n_chunks = (n_rows + chunk_rows - 1) // chunk_rows
        parts = tf.TensorArray(tensors[0].dtype, size=n_chunks, infer_shape=False)

        def body(i, parts):
            start = i * chunk_rows
            piece = [t[start : start + chunk_rows] for t in tensors]
            out = fn(*piece)
            if axis:  # rows to the front so the TensorArray concatenates them
                out = tf.experimental.numpy.moveaxis(out, axis, 0)
            return i + 1, parts.write(i, out)

        _, parts = tf.while_loop(lambda i, _: i < n_chunks, body, [0, parts])
        out = parts.concat()
        return tf.experimental.numpy.moveaxis(out, 0, axis) if axis else out

    return tf.cond(n_rows <= chunk_rows, lambda: fn(*tensors), looped)


def largest_divisor_at_most(n, limit):
    """The largest divisor of `n` that is <= `limit` (1 at worst)."""
    n, limit = int(n), max(1, int(limit))
    best = 1
    for d in range(1, int(math.isqrt(n)) + 1):
        if n % d == 0:
            for candidate in (d, n // d):
                if candidate <= limit:
                    best = max(best, candidate)
    return best


def plan_steps(*, rows, batch_size, epochs=None, iterations=None, min_steps_per_epoch=500, max_steps_per_execution=50):
    """(Keras epochs, steps per Keras epoch, steps per execution) running EXACTLY the steps asked for.

    Keras runs whole executions of `steps_per_execution` steps, so both are chosen to divide:
    `epochs` passes over `rows` in batches of `batch_size` run ``epochs * (rows // batch_size)`` steps;
    `iterations` run that many steps, grouped into Keras epochs of about `min_steps_per_epoch` (on small
    tables a pass is a few batches and per-epoch overhead would dominate). The steps per execution is
    the largest divisor of the epoch's steps not above `max_steps_per_execution`.
    """
    steps_per_pass = max(1, int(rows) // int(batch_size))
    if epochs is not None:
        keras_epochs, steps_per_epoch = int(epochs), steps_per_pass
    else:
        iterations = int(iterations)
        target = min(iterations, max(steps_per_pass, int(min_steps_per_epoch)))
        keras_epochs = max(1, round(iterations / target))
        while iterations % keras_epochs:  # the nearest count of equal epochs
            keras_epochs -= 1
        steps_per_epoch = iterations // keras_epochs
    return keras_epochs, steps_per_epoch, largest_divisor_at_most(steps_per_epoch, max_steps_per_execution)


class DeepImputer(keras.Model):
    """Base class of the zoo's Keras models (imputers, and classifiers of incomplete inputs).

    See the module docstring for the contract. Class attributes a subclass sets:
    """

    #: "impute" or "classify".
    task = "impute"
    #: which example shapes the model takes: "table" ([D]) and/or "image" ([H, W, C]). A table-only
    #: model given images sees them flattened to rows ([H * W * C]), as GAIN on MNIST in g2lgn.md.
    example_kinds = ("table",)
    #: whether `sample_imputations` draws different imputations (`sample_batch` is implemented).
    generative = False
    #: {optimizer attribute: network attribute (or tuple of them) it trains}.
    optimizer_networks = {}
    #: {optimizer attribute: default learning rate}; `compile_default` takes a float or a dict over these.
    default_learning_rates = {}
    #: default number of training steps for `fit_arrays` when neither epochs nor iterations is given.
    default_iterations = 10_000
    #: default batch size of `fit_arrays`, `ZooImputer` and `training.train` (a family's own, e.g. not-MIWAE's 16).
    default_batch_size = 128
    #: `fit_arrays` groups `iterations` into Keras epochs of about this many steps.
    min_steps_per_epoch = 500
    #: train steps run per `tf.function` call by the default compile (Python overhead dominates small MLPs).
    default_steps_per_execution = 50
    #: float32 values held per example value while imputing (the default memory hint, `values_per_row`).
    imputation_cost = 8
    #: whether `log_likelihood_batch` estimates log p(x°) of a row's observed entries (exported as `log_likelihood`).
    density = False
    #: whether `log_prob_batch` gives the exact log-density of complete rows (exported as `log_prob`).
    exact_density = False

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)  # numpy integers (a grid search's) become Python ones: configs stay JSON
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.example_shape = None
        self.n_features = None

    # --- what the model accepts ------------------------------------------------------------------
    @classmethod
    def model_example_shape(cls, data_example_shape):
        """The example shape this model works on for data whose examples have `data_example_shape`.

        Images go to a table-only model flattened; a table to an image-only model is an error.
        """
        data_example_shape = tuple(int(s) for s in data_example_shape)
        kind = example_kind(data_example_shape)
        if kind in cls.example_kinds:
            return data_example_shape
        if kind == "image" and "table" in cls.example_kinds:
            return (int(np.prod(data_example_shape)),)
        raise ValueError(
            f"{cls.__name__} takes {' or '.join(cls.example_kinds)} examples, not {kind}s of shape {data_example_shape}"
        )

    @classmethod
    def fit_parameters(cls):
        """{training parameter: default} that `fit_arrays` takes (and `ZooImputer` passes through); the
        batch size's default is the model's `default_batch_size`."""
        signature = inspect.signature(cls.fit_arrays)
        defaults = {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in signature.parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name not in ("seed", "callbacks")
        }
        return {**defaults, "batch_size": cls.default_batch_size} if "batch_size" in defaults else defaults

    # --- networks -------------------------------------------------------------------------------
    def build(self, input_shape):
        # Accept [batch, *example] or the ((x_shape), (mask_shape)) pair that `call` receives.
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        example_shape = tuple(int(s) for s in input_shape[1:])
        if self.example_shape is None:
            if example_kind(example_shape) not in self.example_kinds:
                raise ValueError(f"{type(self).__name__} takes {' or '.join(self.example_kinds)} examples, not shape {example_shape}")
            self.example_shape = example_shape
            self.n_features = int(np.prod(example_shape))
            self.build_networks(example_shape)
        # One function per instance (a class-level tf.function would retrace for every new model), each
        # traced once for every batch size (a None batch): the graph `serving.export` saves is this one,
        # so in-process and served results come from the same graph. (A graph traced for a static batch
        # size gave EMFlow imputations 1 ulp away from the batch-free graph's: grappler rewrites the
        # batched linear algebra differently.)
        rows = tf.TensorSpec((None, *self.example_shape), tf.float32)
        count = tf.TensorSpec([], tf.int32)  # n draws, or the likelihood's samples: a tensor, one trace for all
        for name, graph, spec in [
            ("_impute_fn", self._impute_graph, [rows, rows]),
            ("_sample_fn", self._sample_graph, [rows, rows, count]),
            ("_proba_fn", self._proba_graph, [rows, rows]),
            ("_log_likelihood_fn", self._log_likelihood_graph, [rows, rows, count]),
            ("_log_prob_fn", self.log_prob_batch, [rows]),
        ]:
            object.__setattr__(self, name, tf.function(graph, input_signature=spec))
        self.built = True

    def build_networks(self, example_shape):
        """Create the sub-networks for examples of `example_shape` ((D,) or (H, W, C))."""
        raise NotImplementedError

    def compile(self, **kwargs):
        """Keras's compile, plus the model's optimizers: ``compile(g_optimizer=..., d_optimizer=..., ...)``.

        Each optimizer named in `optimizer_networks` is taken from `kwargs`, or is `make_optimizer`'s
        (Adam) at its default learning rate; every other argument goes to `keras.Model.compile`.
        """
        optimizers = {name: kwargs.pop(name, None) for name in self.optimizer_networks}
        super().compile(**kwargs)
        # the most steps per execution the user allows (`fit_arrays` may run fewer, never more)
        object.__setattr__(self, "_max_steps_per_execution", int(kwargs.get("steps_per_execution", 1)))
        rates = self.learning_rates()
        for name, optimizer in optimizers.items():
            setattr(self, name, optimizer or self.make_optimizer(name, rates[name]))

    def learning_rates(self, learning_rate=None):
        """{optimizer: rate}: the defaults, all set to a float `learning_rate`, or updated from a dict."""
        rates = {name: float(self.default_learning_rates.get(name, 1e-3)) for name in self.optimizer_networks}
        if learning_rate is None:
            return rates
        if isinstance(learning_rate, dict):
            unknown = sorted(set(learning_rate) - set(rates))
            if unknown:
                raise ValueError(
                    f"learning_rate has rate(s) for {', '.join(unknown)}, which {type(self).__name__} does not have; "
                    f"its optimizers: {', '.join(rates)}"
                )
            updates = learning_rate
        else:
            updates = {name: learning_rate for name in rates}
        for name, rate in updates.items():
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or not math.isfinite(rate):
                raise ValueError(f"learning rate of {name} must be a positive number, got {rate!r}")
            rates[name] = float(rate)
        return rates

    def make_optimizer(self, name, learning_rate):
        """The optimizer `compile_default` gives `name` (Adam; override for another kind)."""
        return keras.optimizers.Adam(learning_rate)

    def compile_default(self, learning_rate=None, steps_per_execution=1):
        """Compile with the model's default optimizers, each at its rate (see `learning_rates`)."""
        rates = self.learning_rates(learning_rate)
        self.compile(**{name: self.make_optimizer(name, rate) for name, rate in rates.items()}, steps_per_execution=steps_per_execution)

    def optimizers_and_variables(self):
        """[(optimizer attribute, optimizer, the trainable variables it updates)] for every optimizer."""
        out = []
        for name, networks in self.optimizer_networks.items():
            networks = (networks,) if isinstance(networks, str) else tuple(networks)
            variables = [v for network in networks for v in getattr(self, network).trainable_variables]
            out.append((name, getattr(self, name), variables))
        return out

    def build_optimizers(self):
        """Create every optimizer's slot variables now (needed before `fit` under a distribution strategy).

        Also builds, with no variables, the placeholder optimizer Keras's `compile` puts in
        `self.optimizer` when it is none of the model's own (no `train_step` uses it): otherwise `fit`
        under a strategy and `BackupAndRestore` build it with slots for every weight, and a backup
        written before that no longer matches the model it is restored into.
        """
        used = set()
        for _, optimizer, variables in self.optimizers_and_variables():
            optimizer.build(variables)
            used.add(id(optimizer))
        placeholder = getattr(self, "optimizer", None)
        if placeholder is not None and id(placeholder) not in used and not placeholder.built:
            placeholder.build([])

    # --- helpers for train_step -----------------------------------------------------------------
    @staticmethod
    def apply_losses(tape, updates):
        """For each (loss, network, optimizer): its gradients from a persistent `tape`, applied to the network."""
        for loss, network, optimizer in updates:
            grads = tape.gradient(loss, network.trainable_variables)
            optimizer.apply_gradients(zip(grads, network.trainable_variables))

    def record(self, trackers, values):
        """Update each tracker (a {name: keras.metrics.Mean}) with the GLOBAL-batch value of its entry in
        `values` (`global_sum` of the replicas' shares) and return the logs dict `train_step` returns."""
        totals = tf.unstack(global_sum(tf.stack([values[name] for name in trackers])))
        for tracker, total in zip(trackers.values(), totals):
            tracker.update_state(total)
        return {name: tracker.result() for name, tracker in trackers.items()}

    def random_uniform(self, shape, minval=0.0, maxval=1.0):
        """`keras.random.uniform` drawn from the model's seed generator, different on every replica.

        With one replica it is exactly ``keras.random.uniform(shape, minval, maxval, seed=self.seed_generator)``.
        Under a distribution strategy the seed generator is mirrored, so every replica would draw the
        same numbers for its rows (the same noise and hints in each replica's share of the batch);
        here the replica's id is added to the seed instead.
        """
        seed = self._replica_seed()
        if seed is None:
            return keras.random.uniform(shape, minval, maxval, seed=self.seed_generator)
        dtype = keras.config.floatx()
        return tf.random.stateless_uniform(shape, seed=seed, minval=tf.cast(minval, dtype), maxval=tf.cast(maxval, dtype), dtype=dtype)

    def random_normal(self, shape, mean=0.0, stddev=1.0):
        """`keras.random.normal` from the model's seed generator, different on every replica (see `random_uniform`)."""
        seed = self._replica_seed()
        if seed is None:
            return keras.random.normal(shape, mean, stddev, seed=self.seed_generator)
        dtype = keras.config.floatx()
        return tf.random.stateless_normal(shape, seed=seed, mean=tf.cast(mean, dtype), stddev=tf.cast(stddev, dtype), dtype=dtype)

    def _replica_seed(self):
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return None
        seed = self.seed_generator.next()
        seed = seed + tf.cast(tf.stack([context.replica_id_in_sync_group, 0]), seed.dtype)
        return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # as keras.random does for TF

    # --- the graph hooks ------------------------------------------------------------------------
    def impute_batch(self, x, mask):
        """The model's value for every entry of `x` (missing entries zeroed), deterministic. Graph mode."""
        raise NotImplementedError(f"{type(self).__name__} does not impute")

    def sample_batch(self, x, mask, n):
        """`n` imputations with fresh randomness, [n, batch, ...] (generative models). Graph mode."""
        raise NotImplementedError(f"{type(self).__name__} is not generative: use impute() for its single imputation")

    def predict_proba_batch(self, x, mask):
        """Class probabilities [batch, n_classes] (classifiers). Graph mode."""
        raise NotImplementedError(f"{type(self).__name__} is not a classifier")

    def log_likelihood_batch(self, x, mask, samples):
        """log p(x°) of each row's observed entries, [batch], in the model's scaled units; `samples` is the
        Monte-Carlo budget of models that estimate it (MIWAE's K). Graph mode (density models)."""
        raise NotImplementedError(f"{type(self).__name__} is not a density model")

    def log_prob_batch(self, x):
        """The exact log-density log p(x) of complete rows, [batch], in the model's scaled units. Graph mode
        (`exact_density` models)."""
        raise NotImplementedError(f"{type(self).__name__} has no exact density: use log_likelihood")

    def values_per_row(self, draws=1):
        """About how many float32 values imputing one row keeps in memory (`draws` imputations of it).

        The memory hint: eager imputation and the exported signatures work on at most
        ``IMPUTE_MEMORY_VALUES // values_per_row(draws)`` rows at a time. The default, `imputation_cost`
        times the example's size per draw, suits networks as wide as their input; a model that keeps
        more per row (MIWAE's L importance samples) overrides it. `draws` may be a tensor.
        """
        return self.imputation_cost * self.n_features * draws

    def rows_per_chunk(self, draws=1):
        return max(1, IMPUTE_MEMORY_VALUES // max(1, int(self.values_per_row(draws))))

    # --- imputation -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        x, mask = inputs
        if self.task == "classify":
            return self._proba_graph(x, mask)
        return self._impute_graph(x, mask)

    def _impute_graph(self, x, mask):
        x_zeroed = tf.where(mask > 0, x, tf.zeros_like(x))
        return keep_observed(x, mask, self.impute_batch(x_zeroed, mask))

    def _sample_graph(self, x, mask, n):
        x_zeroed = tf.where(mask > 0, x, tf.zeros_like(x))
        return keep_observed(x[None], mask[None], self.sample_batch(x_zeroed, mask, n))

    def _proba_graph(self, x, mask):
        return self.predict_proba_batch(tf.where(mask > 0, x, tf.zeros_like(x)), mask)

    def _log_likelihood_graph(self, x, mask, samples):
        return self.log_likelihood_batch(tf.where(mask > 0, x, tf.zeros_like(x)), mask, samples)

    def impute(self, x, mask):
        """Single imputation of `x` [rows, *example_shape] (1 = observed in `mask`); observed entries unchanged.

        Deterministic. Eager calls run at most `rows_per_chunk()` rows at a time; inside a traced
        graph it is the graph of `impute_batch` on the whole batch.
        """
        self._require_task("impute")
        if self._in_graph(x, mask):
            return self._impute_graph(x, mask)
        x, mask = self._check_inputs(x, mask)
        return self._chunked(self._impute_fn, x, mask, self.rows_per_chunk(), axis=0)

    def sample_imputations(self, x, mask, n):
        """`n` imputations drawn with fresh randomness, shape [n, rows, *example_shape] (generative models)."""
        self._require_task("impute")
        if not self.generative:
            raise NotImplementedError(f"{type(self).__name__} is not generative: use impute() for its single imputation")
        if isinstance(n, bool) or int(n) != n or int(n) < 1:
            raise ValueError(f"n must be a positive number of imputations, got {n}")
        n = int(n)
        x, mask = self._check_inputs(x, mask)
        return self._chunked(lambda a, b: self._sample_fn(a, b, tf.constant(n)), x, mask, self.rows_per_chunk(n), axis=1)

    def predict_proba(self, x, mask):
        """Class probabilities [rows, n_classes] of incomplete inputs (classifiers)."""
        self._require_task("classify")
        if self._in_graph(x, mask):
            return self._proba_graph(x, mask)
        x, mask = self._check_inputs(x, mask)
        return self._chunked(self._proba_fn, x, mask, self.rows_per_chunk(), axis=0)

    def log_likelihood(self, x, mask, samples=1000):
        """Estimated log-likelihood of each row's observed entries (nats, in the model's scaled units), [rows].

        Density models only (`density`); `samples` is the Monte-Carlo budget of an estimating model
        (MIWAE: eq. 3's K, a lower bound on average that tightens as it grows). Chunked as `impute`.
        """
        if not self.density:
            raise NotImplementedError(f"{type(self).__name__} is not a density model")
        if isinstance(samples, bool) or int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        x, mask = self._check_inputs(x, mask)
        samples = tf.constant(int(samples))  # a tensor: one trace serves every budget
        return self._chunked(lambda a, b: self._log_likelihood_fn(a, b, samples), x, mask, self.rows_per_chunk(), axis=0)

    def log_prob(self, x):
        """The exact log-density of complete rows (nats, in the model's scaled units), [rows]; `exact_density`
        models only (the flows: eq. 2's change of variables). A row with a missing value (NaN) is an error:
        `log_likelihood` takes those. Chunked as `impute`."""
        if not self.exact_density:
            raise NotImplementedError(f"{type(self).__name__} has no exact density: use log_likelihood")
        x = np.asarray(x)
        if x.dtype.kind in "fc":
            incomplete = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)) if x.ndim > 0 else []
            if len(incomplete):
                raise ValueError(
                    f"log_prob takes complete rows; row(s) {incomplete[:5].tolist()} hold NaN or inf: use log_likelihood(x, mask) "
                    "for rows with missing entries"
                )
        x, mask = self._check_inputs(x, np.ones(np.shape(x), np.float32))
        return self._chunked(lambda a, b: self._log_prob_fn(a), x, mask, self.rows_per_chunk(), axis=0)

    def _require_task(self, task):
        if self.task != task:
            what = {"impute": "imputes", "classify": "classifies"}[self.task]
            raise NotImplementedError(f"{type(self).__name__} {what} (task {self.task!r}); this call is for task {task!r}")

    @staticmethod
    def _in_graph(x, mask):
        return isinstance(x, tf.Tensor) and isinstance(mask, tf.Tensor) and not tf.executing_eagerly()

    @staticmethod
    def _chunked(fn, x, mask, chunk, axis):
        if len(x) <= chunk:
            return fn(x, mask)
        return tf.concat([fn(x[i : i + chunk], mask[i : i + chunk]) for i in range(0, len(x), chunk)], axis=axis)

    def _check_inputs(self, x, mask):
        if not self.built:
            raise RuntimeError(f"{type(self).__name__} is not built: fit it (or call build) before using it")
        x, mask = check_x_mask(
            np.asarray(x), np.asarray(mask), example_shape=self.example_shape, where=f"{self.name}", ranks=(len(self.example_shape) + 1,)
        )
        return tf.constant(x), tf.constant(mask)

    # --- training -------------------------------------------------------------------------------
    def fit_arrays(
        self, x, mask, y=None, *, iterations=None, epochs=None, batch_size=None, learning_rate=None, verbose=0, seed=0, callbacks=None
    ):
        """Train on in-memory arrays with `model.fit` (through `fit_rounds`); returns the Keras `History`.

        `x` and `mask` are [rows, *example_shape] (scaled, 1 = observed); `y` the class of each row for
        classifiers. `iterations` is the number of training steps (batches), the unit GAIN's reference
        code uses; `epochs` counts passes over the rows instead (``rows // batch_size`` steps each). Give
        at most one; neither means `default_iterations`. Exactly that many steps run (see `plan_steps`).
        `batch_size` None means the model's `default_batch_size`.
        `learning_rate` (a float, or a dict per optimizer) is used only when the model was not compiled
        yet (then it is compiled with its default optimizers). `verbose=1` shows Keras's progress bar.
        """
        if self.task == "classify" and y is None:
            raise ValueError(f"{type(self).__name__} is a classifier: fit_arrays needs the labels y")
        if self.task == "impute" and y is not None:
            raise ValueError(f"{type(self).__name__} is an imputer: fit_arrays takes no labels")
        ranks = tuple({"table": 2, "image": 4}[k] for k in self.example_kinds) if not self.built else (len(self.example_shape) + 1,)
        x, mask = check_x_mask(x, mask, example_shape=self.example_shape, where=f"{self.name}.fit", ranks=ranks)
        if y is not None:
            y = self.check_labels(y, len(x))
        if iterations is not None and epochs is not None:
            raise ValueError("give either iterations or epochs, not both")
        batch_size = positive_int(self.default_batch_size if batch_size is None else batch_size, "batch_size")
        if epochs is not None:
            epochs = positive_int(epochs, "epochs")
        elif iterations is None:
            iterations = self.default_iterations
        else:
            iterations = positive_int(iterations, "iterations")
        batch_size = min(batch_size, len(x))
        if not self.built:
            self.build((None,) + x.shape[1:])
        keras_epochs, steps_per_epoch, execution = plan_steps(
            rows=len(x),
            batch_size=batch_size,
            epochs=epochs,
            iterations=iterations,
            min_steps_per_epoch=self.min_steps_per_epoch,
            max_steps_per_execution=self.default_steps_per_execution if not self.compiled else getattr(self, "_max_steps_per_execution", int(self.steps_per_execution)),
        )
        if not self.compiled:
            self.compile_default(learning_rate, steps_per_execution=execution)
        elif execution != int(self.steps_per_execution):
            # Keras would run whole executions, more steps than asked: lower it to a divisor of the epoch's
            # steps; `train_function` is rebuilt for it by the next `fit`.
            self.steps_per_execution = execution
            self.train_function = None
        return self.fit_rounds(
            x,
            mask,
            y,
            make_dataset=lambda x_, mask_, y_=None: make_dataset(x_, mask_, batch_size=batch_size, seed=seed, y=y_),
            epochs=keras_epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            callbacks=callbacks,
            verbose=verbose,
        )

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, batch_size=None, callbacks=None, verbose=0):
        """Train for `epochs` Keras epochs of `steps_per_epoch` steps on the scaled training arrays.

        `batch_size` is the global batch of those steps (None: unknown), so that a model whose rounds are
        passes over the rows (EMFlow's Algorithm 1 runs one pass per round) can count them.

        The default is one `fit` on ``make_dataset(x, mask, y)``. `fit_arrays` and `training.train` both
        call this hook (so callbacks, TensorBoard, checkpoints and strategies see every round): a model
        that trains in rounds (EMFlow, MCFlow re-impute the training table between rounds and may
        re-initialise networks) overrides it with a loop of
        ``self.fit(make_dataset(x_round, mask), initial_epoch=start, epochs=end, shuffle=False, ...)`` that passes the
        same `callbacks` every time, and returns the last `History` with every round's values
        (`merge_histories`). `make_dataset` builds the (possibly distributed) training batches.
        """
        return self.fit(
            make_dataset(x, mask, y),
            epochs=int(epochs),
            steps_per_epoch=int(steps_per_epoch),
            shuffle=False,
            verbose=verbose,
            callbacks=callbacks,
        )

    def check_labels(self, y, n_rows):
        y = np.asarray(y)
        if y.shape != (n_rows,):
            raise ValueError(f"y must hold one label per row ({n_rows}), got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError("y must hold class indices 0 .. n_classes - 1 (integers)")
        return y.astype(np.int32)

    # --- the contract tests ---------------------------------------------------------------------
    @classmethod
    def contract_example(cls):
        """The small example `keraszoo.testing.contract` checks this model on (override for images or labels).

        A dict: ``x`` and ``mask`` (raw scale, 1 = observed), ``y`` (classifiers), ``params`` (non-default
        constructor parameters, so that saving and configs are checked beyond the defaults) and ``fit``
        (training parameters: a few steps).
        """
        from keraszoo.testing import table_example

        x, mask = table_example()
        return {"x": x, "mask": mask, "params": {}, "fit": {"iterations": 20, "batch_size": 16}}

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


class DeepClassifier(DeepImputer):
    """Base of classifiers of incomplete inputs (MisConv, the downstream classifiers of MIWAE and MisConv).

    Implements `predict_proba_batch`; `fit_arrays(x, mask, y)` takes class indices 0 .. n_classes - 1
    (`n_classes` is read from `y` at the first fit when not given).
    """

    task = "classify"

    def __init__(self, n_classes=None, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if n_classes is not None and (isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        self.n_classes = None if n_classes is None else int(n_classes)

    def check_labels(self, y, n_rows):
        y = super().check_labels(y, n_rows)
        if self.n_classes is None:
            if self.built:
                raise ValueError("n_classes must be known before the model is built: pass n_classes")
            self.n_classes = max(2, int(y.max()) + 1)
        elif y.max() >= self.n_classes:
            raise ValueError(f"y holds class {int(y.max())}, but the model has {self.n_classes} classes")
        return y

    def cross_entropy_step(self, optimizer, variables, logits_fn, y):
        """One step of `optimizer` on `variables` against the softmax cross-entropy of ``logits_fn()`` (called
        under the tape) and labels `y`, summed over this replica's rows and divided by the GLOBAL batch;
        returns this replica's shares of {"loss", "accuracy"} for `record`."""
        rows = tf.cast(global_sum(tf.shape(y)[0]), tf.float32)
        with tf.GradientTape() as tape:
            logits = logits_fn()
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)) / rows
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        accuracy = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=y.dtype), y), tf.float32)) / rows
        return {"loss": loss, "accuracy": accuracy}

    def build(self, input_shape):
        if self.n_classes is None:
            raise ValueError(f"{type(self).__name__}: set n_classes (or fit with labels) before building")
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"n_classes": self.n_classes})
        return config


def merge_histories(histories):
    """One `keras.callbacks.History` with the epochs and values of several `fit` calls, in order."""
    merged = histories[-1]
    epochs, values = [], {}
    for history in histories:
        epochs.extend(history.epoch)
        for key, series in history.history.items():
            values.setdefault(key, []).extend(series)
    merged.epoch, merged.history = epochs, values
    return merged


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
