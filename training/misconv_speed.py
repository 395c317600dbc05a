"""misconv-supplement.md Table 2: the forward time of a plain convolution and of MisConv, in one run.

    python -m training.misconv_speed --output benchmarks/results/misconv_speed.md

Protocol (the supplement's section 3, reduced): images of 28x28x1 (MNIST), 32x32x3 (SVHN, CIFAR-10) and
64x64x3 (CelebA), each with a missing square of half the side (14, 16, 32: the table's "M"), batches
of 16, 32 and 64; 32 output maps, 3x3 kernels, l = 4 factors, one component. Both layers run the same
way: one `tf.function` each, traced and warmed up (`--warmup` calls, 10) before timing, the same inputs every call (MisConv's
mixture drawn once at random: the DMFA that would produce it is not timed, as in the paper, which
times the layer), each call's output fetched to the host (`.numpy()`), on the same threads. The plain
side is `Conv2D` + ReLU on the image (missing pixels zero). Each configuration is timed `--repeats`
times (the paper: 5000) in an interleaved order; we report mean ± sample standard deviation in ms and
the ratio of the means.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

CONFIGS = ((28, 1, 14), (32, 3, 16), (64, 3, 32))
BATCHES = (16, 32, 64)


def inputs(size, channels, hole, batch, factors=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, channels), dtype=np.float32)
    observed = np.ones_like(x)
    for i in range(batch):
        top, left = rng.integers(0, size - hole + 1, size=2)
        observed[i, top : top + hole, left : left + hole] = 0.0
    x *= observed
    means = rng.random((batch, 1, size, size, channels), dtype=np.float32)
    loadings = (0.5 * rng.random((batch, 1, factors, size, size, channels), dtype=np.float32) - 0.25).astype(np.float32)
    diagonals = rng.uniform(0.01, 1.0, (batch, 1, size, size, channels)).astype(np.float32)
    weights = np.ones((batch, 1), np.float32)
    return x, observed, means, loadings, diagonals, weights


def run(repeats=200, log=print, warmup=10):
    import keras
    import tensorflow as tf

    from keraszoo.models.misconv import MisConv

    rows = []
    for size, channels, hole in CONFIGS:
        conv = keras.layers.Conv2D(32, 3, padding="same", activation="relu")
        misconv = MisConv(32, 3, seed=0)
        for batch in BATCHES:
            arrays = [tf.constant(a) for a in inputs(size, channels, hole, batch)]
            plain_fn = tf.function(lambda x: conv(x))
            misconv_fn = tf.function(lambda *a: misconv(*a))
            for _ in range(warmup):  # trace and warm up
                plain_fn(arrays[0]).numpy()
                misconv_fn(*arrays).numpy()
            times = {"conv": [], "misconv": []}
            for _ in range(repeats):
                start = time.perf_counter()
                plain_fn(arrays[0]).numpy()
                times["conv"].append(time.perf_counter() - start)
                start = time.perf_counter()
                misconv_fn(*arrays).numpy()
                times["misconv"].append(time.perf_counter() - start)
            row = {"size": size, "channels": channels, "hole": hole, "batch": batch}
            for name, values in times.items():
                values = np.array(values) * 1e3
                row[f"{name}_mean"], row[f"{name}_std"] = float(values.mean()), float(values.std(ddof=1))
            row["ratio"] = row["misconv_mean"] / row["conv_mean"]
            rows.append(row)
            log(f"{size}x{size}x{channels} hole {hole} batch {batch}: conv {row['conv_mean']:.3f} ms, MisConv {row['misconv_mean']:.3f} ms, ratio {row['ratio']:.1f}")
    return rows


def markdown(rows, command, repeats, elapsed):
    import tensorflow as tf

    lines = [
        "# MisConv forward time against a plain convolution (misconv-supplement.md Table 2)",
        "",
        f"Command: `{command}` ({elapsed:.1f} s).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.system()}. "
        f"Date: {time.strftime('%Y-%m-%d')}.",
        "",
        f"Protocol: see `training/misconv_speed.py`'s docstring; {repeats} timed calls per layer and configuration (the paper: 5000), "
        "mean ± sample standard deviation in milliseconds.",
        "",
        "| image | missing square | batch | convolution + ReLU (ms) | MisConv (ms) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}x{r['size']}x{r['channels']} | {r['hole']}x{r['hole']} | {r['batch']} | {r['conv_mean']:.3f} ± {r['conv_std']:.3f} | "
            f"{r['misconv_mean']:.3f} ± {r['misconv_std']:.3f} | {r['ratio']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls before each configuration's timing (at least 1: the first call traces)")
    parser.add_argument("--output", default=None, help="markdown file for the table")
    args = parser.parse_args(argv)
    start = time.monotonic()
    rows = run(args.repeats, warmup=max(1, args.warmup))
    if args.output:
        command = "python -m training.misconv_speed " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(args.output, "w") as f:
            f.write(markdown(rows, command.strip(), args.repeats, time.monotonic() - start))
    return rows


if __name__ == "__main__":
    main()
