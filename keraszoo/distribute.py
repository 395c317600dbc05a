"""Distribution strategies for zoo models: one CPU, several GPUs, several machines, same code.

    from keraszoo.distribute import get_strategy, shard_dataset
    strategy = get_strategy("mirrored")          # every local GPU (CPU:0 when there is none)
    with strategy.scope():                       # variables must be created under the strategy
        model = get_model("gain")
        model.build((None, n_features))
        model.compile_default(learning_rate, steps_per_execution=1)  # 1 with several replicas (below)
        model.build_optimizers()                 # every optimizer's slots, before fit
    model.fit(shard_dataset(make_dataset(x, mask, batch_size=global_batch)), ...)

Names (`STRATEGIES`):

* ``"default"`` -- no distribution (TensorFlow's default strategy: one device).
* ``"mirrored"`` -- `tf.distribute.MirroredStrategy`, synchronous data parallelism over the local
  GPUs. ``n_cpu_replicas=k`` instead splits the CPU into k logical devices and mirrors over them: no
  speed-up (they share the same cores), but it runs the multi-replica code path anywhere (tests,
  `training/speed_replicas.py`). Logical devices can only be set before TensorFlow initialises its
  devices, that is before the first TensorFlow op of the process: call `get_strategy` first.
* ``"multiworker"`` -- `tf.distribute.MultiWorkerMirroredStrategy`, the same over several machines
  (or processes); the cluster comes from the ``TF_CONFIG`` environment variable of each worker, e.g.
  ``{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}``.
  Without ``TF_CONFIG`` it is a single worker. Create it at the start of the program, before any
  other TensorFlow op. Keras 3 needs the workaround in `_patch_keras_for_multi_worker`.

Batches and losses: the dataset's batch size is the GLOBAL batch; each step, tf.distribute splits
the batch across the replicas and Keras's optimizers all-reduce the gradients with a SUM. The zoo's
models divide their losses by counts over the global batch (`keraszoo.models.base.global_sum`), so one
step on k replicas makes the same update as one step on one replica with the same global batch, and
the losses they report are the global-batch ones. Random draws in `train_step` differ between
replicas (`DeepImputer.random_uniform`), so 1 and k replicas give exactly the same update only for a
model run without randomness (e.g. GAIN with ``hint_rate=1`` and ``noise_scale=0``, as the tests do).

Steps per call: with several replicas Keras 3.15 can only run one training step per `tf.function`
call (`steps_per_execution_limit`, keras-team/keras#19246); compile with ``steps_per_execution=1``.

Outputs: with several workers, only the chief (`is_chief`) should write shared files (TensorBoard
logs, checkpoints, exports); the others write to their own directories (`worker_info`).

Input sharding (`shard_dataset`): the zoo's datasets are in-memory tables (`make_dataset`
gathers batches from in-memory tensors), which have no files to split, so the auto-shard policy is set
to DATA explicitly (AUTO would try FILE first and fall back to DATA with a warning). Every worker
builds the same dataset (same rows, same shuffling seed) and keeps its own part of each global
batch; the table is in memory on each worker anyway, so reading it whole costs nothing. Workers
must therefore use the same seed, which `training/train.py` does.
"""
import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")

_PATCHED = False


