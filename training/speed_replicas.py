"""Cost of data parallelism: GAIN's `model.fit` steps/s on 1 vs 2 replicas of a MirroredStrategy.

    python -m training.speed_replicas [--features 57] [--batch-size 128] [--steps 1000] [--repeats 3]

The CPU is split into 2 logical devices (`keraszoo.distribute.split_cpu`), so both replicas share the
same cores: 2 replicas cannot be faster here, and the ratio measures what distribution itself costs
(splitting each global batch, the all-reduce of every gradient and loss, the per-replica function
calls). On GPUs each replica has its own device and that cost buys parallel compute.

Runs, each on the same global batch (`--batch-size`) of random data (`--features` columns, 20% MCAR):

* ``default``: no strategy, Keras's default `steps_per_execution` for the model (what one device gets);
* ``mirrored x1`` and ``mirrored x2``: MirroredStrategy over 1 and 2 logical CPUs with
  `steps_per_execution` = 1 on both (the most Keras allows with several replicas, see
  `keraszoo.distribute.steps_per_execution_limit`), so that their ratio isolates the replicas.

Each is timed over `--steps` steps after a warm-up; the best of `--repeats` is reported.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def steps_per_second(strategy, x, mask, batch_size, steps, steps_per_execution):
    from keraszoo.distribute import shard_dataset
    from keraszoo.models.base import make_dataset
    from keraszoo.models.gain import GAIN

    with strategy.scope():
        model = GAIN()
        model.build((None, x.shape[1]))
        model.compile_default(1e-3, steps_per_execution=steps_per_execution)
        model.build_optimizers()
    dataset = shard_dataset(make_dataset(x, mask, batch_size=batch_size))
    warm_up = max(steps_per_execution, 100 // steps_per_execution * steps_per_execution)
    model.fit(dataset, epochs=1, steps_per_epoch=warm_up, verbose=0)  # tracing, first optimizer steps
    steps = -(-steps // steps_per_execution) * steps_per_execution
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.speed_replicas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=57, help="columns (57 = Spambase)")
    parser.add_argument("--rows", type=int, default=4601)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)  # before TensorFlow is imported: no CUDA or absl start-up lines

    from keraszoo.distribute import split_cpu

    devices = split_cpu(2)  # before any TensorFlow op
    import tensorflow as tf

    from keraszoo.models.gain import GAIN

    rng = np.random.default_rng(0)
    x = rng.random((args.rows, args.features)).astype(np.float32)
    mask = (rng.random(x.shape) >= 0.2).astype(np.float32)
    runs = {
        "default": (tf.distribute.get_strategy(), GAIN.default_steps_per_execution),
        "mirrored x1": (tf.distribute.MirroredStrategy(devices[:1]), 1),
        "mirrored x2": (tf.distribute.MirroredStrategy(devices), 1),
    }
    results = {}
    for name, (strategy, spe) in runs.items():
        results[name] = max(steps_per_second(strategy, x, mask, args.batch_size, args.steps, spe) for _ in range(args.repeats))
    print(
        f"GAIN, {args.features} features, global batch {args.batch_size}, {args.steps} steps, best of {args.repeats}, "
        f"{os.cpu_count()} cores split into 2 logical CPU devices, TensorFlow {tf.__version__}"
    )
    for name, (strategy, spe) in runs.items():
        print(
            f"{name:12s}: {results[name]:8.1f} steps/s  {results[name] * args.batch_size:9.0f} rows/s  "
            f"({strategy.num_replicas_in_sync} replica(s), steps_per_execution {spe})"
        )
    print(f"overhead of 2 replicas (mirrored x1 / mirrored x2 steps/s): {results['mirrored x1'] / results['mirrored x2']:.2f}")
    print(f"default / mirrored x2 steps/s: {results['default'] / results['mirrored x2']:.2f}")
    return results


if __name__ == "__main__":
    main()
