"""emflow.md Fig. 2: training loss and held-out RMSE against wall time for EMFlow and MCFlow, one run each.

    python -m training.flow_convergence [--dataset letter] [--models emflow,mcflow] [--seed 0]
                                        [--miss-rate 0.2] [--iterations N] [--set MODEL.PARAM=VALUE ...]
                                        [--label-feature] [--output benchmarks/results/emflow_convergence.md]

Protocol: `training.benchmark`'s five folds (`--protocol kfold --norm-rows all`): the seed's MCAR mask and
fold, the same for every model; each model fits on the other four folds at its defaults (or `--set`),
and after every Keras epoch its imputation of the held-out fold is scored (RMSE over the removed
entries, min-max units of the whole table). The clock counts training only: the time each held-out
evaluation takes is left out. The loss is each model's `nll` (the flow's negative log-likelihood of the
current imputation of its batch, eq. 10), the quantity both train.

The paper claims EMFlow converges at least 5x faster than MCFlow. Convergence time here is the training
time at the first epoch after which the held-out RMSE stays within 1% of the model's final RMSE
(`converged_at`); the report gives the ratio MCFlow / EMFlow, and also each model's best RMSE and when it
was reached (a curve that rises within a round converges "early" to a worse final value).
`--label-feature` appends the data set's numeric label as its last column (EMFlow's 12-column Wine).
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

#: the held-out RMSE must stay within this fraction of the final one
TOLERANCE = 0.01


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.flow_convergence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="letter")
    parser.add_argument("--models", default="emflow,mcflow", help="comma-separated registered deep models (default emflow,mcflow)")
    parser.add_argument("--seed", type=int, default=0, help="the mask, the fold (seed mod 5) and the models' seed")
    parser.add_argument("--miss-rate", type=float, default=0.2, help="MCAR rate (default 0.2)")
    parser.add_argument("--iterations", type=int, default=None, help="training steps of every model (default: each model's own)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE", help="override a model's parameter")
    parser.add_argument("--label-feature", action="store_true", help="append the data set's numeric label as a feature column")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $KERASZOO_DATA_DIR)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "emflow_convergence.md"))
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    from keraszoo.registry import is_deep, list_models

    for model in args.models:
        if model not in list_models() or not is_deep(model):
            parser.error(f"--models: {model!r} is not a registered deep model")
    if not 0.0 < args.miss_rate < 1.0:
        parser.error(f"--miss-rate must be in (0, 1), got {args.miss_rate}")
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be positive")
    from training.benchmark import parse_overrides

    args.overrides = parse_overrides(parser, args.set, args.models)
    return args


def converged_at(seconds, scores, tolerance=TOLERANCE):
    """The first time after which every score stays within `tolerance` (relative) of the last score."""
    seconds, scores = np.asarray(seconds, float), np.asarray(scores, float)
    inside = np.abs(scores - scores[-1]) <= tolerance * abs(scores[-1])
    outside = np.flatnonzero(~inside)
    first = 0 if outside.size == 0 else outside[-1] + 1
    return float(seconds[first])


def load_truth(args):
    from keraszoo.data import load_dataset
    from training.benchmark import with_label_column

    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    table = dataset.numeric_array()
    return with_label_column(table, dataset.labels, args.dataset) if args.label_feature else table


def run_curve(model, params, truth, args):
    """[(training seconds, epoch, nll, held-out RMSE)] after every epoch of one model's fit."""
    import keras

    from keraszoo import metrics
    from keraszoo.sklearn import ZooImputer
    from training import benchmark

    settings = {"protocol": "kfold", "norm_rows": "all"}
    truth, mask, model_input, params, fit_rows, scored_rows = benchmark._prepare_run(
        model, params, truth, args.seed, args.miss_rate, benchmark._settings(settings), None, args.dataset
    )
    statistics = metrics.scaling_statistics(truth, mask, normalize="minmax", source="truth")
    if args.iterations is not None:
        params["iterations"] = args.iterations
    imputer = ZooImputer(model, **params)
    benchmark.seed_deep_model(model, args.seed)
    held_out = model_input[scored_rows]
    points = []

    class Curve(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if not points:
                self.clock = time.perf_counter()
                self.paused = 0.0

        def on_epoch_end(self, epoch, logs=None):
            trained = time.perf_counter() - self.clock - self.paused
            pause = time.perf_counter()
            imputed = imputer.transform(held_out)
            rmse = metrics.rmse(truth[scored_rows], imputed, mask[scored_rows], normalize="minmax", statistics=statistics)
            points.append((trained, epoch + 1, float((logs or {}).get("nll", np.nan)), float(rmse)))
            self.paused += time.perf_counter() - pause

    curve = Curve()
    imputer.fit(model_input[fit_rows], callbacks=[curve])
    return points


def summarise(points):
    seconds, _, _, rmse = (np.array(c) for c in zip(*points))
    best = int(np.argmin(rmse))
    return {
        "final_rmse": float(rmse[-1]), "best_rmse": float(rmse[best]), "best_seconds": float(seconds[best]),
        "converged_seconds": converged_at(seconds, rmse), "total_seconds": float(seconds[-1]), "epochs": len(points),
    }


def write_plot(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, rmse_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for model, points in curves.items():
        seconds, _, nll, rmse = (np.array(c) for c in zip(*points))
        loss_ax.plot(seconds, nll, label=model)
        rmse_ax.plot(seconds, rmse, marker=".", label=model)
    loss_ax.set(xlabel="training time (s)", ylabel="training NLL (nats per row, epoch mean)", title="training loss")
    rmse_ax.set(xlabel="training time (s)", ylabel="held-out RMSE", title="held-out RMSE")
    for ax in (loss_ax, rmse_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_markdown(args, curves, summaries, command, machine):
    lines = [
        f"# EMFlow Fig. 2: convergence against wall time ({args.dataset}, {args.miss_rate:.0%} MCAR, fold {args.seed % 5})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine}.",
        "",
        "Protocol: `training.benchmark`'s five folds (kfold, min-max over every row), seed "
        f"{args.seed}: one mask and one fold for every model; each model at "
        + ("its defaults" if not any(args.overrides.values()) and args.iterations is None else
           f"its defaults with {({m: p for m, p in args.overrides.items() if p})}" + (f", {args.iterations} steps" if args.iterations else ""))
        + "; after every Keras epoch the held-out fold is imputed and scored (RMSE over its removed entries). The clock counts "
        "training only (evaluations excluded), first-call tracing included. Converged: the training time of the first epoch after "
        f"which the held-out RMSE stays within {TOLERANCE:.0%} of the model's final RMSE. One run per model (one seed), as the paper's figure.",
        "",
        "| model | final RMSE | converged after (s) | best RMSE | best at (s) | training time (s) | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, s in summaries.items():
        lines.append(f"| {model} | {s['final_rmse']:.4f} | {s['converged_seconds']:.1f} | {s['best_rmse']:.4f} | {s['best_seconds']:.1f} | "
                     f"{s['total_seconds']:.1f} | {s['epochs']} |")
    if "emflow" in summaries and "mcflow" in summaries:
        e, m = summaries["emflow"], summaries["mcflow"]
        ratio = m["converged_seconds"] / max(e["converged_seconds"], 1e-9)
        lines += ["", f"Convergence-time ratio MCFlow / EMFlow: **{ratio:.2f}** (the paper claims at least 5). "
                  f"Final RMSE: EMFlow {e['final_rmse']:.4f}, MCFlow {m['final_rmse']:.4f}."]
    lines += ["", f"Curves: [`{os.path.basename(_sidecar(args.output, '.csv'))}`]({os.path.basename(_sidecar(args.output, '.csv'))}) "
              "(model, seconds, epoch, nll, rmse); plot:", "", f"![loss and held-out RMSE against time]({os.path.basename(_sidecar(args.output, '.png'))})", ""]
    return "\n".join(lines)


def _sidecar(output, suffix):
    return os.path.splitext(output)[0] + suffix


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose="--verbose" in argv)  # before the models (and TensorFlow) are imported
    args = parse_args(argv)
    from training.benchmark import machine_description

    truth = load_truth(args)
    curves = {}
    for model in args.models:
        print(f"{model}: fitting on {args.dataset}", file=sys.stderr, flush=True)
        curves[model] = run_curve(model, args.overrides.get(model, {}), truth, args)
    summaries = {model: summarise(points) for model, points in curves.items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(_sidecar(args.output, ".csv"), "w") as f:
        f.write("model,seconds,epoch,nll,rmse\n")
        for model, points in curves.items():
            for seconds, epoch, nll, rmse in points:
                f.write(f"{model},{seconds:.3f},{epoch},{nll:.6g},{rmse:.6f}\n")
    write_plot(_sidecar(args.output, ".png"), curves)
    import shlex

    command = "python -m training.flow_convergence " + " ".join(shlex.quote(a) for a in argv)
    with open(args.output, "w") as f:
        f.write(format_markdown(args, curves, summaries, command, machine_description()))
    print(f"written to {args.output}", file=sys.stderr)
    return summaries


if __name__ == "__main__":
    main()