def split_cpu(n):
    """Split the (first) CPU into `n` logical devices; returns their names, e.g. ["/cpu:0", "/cpu:1"].

    Must run before TensorFlow initialises its devices. If they are already initialised with at
    least `n` logical CPUs, those are used; otherwise a RuntimeError says so.
    """
    import tensorflow as tf

    n = int(n)
    if n < 1:
        raise ValueError(f"n_cpu_replicas must be a positive integer, got {n}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have < n:
            raise RuntimeError(
                f"cannot split the CPU into {n} logical devices: TensorFlow already initialised its devices "
                f"({have} logical CPU(s)); create the strategy before any TensorFlow op (in a fresh process)"
            ) from None
    return [f"/cpu:{i}" for i in range(n)]


def get_strategy(name="default", n_cpu_replicas=None):
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`); see the module doc."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    if n_cpu_replicas is not None and name != "mirrored":
        raise ValueError(f"n_cpu_replicas (CPU replicas) is for the 'mirrored' strategy only, not {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if n_cpu_replicas is not None:
            return tf.distribute.MirroredStrategy(devices=split_cpu(n_cpu_replicas))
        return tf.distribute.MirroredStrategy()
    _patch_keras_for_multi_worker()
    if "TF_CONFIG" in os.environ:
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as err:
            raise ValueError(f"TF_CONFIG is not valid JSON ({err})") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def steps_per_execution_limit(strategy):
    """The most training steps Keras may run per call under `strategy`: 1 with several replicas, else None.

    With `steps_per_execution` > 1, Keras 3's `fit` runs the steps in a `tf.while_loop`, each inside a
    `tf.cond`; with several replicas the optimizers' cross-replica `merge_call` inside that `cond`
    fails ("You must feed a value for placeholder tensor '...while/cond/...Placeholder'"), for any
    model, under MirroredStrategy and MultiWorkerMirroredStrategy alike (Keras 3.15; see
    https://github.com/keras-team/keras/issues/19246). One step per call costs Python overhead per
    step, which is what `training/speed_replicas.py` measures.
    """
    return 1 if strategy.num_replicas_in_sync > 1 else None


def shard_dataset(dataset):
    """`dataset` with the DATA auto-shard policy (see the module doc for why)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def worker_info(strategy):
    """(task type, task index, number of workers) of this process under `strategy` (("worker", 0, 1) if not multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return "worker", 0, 1
    spec = resolver.cluster_spec().as_dict()
    n_workers = sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))
    return resolver.task_type or "worker", int(resolver.task_id or 0), n_workers


def is_chief(strategy):
    """Whether this process writes the shared outputs (logs, checkpoints, exports).

    The "chief" task if the cluster has one, else worker 0; always True outside multi-worker training.
    """
    task_type, task_id, _ = worker_info(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def _patch_keras_for_multi_worker():
    """Make Keras 3's `fit` work under MultiWorkerMirroredStrategy: tensorflow#72388.

    https://github.com/tensorflow/tensorflow/issues/72388 ("tf.distribute and keras 3 incompatibility:
    ValueError: Invalid reduction dimension 0 for input with 0 dimensions"), still present in
    Keras 3.15 / TensorFlow 2.21. In multi-worker mode Keras's TensorFlow trainer

    1. reduces every value `train_step` returns with ``strategy.reduce("MEAN", v, axis=0)``
       (`reduce_per_replica`), which fails for the scalar losses every model returns: scalars are
       reduced here with ``axis=None``, their mean over the replicas (our models return
       global-batch values, equal on every replica, so the mean is that value);
    2. before the first epoch (`_maybe_symbolic_build`) takes an eager ``strategy.reduce("MEAN",
       batch)`` of the first distributed batch only to learn the input shapes, which fails with
       "Attempt to convert a value (PerReplica...) with an unsupported type": the batch of the first
       local replica is used instead (same shapes but the batch dimension, which building ignores).

    Both changes apply only to a MultiWorkerMirroredStrategy in multi-worker mode; everything else
    goes to Keras's own code. Applied once, by `get_strategy("multiworker")`. This is the one place
    the project works around the issue: drop it when Keras fixes it.
    """
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def multi_worker(strategy):
        return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()

    keras_reduce_per_replica = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not multi_worker(strategy):
            return keras_reduce_per_replica(values, strategy, reduction)

        def reduce_one(value):
            if getattr(value, "shape", None) is not None and value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce_per_replica(value, strategy, reduction)

        return tf.nest.map_structure(reduce_one, values)

    tf_trainer.reduce_per_replica = reduce_per_replica

    keras_symbolic_build = getattr(tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build", None)
    if keras_symbolic_build is not None:

        def maybe_symbolic_build(self, iterator=None, data_batch=None):
            strategy = self._distribute_strategy
            if iterator is None or data_batch is not None or strategy is None or not multi_worker(strategy):
                return keras_symbolic_build(self, iterator=iterator, data_batch=data_batch)
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
            return keras_symbolic_build(self, iterator=None, data_batch=data_batch)

        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _PATCHED = True
