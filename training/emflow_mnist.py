"""emflow.md Tables 2 and 3 on MNIST: RMSE at missing rates 0.1 to 0.9, and a LeNet's accuracy on the imputed test set.

    python -m training.emflow_mnist [--rows 60000] [--test-rows 10000] [--miss-rates 0.1,0.2,...,0.9]
                                    [--seeds 1] [--models emflow,mcflow,mean,knn,gain,miwae]
                                    [--iterations N] [--set MODEL.PARAM=VALUE ...]
                                    [--output benchmarks/results/emflow_mnist.md]

Protocol (emflow.md Sec. 4.2): pixels scaled to [0, 1]; the first `--rows` images of MNIST's training
split and the first `--test-rows` of its test split (the paper: the standard 60,000 / 10,000); each
pixel missing with probability r (MCAR; one training and one test mask per rate and seed, the same for
every model). Each model fits on the incomplete training images and imputes the incomplete test images,
which it never saw (the paper's test set "only goes through the re-imputation phase"). Table 2: RMSE
over the test set's missing pixels. Table 3: the accuracy of a LeNet trained on the complete training
set (`keraszoo.fid.load_lenet`, the PyTorch example's LeNet, cached after its first training) on each
model's imputed test set; the complete test set's accuracy is printed as the ceiling.

Models: the flows and `miwae` get images [N, 28, 28, 1] (the flows' initial fill is then the
nearest-observed-pixel sampling the paper uses); every other model one row of 784 pixels per image.
EMFlow runs with the paper's MNIST settings (`MODEL_DEFAULTS`: alpha 5e8, a super-batch of 12 batches of
256 = 3,072 rows, the paper's "size of 3000"); everything else at the zoo's defaults unless `--set`.
`--iterations` sets the training steps of every deep model. ± is the sample standard deviation over
`--seeds` (with n beside it).

Every size is a flag: a reduced CPU run and the paper's protocol are the same command.
"""
import argparse
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

#: the paper's MNIST settings for EMFlow (Sec. 4.2), applied before --set
MODEL_DEFAULTS = {"emflow": {"alpha": 5e8, "super_batches": 12}}
RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: emflow.md Tables 2 and 3, MNIST rows: {model: (RMSE per rate in RATES, accuracy per rate)}
PAPER = {
    "mcflow": ((.0835, .0879, .0894, .0941, .1027, .1119, .1251, .1463, .2020),
               (.9894, .9878, .9878, .9871, .9840, .9806, .9659, .9331, .7732)),
    "emflow": ((.0726, .0775, .0832, .0901, .0986, .1100, .1260, .1504, .1951),
               (.9894, .9884, .9882, .9878, .9860, .9824, .9696, .9253, .7502)),
}
DEFAULT_MODELS = "emflow,mcflow,mean,knn,gain,miwae"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.emflow_mnist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated registered imputers (default {DEFAULT_MODELS})")
    parser.add_argument("--rows", type=int, default=60000, help="first N training images (default all 60000)")
    parser.add_argument("--test-rows", type=int, default=10000, help="first N test images (default all 10000)")
    parser.add_argument("--miss-rates", default=",".join(f"{r:g}" for r in RATES), help="comma-separated MCAR rates in (0, 1)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 .. S-1 (masks and models)")
    parser.add_argument("--iterations", type=int, default=None, help="training steps of every deep model (default: each model's own)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE", help="override a model's parameter")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $KERASZOO_DATA_DIR)")
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "emflow_mnist.md"))
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    from keraszoo.registry import get_model_class, list_models

    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for model in args.models:
        if model not in list_models() or getattr(get_model_class(model), "task", "impute") != "impute":
            parser.error(f"--models: {model!r} is not a registered imputer")
    try:
        args.miss_rates = [float(r) for r in args.miss_rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--miss-rates expects comma-separated numbers, got {args.miss_rates!r}")
    if not args.miss_rates or not all(0.0 < r < 1.0 for r in args.miss_rates):
        parser.error("--miss-rates must each be in (0, 1)")
    for flag, value in (("--rows", args.rows), ("--test-rows", args.test_rows), ("--seeds", args.seeds)):
        if value < 1:
            parser.error(f"{flag} must be positive")
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be positive")
    from training.benchmark import parse_overrides

    overrides = parse_overrides(parser, args.set, args.models)
    args.params = {m: {**MODEL_DEFAULTS.get(m, {}), **overrides[m]} for m in args.models}
    return args


def load_mnist(args):
    """(training images, test images, test labels): [N, 28, 28] floats in [0, 1], the first rows of each split."""
    from keraszoo.data import load_dataset

    mnist = load_dataset("mnist", data_dir=args.data_dir)
    train = mnist.images[: args.rows].astype(np.float64) / 255.0
    test = mnist.test_images[: args.test_rows].astype(np.float64) / 255.0
    return train, test, np.asarray(mnist.test_labels)[: args.test_rows]


def masks(shape_train, shape_test, rate, seed):
    """MCAR masks (1 = observed) of the training and test images for one rate and seed."""
    rng = np.random.default_rng([seed, int(round(rate * 1000))])
    return (rng.random(shape_train) >= rate).astype(np.float64), (rng.random(shape_test) >= rate).astype(np.float64)


def impute_test(model, params, train, train_mask, test, test_mask, seed, iterations):
    """(imputed test images [N, 28, 28], fit seconds): `model` fitted on the incomplete training images."""
    from keraszoo.registry import is_deep
    from keraszoo.sklearn import ZooImputer
    from training.benchmark import seed_deep_model, seeded_params, takes_images

    params = seeded_params(model, params, seed)
    if iterations is not None and is_deep(model):
        params["iterations"] = iterations
    images = takes_images(model)
    shape = (lambda a: a[..., None]) if images else (lambda a: a.reshape(len(a), -1))
    imputer = ZooImputer(model, **params)
    seed_deep_model(model, seed)
    start = time.perf_counter()
    imputer.fit(shape(np.where(train_mask > 0, train, np.nan)))
    seconds = time.perf_counter() - start
    imputed = np.asarray(imputer.transform(shape(np.where(test_mask > 0, test, np.nan))), dtype=np.float64)
    return imputed.reshape(test.shape), seconds


def missing_rmse(truth, imputed, mask):
    missing = mask == 0
    return float(np.sqrt(np.mean((imputed[missing] - truth[missing]) ** 2)))


def run(args, log=print):
    """[{model, rate, seed, rmse, accuracy, fit_seconds}] and the complete test set's LeNet accuracy."""
    from keraszoo.fid import lenet_accuracy, load_lenet

    train, test, labels = load_mnist(args)
    lenet = load_lenet(data_dir=args.data_dir)
    ceiling = lenet_accuracy(lenet, test, labels)
    records = []
    for seed in range(args.seeds):
        for rate in args.miss_rates:
            train_mask, test_mask = masks(train.shape, test.shape, rate, seed)
            for model in args.models:
                imputed, seconds = impute_test(model, args.params[model], train, train_mask, test, test_mask, seed, args.iterations)
                if not np.array_equal(imputed[test_mask > 0], test[test_mask > 0]):
                    raise AssertionError(f"{model} changed observed pixels")  # the contract: never expected
                record = {"model": model, "rate": rate, "seed": seed, "rmse": missing_rmse(test, imputed, test_mask),
                          "accuracy": lenet_accuracy(lenet, np.clip(imputed, 0.0, 1.0), labels), "fit_seconds": seconds}
                records.append(record)
                log(f"seed {seed} rate {rate:g} {model}: RMSE {record['rmse']:.4f}, LeNet accuracy {record['accuracy']:.4f} ({seconds:.0f} s)")
    return records, ceiling


def _cell(values):
    values = np.asarray(values, float)
    if len(values) == 1:
        return f"{values[0]:.4f} (n=1)"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n={len(values)})"


