"""g2lgn.md Table 2 (MNIST column) and Fig. 5: RMSE and LeNet FID of every model and ablation on MNIST.

    python -m training.g2lgn_mnist [--rows 60000] [--miss-rate 0.5] [--seeds 1] [--iterations 10000]
                                   [--models zero,mean,matrix,gain,misgan,gamin,g2lgn,...]
                                   [--set LABEL.param=value ...] [--output benchmarks/results/g2lgn_mnist.md]

Protocol: the first `--rows` images of MNIST's training set, pixels scaled to [0, 1], each pixel missing
with probability `--miss-rate` (MCAR, one mask per seed, the same for every model); each model is fitted
on those incomplete images and imputes them (transductive, as GAIN's code). RMSE over the missing pixels
(in [0, 1]); FID of the completed images (observed pixels kept) against MNIST's 60,000 training images,
on the 50 features of the zoo's LeNet (`keraszoo.fid`, MisGAN's evaluation, the scale of g2lgn.md's
1.2467). The truth's own FID (the same rows, complete) is printed as the floor. Deep models train
`--iterations` steps at batch 128 (MisGAN: generator steps; `--set LABEL.iterations=N` for one model). Models that take images (G2LGN's
convolutional variant, MisGAN) get [N, 28, 28, 1]; the others rows of 784 pixels; `--flat` gives every
model rows (g2lgn.md's "FC only" protocol). `--grid PNG` draws Fig. 5: truth, mask and each model's
completion of the first 8 images.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

#: label -> (registered model, parameters): Table 2's rows and Fig. 5's models.
MODELS = {
    "zero": ("zero", {}),
    "mean": ("mean", {}),
    "matrix": ("matrix", {}),
    "gain": ("gain", {}),
    "misgan": ("misgan", {}),
    "gamin": ("gamin", {}),
    "g2lgn": ("g2lgn", {}),
    "g2lgn-wo-lin": ("g2lgn", {"use_lin": False}),
    "g2lgn-wo-xhat": ("g2lgn", {"guide_input": "noise"}),
    "g2lgn-wo-search": ("g2lgn", {"use_search": False}),
    "g2lgn-wo-fc": ("g2lgn", {"use_fc": False}),
    "g2lgn-wo-search-fc": ("g2lgn", {"use_search": False, "use_fc": False}),
}
PAPER = {  # g2lgn.md Table 2, MNIST column (RMSE, FID)
    "g2lgn": (0.1455, 1.2467),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.g2lgn_mnist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated labels among: {', '.join(MODELS)}")
    parser.add_argument("--rows", type=int, default=60000, help="first N training images (default all 60000)")
    parser.add_argument("--miss-rate", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10000, help="training steps of each deep model")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--flat", action="store_true", help="every model gets rows of 784 pixels (FC only)")
    parser.add_argument("--set", action="append", default=[], metavar="LABEL.param=value", help="override a model's parameter")
    parser.add_argument("--grid", default=None, help="write Fig. 5 (a PNG) of the first seed")
    parser.add_argument("--output", default=None, help="markdown results file (and .csv beside it)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    args.labels = [label.strip() for label in args.models.split(",") if label.strip()]
    unknown = [label for label in args.labels if label not in MODELS]
    if unknown:
        parser.error(f"unknown model label(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    if not 0 < args.miss_rate < 1:
        parser.error("--miss-rate must be in (0, 1)")
    from training.benchmark import parse_overrides

    args.overrides = parse_overrides(parser, args.set, MODELS, among="the model labels ({})".format(", ".join(MODELS)))
    return args


def complete(label, images, mask, seed, args):
    """(completed images [N, 28, 28], fit seconds) of one model on one mask."""
    from keraszoo.registry import get_model_class, is_deep, model_parameters
    from keraszoo.sklearn import ZooImputer
    from training.benchmark import seed_deep_model

    name, params = MODELS[label]
    deep = is_deep(name)
    if deep:  # `--set LABEL.iterations=N` overrides these too
        params = {**params, "iterations": args.iterations, "batch_size": args.batch_size}
    params = {**params, **args.overrides.get(label, {})}
    if "seed" in model_parameters(name):
        params.setdefault("seed", seed)
    takes_images = deep and "image" in get_model_class(name).example_kinds and not args.flat
    incomplete = np.where(mask == 1, images, np.nan)
    model_input = incomplete[..., None] if takes_images else incomplete.reshape(len(images), -1)
    seed_deep_model(name, seed)
    start = time.perf_counter()
    imputed = ZooImputer(name, **params).fit(model_input).transform(model_input)
    return np.asarray(imputed, dtype=np.float64).reshape(images.shape), time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)  # before TensorFlow is imported: no CUDA or absl start-up lines
    from keraszoo import fid, metrics
    from keraszoo.data import load_dataset
    from keraszoo.data.missingness import mcar_mask
    from training.benchmark import machine_description

    mnist = load_dataset("mnist")
    all_images = mnist.images.astype(np.float64) / 255.0
    images = all_images[: args.rows]
    lenet = fid.load_lenet()
    reference = fid.feature_statistics(fid.lenet_features(lenet, all_images))
    floor = fid.frechet_distance(reference, fid.feature_statistics(fid.lenet_features(lenet, images)))
    print(f"FID of the truth itself ({len(images)} rows against the 60000): {floor:.4f}", flush=True)

    results = {label: [] for label in args.labels}
    grid = {}
    for seed in range(args.seeds):
        mask = mcar_mask(images.shape, args.miss_rate, seed=seed)
        for label in args.labels:
            completed, seconds = complete(label, images, mask, seed, args)
            rmse = metrics.rmse(images, completed, mask, normalize=False)  # pixels are already in [0, 1]
            score = fid.frechet_distance(reference, fid.feature_statistics(fid.lenet_features(lenet, np.clip(completed, 0, 1))))
            results[label].append((rmse, score, seconds))
            print(f"seed {seed} {label:20s} RMSE {rmse:.4f}  FID {score:.4f}  ({seconds:.0f} s)", flush=True)
            if seed == 0:
                grid[label] = completed[:8]
        if seed == 0:
            grid["_truth"], grid["_mask"] = images[:8], mask[:8]

    lines = table(args, results, floor)
    print("\n".join(lines))
    if args.output:
        write(args, results, lines, machine_description(), sys.argv[1:] if argv is None else argv)
    if args.grid:
        draw_grid(grid, args.labels, args.grid)


def _mean_std(values):
    from training.benchmark import sample_std

    values = list(values)
    mean = float(np.mean(values))
    return f"{mean:.4f}" if len(values) < 2 else f"{mean:.4f} ± {sample_std(values):.4f}"


def table(args, results, floor):
    lines = [
        f"| model | parameters | RMSE (n={args.seeds}) | FID (n={args.seeds}) | g2lgn.md Table 2 (RMSE / FID) | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for label, runs in results.items():
        name, params = MODELS[label]
        params = {**params, **args.overrides.get(label, {})}
        paper = PAPER.get(label)
        lines.append(
            f"| {label} | `{name}` {params or ''} | {_mean_std(r[0] for r in runs)} | {_mean_std(r[1] for r in runs)} | "
            f"{'%.4f / %.4f' % paper if paper else ''} | {np.mean([r[2] for r in runs]):.0f} |"
        )
    lines.append(f"| truth (floor) | the complete images | 0 | {floor:.4f} | | |")
    return lines


def write(args, results, lines, machine, argv):
    command = "python -m training.g2lgn_mnist " + " ".join(argv)
    with open(args.output, "w") as f:
        f.write("# g2lgn.md Table 2 (MNIST) and Fig. 5\n\n")
        f.write(f"Command: `{command.strip()}`\n\nMachine: {machine}. Date: {time.strftime('%Y-%m-%d')}.\n\n")
        f.write(__doc__.split("\n\n", 2)[2].split("`--grid")[0].strip() + "\n\n")
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(args.output)[0] + ".csv", "w") as f:
        f.write("model,seed,rmse,fid,fit_seconds\n")
        for label, runs in results.items():
            for seed, (rmse, score, seconds) in enumerate(runs):
                f.write(f"{label},{seed},{rmse:.6f},{score:.6f},{seconds:.1f}\n")


def draw_grid(grid, labels, path):
    """Fig. 5: one row per method (truth, mask, then each model), one column per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("truth", grid["_truth"]), ("mask", np.where(grid["_mask"] == 1, grid["_truth"], 0.5))]
    rows += [(label, grid[label]) for label in labels]
    fig, axes = plt.subplots(len(rows), 8, figsize=(8 * 0.9, len(rows) * 0.95))
    for r, (name, pictures) in enumerate(rows):
        for c in range(8):
            ax = axes[r, c]
            ax.imshow(np.clip(pictures[c], 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
