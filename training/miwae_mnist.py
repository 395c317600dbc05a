"""miwae.md's binarised-MNIST experiments: Fig. 1 left, Fig. 1 right and Table 1, in one run.

    python -m training.miwae_mnist [--rows 50000] [--test-rows 10000] [--seeds 1] [--iterations 100000]
                                   [--parts fig1-left,fig1-right,table1] [--set miwae.param=value ...]
                                   [--output benchmarks/results/miwae_mnist.md]

Data (miwae.md Sec. 3: "the static binarisation of MNIST (with 50% of the pixels missing uniformly at
random)"). Larochelle's binarised files are not shipped with the zoo's data; we build a static
binarisation the same way, once: each pixel is 1 with probability intensity / 255, drawn with the fixed
seed `BINARISATION_SEED` (the training images; `BINARISATION_SEED + 1` the test images): the same images
in every run and for every model. Training rows are the first
`--rows` of MNIST's training split (the reproduction's 50,000), the test rows the first `--test-rows` of its
test split. Each pixel is missing with probability `--miss-rate` (MCAR, one training and one test mask
per seed, the same for every model).

Models: the zoo's `miwae` on images (5x5 stride-2 convolutions; the paper's "architecture of Salimans et
al." is not given), `observation="bernoulli"`, with the settings of federicobergamin/MIWAE-PyTorch, the
best public reproduction: latent 50, Adam 3e-4, batch 32. Four variants (`VARIANTS`): missIWAE (K = 50)
and missVAE (K = 1), each with the zero imputation function (the paper's) and with the learned constant
(the notebooks'; the paper's other arm is an oracle, which has no use on real incomplete data).

* fig1-left: the test log-likelihood of each variant, estimated by eq. 3 with `--ll-samples` importance
  samples, mean over the first `--ll-rows` test images, in nats: log p(x) of the complete test images (the paper compares it with a
  VAE trained on complete data, so we read it as the whole image's), and beside it log p(x°) of their
  observed pixels under the test mask.
* fig1-right: single-imputation accuracy (the imputed probability thresholded at 0.5, against the
  binarised truth, over the missing pixels) of the first `--impute-rows` training images as a function
  of L (`--sweep`), for missIWAE and missVAE (zero imputation), against MissForest on the same rows.
* table1: the zoo's `cnn` (miwae.md: "a two-layer convolutional network ... similar to the dropout one of
  Wan et al., 2013 and model selection is done using early stopping") trained on the training images
  completed by zero, MissForest, missIWAE's single imputation (L = `--imputation-samples`) and missIWAE's
  `--draws` multiple imputations (all draws stacked: an epoch passes over every imputed set, the
  paper's "data augmentation" reading), and on the complete images; tested on the complete binarised
  test images. Early stopping (our choice of details): the last 10% of the training rows, completed the
  same way, are the validation set; the weights of the best validation cross-entropy over at most
  `--classifier-epochs` epochs are kept, stopping after 3 epochs without improvement. Over
  `--classifier-seeds` seeds per data seed; ± is the sample standard deviation.

Memory: Table 1's rows are completed one at a time. The multiple-imputation row holds `--draws` x
`--rows` completed images (20 x 50,000 x 784 float32 values: 3.1 GB), an all-ones mask as large, and
`fit_arrays`' checked copies of both and TensorFlow's of its batches' source: plan for about 15 GB of
memory at the full size.

Cost measured on 2 CPU cores (2026-12-02): a missIWAE step (K = 50, batch 32) takes 0.52 s and a missVAE
step 0.024 s; importance sampling runs about 4,000 (image, sample) pairs a second. So 10,000 K = 50
steps are 1.4 h, and Table 1's L = 10,000 over 50,000 images about 35 h: a GPU's work.

The paper's full protocol is hours on a GPU: 500 epochs of MIWAE, L = 10,000 over 50,000 images, 10
classifier seeds. Every size is a flag, so a reduced CPU run and the full one are the same command.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

BINARISATION_SEED = 0
PARTS = ("fig1-left", "fig1-right", "table1")
#: label -> MIWAE parameters of Fig. 1's variants.
VARIANTS = {
    "missiwae-zero": {"samples": 50, "imputation": "zero"},
    "missiwae-learned": {"samples": 50, "imputation": "learned"},
    "missvae-zero": {"samples": 1, "imputation": "zero"},
    "missvae-learned": {"samples": 1, "imputation": "learned"},
}
#: the MIWAE settings every variant shares (federicobergamin/MIWAE-PyTorch's; `--set miwae.param=value`).
MIWAE_PARAMS = {"observation": "bernoulli", "latent_dim": 50}
TABLE_ROWS = ("zero", "missforest", "missiwae-single", "missiwae-multiple", "complete")
PAPER_TABLE1 = {  # miwae.md Table 1: test accuracy, cross-entropy (means of 10 classifier seeds)
    "zero": (0.973880, 0.100334),
    "missforest": (0.980490, 0.064458),
    "missiwae-single": (0.984730, 0.051013),
    "missiwae-multiple": (0.986830, 0.050900),
    "complete": (0.986630, 0.046384),
}
PATIENCE = 3
#: parameters the runner sets itself, which `--set` may not change (why, for the error message).
RESERVED = {
    "miwae": {"samples": "K is each variant's", "imputation": "each variant's", "seed": "the data seed", "imputation_samples": "--sweep and --imputation-samples"},
    "missforest": {"random_state": "the data seed"},
    "cnn": {"seed": "the classifier seeds", "n_classes": "MNIST's 10"},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.miwae_mnist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated among: {', '.join(PARTS)}")
    parser.add_argument("--rows", type=int, default=50000, help="first N training images (default 50000, the reproduction's split)")
    parser.add_argument("--test-rows", type=int, default=10000, help="first N test images")
    parser.add_argument("--miss-rate", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=1, help="data seeds (masks and MIWAE's initialisation)")
    parser.add_argument("--iterations", type=int, default=100000, help="MIWAE training steps of each variant")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--ll-samples", type=int, default=5000, help="importance samples of the held-out log-likelihood")
    parser.add_argument("--ll-rows", type=int, default=None, help="first N test images Fig. 1 left scores (default: all --test-rows)")
    parser.add_argument("--sweep", default="1,10,100,1000,10000", help="Fig. 1 right's values of L")
    parser.add_argument("--impute-rows", type=int, default=1000, help="training images Fig. 1 right imputes (MissForest's cost)")
    parser.add_argument("--imputation-samples", type=int, default=10000, help="L of Table 1's single imputation")
    parser.add_argument("--draws", type=int, default=20, help="Table 1's multiple imputations")
    parser.add_argument("--table-rows", default=",".join(TABLE_ROWS), help=f"Table 1's rows among: {', '.join(TABLE_ROWS)}")
    parser.add_argument("--classifier-seeds", type=int, default=3)
    parser.add_argument("--classifier-epochs", type=int, default=30)
    parser.add_argument("--classifier-batch-size", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.param=value", help="a parameter of miwae, missforest or cnn")
    parser.add_argument("--output", default=None, help="markdown results file (and .csv beside it)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    args.part_list = _names(parser, args.parts, PARTS, "--parts")
    args.table_list = _names(parser, args.table_rows, TABLE_ROWS, "--table-rows")
    try:
        args.sweep_list = [int(v) for v in args.sweep.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--sweep takes comma-separated integers, got {args.sweep!r}")
    for name in ("rows", "test_rows", "seeds", "iterations", "batch_size", "ll_samples", "impute_rows", "imputation_samples",
                 "draws", "classifier_seeds", "classifier_epochs", "classifier_batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if not args.sweep_list or min(args.sweep_list) < 1:
        parser.error("--sweep needs positive values of L")
    if not 0 < args.miss_rate < 1:
        parser.error("--miss-rate must be in (0, 1)")
    if args.rows < 2:
        parser.error("--rows must be at least 2 (the last tenth, at least one row, validates Table 1's classifier)")
    if args.classifier_seeds > 10_000:
        parser.error("--classifier-seeds must be at most 10000 (classifier seeds are data seed * 10000 + index)")
    if args.impute_rows > args.rows:
        parser.error("--impute-rows must be at most --rows")
    if args.ll_rows is None:
        args.ll_rows = args.test_rows
    elif not 1 <= args.ll_rows <= args.test_rows:
        parser.error("--ll-rows must be between 1 and --test-rows")
    from training.benchmark import parse_overrides

    args.overrides = parse_overrides(parser, args.set, ("miwae", "missforest", "cnn"), among="miwae, missforest, cnn")
    for model, keys in RESERVED.items():
        for key in sorted(set(args.overrides[model]) & set(keys)):
            parser.error(f"--set {model}.{key}: set by the runner ({keys[key]})")
    return args


def _names(parser, text, valid, flag):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        parser.error(f"{flag}: unknown or no name(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return names


def binarise(images, seed=BINARISATION_SEED):
    """A static binarisation: each pixel 1 with probability intensity / 255, drawn once with `seed`. The
    uniform draws run in row order, so the first N images binarise the same alone as among all."""
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape) < images / 255.0).astype(np.float32)


def needed_variants(args):
    needed = set()
    if "fig1-left" in args.part_list:
        needed |= set(VARIANTS)
    if "fig1-right" in args.part_list:
        needed |= {"missiwae-zero", "missvae-zero"}
    if "table1" in args.part_list and {"missiwae-single", "missiwae-multiple"} & set(args.table_list):
        needed.add("missiwae-zero")
    return [label for label in VARIANTS if label in needed]


def train_variant(label, images, mask, seed, args):
    from keraszoo.models.miwae import MIWAE

    params = {**MIWAE_PARAMS, **VARIANTS[label], **args.overrides["miwae"], "seed": seed}
    model = MIWAE(**params)
    start = time.perf_counter()
    model.fit_arrays(images[..., None], mask[..., None], iterations=args.iterations, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, seed=seed)
    return model, time.perf_counter() - start


def with_imputation_samples(model, samples):
    """The same trained MIWAE imputing with L = `samples` (L is fixed in its traced functions)."""
    clone = type(model).from_config({**model.get_config(), "imputation_samples": int(samples)})
    clone.build((None,) + tuple(model.example_shape))
    clone.set_weights(model.get_weights())
    return clone


def imputation_accuracy(completed, truth, mask):
    """Share of the missing pixels whose completed value, thresholded at 0.5, equals the binary truth."""
    missing = mask == 0
    return float(np.mean((completed[missing] > 0.5) == (truth[missing] > 0.5)))


def missforest_complete(images, mask, args, seed):
    """MissForest on the images as rows of pixels. A pixel missing in every row has nothing to learn
    from: it is given the background value 0 before the forest runs (and is scored like any other)."""
    from keraszoo.sklearn import ZooImputer

    params = {**args.overrides["missforest"], "random_state": seed}
    flat = np.where(mask == 1, images, np.nan).reshape(len(images), -1)
    flat[:, np.isnan(flat).all(axis=0)] = 0.0
    start = time.perf_counter()
    completed = np.asarray(ZooImputer("missforest", **params).fit_transform(flat)).reshape(images.shape)
    return completed, time.perf_counter() - start


def probabilities(model, images, ones):
    return np.clip(np.asarray(model.predict_proba(images, ones)), 1e-12, 1.0)


def cross_entropy(p, labels):
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))


def early_stopping(images, labels):
    """A Keras callback: after each epoch (one pass) the cross-entropy on (images, labels); it keeps the
    best epoch's weights (`best_weights`, `best_epoch`) and stops `PATIENCE` epochs after it."""
    import keras

    class BestValidation(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ones = np.ones_like(images)
            self.best, self.best_weights, self.best_epoch = np.inf, None, 0

        def on_epoch_end(self, epoch, logs=None):
            loss = cross_entropy(probabilities(self.model, images, self.ones), labels)
            if not np.isfinite(loss):
                raise RuntimeError(f"cnn diverged: validation cross-entropy {loss} after epoch {epoch + 1}")
            if loss < self.best:
                self.best, self.best_weights, self.best_epoch = loss, self.model.get_weights(), epoch + 1
            elif epoch + 1 - self.best_epoch >= PATIENCE:
                self.model.stop_training = True

    return BestValidation()


def train_classifier(train, validation, test, seed, args):
    """(test accuracy, test cross-entropy, best epoch) of `cnn` with early stopping on `validation`.

    Each of train/validation/test is (images [N, 28, 28, 1], labels); the images are complete (their
    masks all ones). One `fit_arrays` call of at most `--classifier-epochs` passes."""
    from keraszoo.models.cnn import ConvClassifier

    images, labels = train
    stop = early_stopping(*validation)
    model = ConvClassifier(**{**args.overrides["cnn"], "n_classes": 10, "seed": seed})
    model.fit_arrays(images, np.ones_like(images), labels, epochs=args.classifier_epochs, batch_size=args.classifier_batch_size,
                     seed=seed, callbacks=[stop])
    model.set_weights(stop.best_weights)
    p = probabilities(model, test[0], np.ones_like(test[0]))
    return float(np.mean(p.argmax(axis=1) == test[1])), cross_entropy(p, test[1]), stop.best_epoch


def table1_training_set(row, truth, mask, imputer, args, seed):
    """The training images completed for one Table 1 row, [n, 28, 28] ([draws, n, 28, 28] for the
    multiple imputation). One row at a time, so that one completed copy is held at once. `imputer` is
    missIWAE (zero imputation) with L = `--imputation-samples`, or None when no missIWAE row is asked for."""
    if row == "zero":
        return truth * mask
    if row == "complete":
        return truth
    if row == "missforest":
        return missforest_complete(truth, mask, args, seed)[0]
    if row == "missiwae-single":
        return np.asarray(imputer.impute(truth[..., None], mask[..., None]))[..., 0]
    return np.asarray(imputer.sample_imputations(truth[..., None], mask[..., None], args.draws))[..., 0]


def split_for_classifier(completed, labels, n_val):
    """((training images [.., 28, 28, 1], labels), (validation images, labels)): the last `n_val` rows
    validate. For the multiple imputation ([draws, n, 28, 28]) every draw of each part, draw after draw,
    with the labels repeated in the same order."""
    if completed.ndim == 4:
        draws = len(completed)
        train = (completed[:, :-n_val].reshape(-1, *completed.shape[2:]), np.tile(labels[:-n_val], draws))
        validation = (completed[:, -n_val:].reshape(-1, *completed.shape[2:]), np.tile(labels[-n_val:], draws))
    else:
        train, validation = (completed[:-n_val], labels[:-n_val]), (completed[-n_val:], labels[-n_val:])
    return (train[0][..., None], train[1]), (validation[0][..., None], validation[1])


def run_seed(seed, truth, labels, test_truth, test_labels, args, log):
    from keraszoo.data.missingness import mcar_mask

    mask = mcar_mask(truth.shape, args.miss_rate, seed=1000 + 2 * seed).astype(np.float32)
    test_mask = mcar_mask(test_truth.shape, args.miss_rate, seed=1000 + 2 * seed + 1).astype(np.float32)
    records, models = [], {}
    for label in needed_variants(args):
        models[label], seconds = train_variant(label, truth, mask, seed, args)
        log(f"seed {seed}: {label} trained in {seconds:.0f} s")
        records.append({"part": "fit", "seed": seed, "model": label, "setting": "", "value": seconds, "extra": ""})
    if "fig1-left" in args.part_list:
        scored, scored_mask = test_truth[: args.ll_rows, ..., None], test_mask[: args.ll_rows, ..., None]
        for label in VARIANTS:
            whole = np.asarray(models[label].log_likelihood(scored, np.ones_like(scored), samples=args.ll_samples))
            observed = np.asarray(models[label].log_likelihood(scored, scored_mask, samples=args.ll_samples))
            records.append({"part": "fig1-left", "seed": seed, "model": label, "setting": args.ll_samples, "value": float(whole.mean()),
                            "extra": float(observed.mean())})
            log(f"seed {seed}: {label} test log-likelihood {whole.mean():.2f} nats (observed half: {observed.mean():.2f})")
    if "fig1-right" in args.part_list:
        n = args.impute_rows
        for label in ("missiwae-zero", "missvae-zero"):
            for samples in args.sweep_list:
                completed = np.asarray(with_imputation_samples(models[label], samples).impute(truth[:n, ..., None], mask[:n, ..., None]))[..., 0]
                accuracy = imputation_accuracy(completed, truth[:n], mask[:n])
                records.append({"part": "fig1-right", "seed": seed, "model": label, "setting": samples, "value": accuracy, "extra": ""})
                log(f"seed {seed}: {label} L={samples} accuracy {accuracy:.4f}")
        completed, seconds = missforest_complete(truth[:n], mask[:n], args, seed)
        accuracy = imputation_accuracy(completed, truth[:n], mask[:n])
        records.append({"part": "fig1-right", "seed": seed, "model": "missforest", "setting": "", "value": accuracy, "extra": seconds})
        log(f"seed {seed}: missforest accuracy {accuracy:.4f} ({seconds:.0f} s)")
    if "table1" in args.part_list:
        n_val = max(1, len(truth) // 10)
        imputer = with_imputation_samples(models["missiwae-zero"], args.imputation_samples) if "missiwae-zero" in models else None
        for row in args.table_list:
            start = time.perf_counter()
            train, validation = split_for_classifier(table1_training_set(row, truth, mask, imputer, args, seed), labels, n_val)
            log(f"seed {seed}: table 1 {row}: {len(train[0])} training images completed in {time.perf_counter() - start:.0f} s")
            for c in range(args.classifier_seeds):
                accuracy, entropy, epochs = train_classifier(train, validation, (test_truth[..., None], test_labels), seed * 10_000 + c, args)
                records.append({"part": "table1", "seed": seed, "model": row, "setting": c, "value": accuracy, "extra": entropy})
                log(f"seed {seed}: table 1 {row} classifier {c}: accuracy {accuracy:.4f}, cross-entropy {entropy:.4f} (best epoch {epochs})")
            del train, validation  # one row's completed images at a time
    return records


def _mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return f"{values.mean():.4f} (n=1)"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n={len(values)})"


def write_report(path, records, args, argv, seconds):
    import csv
    import shlex
    import sys

    from training.benchmark import machine_description

    with open(os.path.splitext(path)[0] + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["part", "seed", "model", "setting", "value", "extra"])
        writer.writeheader()
        writer.writerows(records)
    command = "python -m training.miwae_mnist " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    lines = [
        "# MIWAE on binarised MNIST (miwae.md Fig. 1 and Table 1)", "",
        f"Command: `{command}`", "",
        f"Machine: {machine_description()}. Total wall time: {seconds / 60:.1f} min.", "",
        f"Protocol (see `training/miwae_mnist.py`): static binarisation (seed {BINARISATION_SEED}) of the first {args.rows} training "
        f"and {args.test_rows} test images of MNIST; {args.miss_rate:.0%} of pixels MCAR; MIWAE {MIWAE_PARAMS} with "
        f"{args.overrides['miwae'] or 'no other changes'}, {args.iterations} steps at batch {args.batch_size}, Adam {args.learning_rate}; "
        f"data seeds 0..{args.seeds - 1}.", "",
    ]
    by = {}
    for r in records:
        by.setdefault((r["part"], r["model"], r["setting"] if r["part"] == "fig1-right" else ""), []).append(r)
    if "fig1-left" in args.part_list:
        lines += [f"## Fig. 1 left: test log-likelihood (nats per test image, mean over the first {args.ll_rows} test images, eq. 3 with K = {args.ll_samples})", "",
                  "| model | log p(x), complete test images (the paper's) | log p(x°), their observed pixels |", "|---|---|---|"]
        lines += [f"| {label} | {_mean_std([r['value'] for r in by[('fig1-left', label, '')]])} | "
                  f"{_mean_std([r['extra'] for r in by[('fig1-left', label, '')]])} |" for label in VARIANTS]
        lines.append("")
    if "fig1-right" in args.part_list:
        lines += [f"## Fig. 1 right: single-imputation accuracy of the missing pixels (first {args.impute_rows} training images)", "",
                  "| model | " + " | ".join(f"L = {s}" for s in args.sweep_list) + " |", "|---|" + "---|" * len(args.sweep_list)]
        for label in ("missiwae-zero", "missvae-zero"):
            lines.append(f"| {label} | " + " | ".join(_mean_std([r["value"] for r in by[("fig1-right", label, s)]]) for s in args.sweep_list) + " |")
        forest = by[("fig1-right", "missforest", "")]
        lines += [f"| missforest | {_mean_std([r['value'] for r in forest])} (any L) |" + " |" * (len(args.sweep_list) - 1), ""]
    if "table1" in args.part_list:
        lines += [f"## Table 1: `cnn` trained on completed training images, tested on the complete test images ({args.classifier_seeds} classifier seeds per data seed)", "",
                  "| training data | test accuracy | test cross-entropy | paper accuracy | paper cross-entropy |", "|---|---|---|---|---|"]
        for row in args.table_list:
            rs = by[("table1", row, "")]
            paper = PAPER_TABLE1[row]
            lines.append(f"| {row} | {_mean_std([r['value'] for r in rs])} | {_mean_std([r['extra'] for r in rs])} | {paper[0]:.4f} | {paper[1]:.4f} |")
        lines.append("")
    fits = [r for r in records if r["part"] == "fit"]
    if fits:
        lines += ["MIWAE training time (s, mean over seeds): " + ", ".join(
            f"{label} {np.mean([r['value'] for r in fits if r['model'] == label]):.0f}" for label in dict.fromkeys(r["model"] for r in fits)), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)
    from keraszoo.data import load_dataset

    mnist = load_dataset("mnist")
    # the first N rows of the binarisation of all images (the draws run in row order)
    truth = binarise(mnist.images[: args.rows])
    test_truth = binarise(mnist.test_images[: args.test_rows], seed=BINARISATION_SEED + 1)
    labels = mnist.labels.to_numpy()[: args.rows].astype(np.int32)
    test_labels = np.asarray(mnist.test_labels)[: args.test_rows].astype(np.int32)
    start = time.perf_counter()
    records = []
    for seed in range(args.seeds):
        records += run_seed(seed, truth, labels, test_truth, test_labels, args, log=lambda text: print(text, flush=True))
    if args.output:
        write_report(args.output, records, args, argv, time.perf_counter() - start)
        print(f"wrote {args.output}")
    return records


if __name__ == "__main__":
    main()