def format_markdown(args, records, ceiling, command, machine, seconds):
    rates = args.miss_rates
    header = "| model | " + " | ".join(f"{r:g}" for r in rates) + " |"
    rule = "|---|" + "---|" * len(rates)

    def table(key, paper_index):
        lines = [header, rule]
        for model in args.models:
            cells = [_cell([r[key] for r in records if r["model"] == model and r["rate"] == rate]) for rate in rates]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
            if model in PAPER:
                published = dict(zip(RATES, PAPER[model][paper_index]))
                lines.append(f"| {model} (paper) | " + " | ".join(f"{published[r]:.4f}" if r in published else "—" for r in rates) + " |")
        return lines

    times = {m: np.mean([r["fit_seconds"] for r in records if r["model"] == m]) for m in args.models}
    lines = [
        "# EMFlow on MNIST: Table 2 (RMSE) and Table 3 (LeNet accuracy on the imputed test set)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine}. Total wall time: {seconds / 60:.1f} min.",
        "",
        f"Protocol: {args.rows} training and {args.test_rows} test images of MNIST (the paper: 60,000 / 10,000), pixels in [0, 1]; "
        f"MCAR per pixel at each rate, one mask per rate and seed shared by every model; seeds 0..{args.seeds - 1}. Each model fits on "
        "the incomplete training images and imputes the unseen incomplete test images; RMSE over their missing pixels. The LeNet "
        "(`keraszoo.fid.load_lenet`) was trained on the complete training set; its accuracy on the complete test images is "
        f"**{ceiling:.4f}**. Parameters: {({m: p for m, p in args.params.items() if p}) or 'the defaults'}"
        + (f"; every deep model {args.iterations} steps" if args.iterations else "") + ".",
        "",
        "## Table 2: RMSE over the missing test pixels (lower is better)",
        "",
        *table("rmse", 0),
        "",
        "## Table 3: LeNet accuracy on the imputed test images (higher is better)",
        "",
        *table("accuracy", 1),
        "",
        "Mean fit time (s): " + ", ".join(f"{m} {t:.0f}" for m, t in times.items()) + ".",
        "",
        f"Per-run numbers: [`{os.path.basename(_csv_path(args.output))}`]({os.path.basename(_csv_path(args.output))}).",
        "",
    ]
    return "\n".join(lines)


def _csv_path(output):
    return os.path.splitext(output)[0] + ".csv"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose="--verbose" in argv)
    args = parse_args(argv)
    from training.benchmark import machine_description

    start = time.perf_counter()
    records, ceiling = run(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(_csv_path(args.output), "w") as f:
        f.write("model,rate,seed,rmse,accuracy,fit_seconds\n")
        for r in records:
            f.write(f"{r['model']},{r['rate']:g},{r['seed']},{r['rmse']:.6f},{r['accuracy']:.6f},{r['fit_seconds']:.2f}\n")
    command = "python -m training.emflow_mnist " + " ".join(shlex.quote(a) for a in argv)
    with open(args.output, "w") as f:
        f.write(format_markdown(args, records, ceiling, command, machine_description(), time.perf_counter() - start))
    print(f"written to {args.output}", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
