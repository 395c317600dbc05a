"""Training speed of several zoo models side by side, in one run on one machine.

    python -m training.speed_models [--models gain,g2lgn] [--features 57] [--rows 4601] [--image 28]
                                    [--batch-size 128] [--steps 1000] [--repeats 3] [--warmup-steps 100]

Every model trains the same way: `fit_arrays` (that is, `model.fit` with the default compile and its
50 steps per `tf.function` call) on the same random table in [0, 1] with 20% MCAR, at the same batch
size. Each run first trains `--warmup-steps` (100) steps (tracing, optimizer set-up), then times `--steps`
more (a warm-up whose steps per call differ from the timed run's would leave a retrace in the timing: the
tests warm up with as many steps as they time); the models are timed in turns (gain, g2lgn, gain, ...) so that a slow spell of the machine hits each of
them, and the best of `--repeats` is the headline. `--image S` times S x S x 1 images instead of a
table (table-only models get them flattened). Prints steps/s per model and each model's ratio to the
first one.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

WARMUP_STEPS = 100


def time_model(name, x, mask, batch_size, steps, seed=0, warmup_steps=WARMUP_STEPS):
    """Steps/s of `steps` training steps of a fresh `name` model, after `warmup_steps` untimed ones."""
    import keraszoo

    model = keraszoo.get_model(name, seed=seed)
    if x.ndim == 4 and "image" not in model.example_kinds:  # a table-only model gets images as rows of pixels
        x, mask = x.reshape(len(x), -1), mask.reshape(len(mask), -1)
    model.fit_arrays(x, mask, iterations=warmup_steps, batch_size=batch_size)
    start = time.perf_counter()
    model.fit_arrays(x, mask, iterations=steps, batch_size=batch_size)
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.speed_models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gain,g2lgn", help="comma-separated registered deep models (the first is the reference)")
    parser.add_argument("--features", type=int, default=57, help="columns (default 57 = Spambase)")
    parser.add_argument("--rows", type=int, default=4601, help="rows (default 4601 = Spambase)")
    parser.add_argument("--image", type=int, default=None, help="time S x S x 1 images instead of a table")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per run (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each model, in turns (default 3)")
    parser.add_argument("--warmup-steps", type=int, default=WARMUP_STEPS, help=f"untimed steps before each run (default {WARMUP_STEPS})")
    args = parser.parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(False)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    rng = np.random.default_rng(0)
    shape = (args.rows, args.image, args.image, 1) if args.image else (args.rows, args.features)
    x = rng.random(shape, dtype=np.float32)
    mask = (rng.random(shape) >= 0.2).astype(np.float32)
    what = f"{args.image}x{args.image}x1 images" if args.image else f"{args.features} features"
    print(f"{what}, {args.rows} rows, batch {args.batch_size}, {args.steps} timed steps per run, best of {args.repeats}")
    timings = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            timings[name].append(time_model(name, x, mask, args.batch_size, args.steps, seed=repeat, warmup_steps=args.warmup_steps))
            print(f"  run {repeat + 1} {name}: {timings[name][-1]:.1f} steps/s", flush=True)
    reference = max(timings[names[0]])
    print(f"\n| model | steps/s (best of {args.repeats}) | every run | ratio to {names[0]} |")
    print("|---|---|---|---|")
    for name in names:
        best = max(timings[name])
        runs = ", ".join(f"{t:.1f}" for t in timings[name])
        print(f"| {name} | {best:.1f} | {runs} | {best / reference:.2f} |")


if __name__ == "__main__":
    main()
