"""misconv-supplement.md Table 1: MNIST accuracy of MisConv and its baselines under three kinds of holes.

    python -m training.misconv_mnist --seeds 3 --output benchmarks/results/misconv_mnist.md
    python -m training.misconv_mnist --train-rows 10000 --classifier-epochs 2 --dmfa-epochs 2 ...   (reduced, CPU)

Protocol, per task and seed (reference-implementations.md A1.3-A1.5):

* Tasks: `square` (a random 14x14 hole per image, a quarter of it), `trapezoid` (half of the image) and
  `noise` (3/4 of the pixels), from `keraszoo.data.missingness`; the training and the test images get
  holes of the task (seeded per split and seed).
* Models: `zero`, `mask`, `pc` (the registered `misconv_zero`, `misconv_mask`, `misconv_pc`); `knn`:
  the zoo's KNN imputer fitted on 5,000 incomplete training images (the authors' `inp_knn_5k`) imputes
  both splits (a pixel none of them observes gets 0), which `misconv_zero` then classifies as complete images; `wae`: the registered `wae`
  imputer (section 1.3; `--wae-epochs` 20), trained on the incomplete training images, likewise;
  `dmfa_mean` and `misconv`: the
  registered `misconv` with ``first_layer`` "dmfa_mean" / "misconv", each given the seed's DMFA frozen
  (`train_dmfa`: trained once per seed on the training images with square holes whatever the task,
  supplement section 2, with the square task's training holes); `gt`: `misconv_zero` trained and
  tested on complete images (the same for every task).
* Training: section 1.2 (batch 24, Adam 1e-3, `--classifier-epochs` 10); DMFA section 1.1 (batch 48,
  Adam 4e-5 (`--dmfa-learning-rate`), `--dmfa-epochs` 20, l = 4 factors, one component).
* Not run: the paper's ACFlow row (ACFlow is not in the zoo).
* Reported: the test accuracy after the last epoch (the rule of the authors' table, A1.5), mean ±
  sample standard deviation over seeds.
"""
import argparse
import functools
import gc
import os
import platform
import shlex
import sys
import time

import numpy as np

TASKS = ("square", "trapezoid", "noise")
MODELS = ("zero", "mask", "knn", "pc", "wae", "dmfa_mean", "misconv", "gt")
PAPER = {  # supplement Table 1 (one seed)
    "zero": (0.91, 0.891, 0.946),
    "mask": (0.926, 0.905, 0.703),
    "knn": (0.874, 0.854, 0.912),
    "pc": (0.920, 0.674, 0.804),
    "misconv": (0.931, 0.918, 0.966),
    "gt": (0.992, 0.992, 0.992),
}
KNN_ROWS = 5000


def task_mask(task, images, seed):
    from keraszoo.data.missingness import noise_mask, square_mask, trapezoid_mask

    make = {"square": square_mask, "trapezoid": trapezoid_mask, "noise": noise_mask}[task]
    return make(images, seed=seed).astype(np.float32)


def train_dmfa(seed, data, dmfa_steps, learning_rate, dmfa_params=None, log=print):
    """The DMFA's weights after `dmfa_steps` steps at batch 48 on the training images with square holes.

    The DMFA learns from square holes whatever the task (supplement section 2) and its holes are
    seeded like the square task's training holes, so one DMFA per seed serves all three tasks.
    """
    import keraszoo

    start = time.monotonic()
    train_x, train_y = data[0], data[1]
    model = keraszoo.get_model("misconv", n_classes=10, seed=seed, dmfa_steps=dmfa_steps, dmfa=dmfa_params)
    mask = task_mask("square", train_x, seed=1000 * seed + 1)
    model.fit_arrays(train_x, mask, train_y, iterations=dmfa_steps, batch_size=48, learning_rate={"dmfa_optimizer": learning_rate, "classifier_optimizer": 1e-3})
    log(f"  seed {seed} DMFA: {dmfa_steps} steps at learning rate {learning_rate:g} ({time.monotonic() - start:.0f} s)")
    return model.dmfa.get_weights()


def memory():
    """The process's resident memory now and at its peak, for the progress lines (Linux; '' elsewhere)."""
    try:
        import resource

        from serving.soak import rss_kb

        return f"RSS {rss_kb(os.getpid()) / 2**20:.1f} GB, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB"
    except (ImportError, TypeError):  # no resource module, or no /proc (rss_kb gives None)
        return ""


def run_task(task, seed, data, models, classifier_epochs, dmfa_weights=None, wae_epochs=20, dmfa_params=None, log=print):
    """{model: test accuracy after the last epoch} for one task and seed; `dmfa_weights()` gives the
    seed's trained DMFA (`train_dmfa`) for `misconv` and `dmfa_mean`."""
    import keraszoo

    train_x, train_y, test_x, test_y = data
    train_mask = task_mask(task, train_x, seed=1000 * seed + 1)
    test_mask = task_mask(task, test_x, seed=1000 * seed + 2)
    full_train, full_test = np.ones_like(train_x), np.ones_like(test_x)
    rows = len(train_x)
    results = {}

    def accuracy(model, x, mask):
        return float(np.mean(np.argmax(np.asarray(model.predict_proba(x, mask)), axis=1) == test_y))

    def classify(name, x, mask, tx, tmask):
        model = keraszoo.get_model(name, n_classes=10, seed=seed)
        model.fit_arrays(x, mask, train_y, epochs=classifier_epochs, batch_size=24)
        return accuracy(model, tx, tmask)

    for name in models:
        start = time.monotonic()
        if name in ("zero", "mask", "pc"):
            results[name] = classify(f"misconv_{name}", train_x, train_mask, test_x, test_mask)
        elif name == "gt":
            results[name] = classify("misconv_zero", train_x, full_train, test_x, full_test)
        elif name == "knn":
            from keraszoo.sklearn import ZooImputer

            incomplete = lambda x, m: np.where(m > 0, x, np.nan).reshape(len(x), -1)  # noqa: E731
            fitted = incomplete(train_x[:KNN_ROWS], train_mask[:KNN_ROWS])
            # pixels that no fitted image observes (the trapezoids' common centre: 14 of 784 in 5,000
            # images) have no neighbour value: they get 0, as scikit-learn's KNNImputer(keep_empty_features=True)
            seen = ~np.isnan(fitted).all(axis=0)
            knn = ZooImputer("knn").fit(fitted[:, seen])
            completed = []
            for x, m in ((train_x, train_mask), (test_x, test_mask)):
                filled = incomplete(x, m)
                filled[:, seen] = knn.transform(filled[:, seen])
                completed.append(np.nan_to_num(filled, nan=0.0).reshape(x.shape))
            results[name] = classify("misconv_zero", completed[0], full_train, completed[1], full_test)
        elif name == "wae":
            wae = keraszoo.get_model("wae", seed=seed)
            wae.fit_arrays(train_x, train_mask, epochs=wae_epochs, batch_size=128)
            completed = [np.asarray(wae.impute(x, m)) for x, m in ((train_x, train_mask), (test_x, test_mask))]
            results[name] = classify("misconv_zero", completed[0], full_train, completed[1], full_test)
        elif name in ("misconv", "dmfa_mean"):
            continue  # below, sharing one DMFA
        gc.collect()  # the finished model's graphs and arrays, before the next one allocates its own
        log(f"  {task} seed {seed} {name}: accuracy {results[name]:.4f} ({time.monotonic() - start:.0f} s; {memory()})")
    wanted = [m for m in ("misconv", "dmfa_mean") if m in models]
    for name in wanted:
        start = time.monotonic()
        model = keraszoo.get_model("misconv", n_classes=10, seed=seed, dmfa_steps=0, dmfa=dmfa_params, first_layer=name if name == "dmfa_mean" else "misconv")
        model.build((None,) + train_x.shape[1:])
        model.dmfa.set_weights(dmfa_weights())  # frozen: dmfa_steps=0 trains only the classifier
        model.fit_arrays(train_x, train_mask, train_y, epochs=classifier_epochs, batch_size=24)
        results[name] = accuracy(model, test_x, test_mask)
        del model
        gc.collect()
        log(f"  {task} seed {seed} {name}: accuracy {results[name]:.4f} ({time.monotonic() - start:.0f} s; {memory()})")
    return results


def protocol_key(args):
    """What must be equal for records to share a table: data sizes, epochs, learning rate, widths."""
    return (
        f"train {args.train_rows}, test {args.test_rows}, classifier epochs {args.classifier_epochs}, DMFA epochs {args.dmfa_epochs} "
        f"at {args.dmfa_learning_rate:g}, DMFA widths {args.dmfa_filters}, WAE epochs {args.wae_epochs}"
    )


def csv_path(output):
    return os.path.splitext(output)[0] + ".csv"


def previous_records(output, protocol):
    """The records an earlier run wrote beside `output`, if any; an error if they used another protocol."""
    import pandas as pd

    if not os.path.exists(csv_path(output)):
        return []
    frame = pd.read_csv(csv_path(output))
    other = sorted(set(frame["protocol"]) - {protocol})
    if other:
        raise SystemExit(f"{csv_path(output)} holds records of another protocol ({other[0]}), not {protocol}: use another --output")
    return frame.to_dict("records")


def markdown(records, elapsed, args):
    import pandas as pd
    import tensorflow as tf

    frame = pd.DataFrame(records)
    lines = [
        "# MisConv and its baselines on incomplete MNIST (misconv-supplement.md Table 1)",
        "",
        "Command" + ("s" if len({r["command"] for r in records}) > 1 else "") + ": "
        + "; then ".join(f"`{c}`" for c in dict.fromkeys(r["command"] for r in records))
        + f" (the last: {elapsed / 60:.1f} min).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.system()}. "
        f"Date: {time.strftime('%Y-%m-%d')}.",
        "",
        f"Protocol: see `training/misconv_mnist.py`'s docstring. This run: {args.train_rows} training and {args.test_rows} test images, "
        f"{args.classifier_epochs} classifier epochs, {args.dmfa_epochs} DMFA epochs at learning rate {args.dmfa_learning_rate:g}, seeds 0-{args.seeds - 1}"
        + f", {args.wae_epochs} WAE epochs"
        + (
            " (the paper's protocol: 60,000 / 10,000 images, 10 classifier epochs, 20 DMFA epochs at 4e-05, 20 WAE epochs)"
            if (args.train_rows, args.test_rows, args.classifier_epochs, args.dmfa_epochs, args.dmfa_learning_rate, args.wae_epochs) != (60000, 10000, 10, 20, 4e-5, 20)
            else ""
        )
        + (f", DMFA extractor widths {args.dmfa_filters} (section 1.1: 16,32,64,32)" if args.dmfa_filters != "16,32,64,32" else "")
        + ". Accuracy after the last epoch; ± is the sample standard deviation over seeds (n beside it). "
        "The paper's ACFlow row is omitted: ACFlow is not in the zoo.",
        "",
        "| model | " + " | ".join(TASKS) + " |",
        "|---|" + "---|" * len(TASKS),
    ]
    for model in [m for m in MODELS if m in set(frame["model"])]:
        cells = []
        for i, task in enumerate(TASKS):
            values = frame[(frame.model == model) & (frame.task == task)]["accuracy"]
            paper = PAPER.get(model, (None,) * 3)[i]
            if len(values) == 0:
                cells.append("")
                continue
            spread = f" ± {values.std(ddof=1):.4f}" if len(values) > 1 else ""
            cells.append(f"{values.mean():.4f}{spread} (n={len(values)})" + (f"; paper {paper}" if paper is not None else ""))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.misconv_mnist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=60000)
    parser.add_argument("--test-rows", type=int, default=10000)
    parser.add_argument("--classifier-epochs", type=int, default=10)
    parser.add_argument("--dmfa-epochs", type=int, default=20)
    parser.add_argument("--dmfa-learning-rate", type=float, default=4e-5)
    parser.add_argument("--dmfa-filters", default="16,32,64,32", help="the DMFA extractor's four widths (section 1.1's by default)")
    parser.add_argument("--wae-epochs", type=int, default=20)
    parser.add_argument("--output", default=None, help="the markdown table; its records go beside it as .csv")
    parser.add_argument("--resume", action="store_true", help="keep the records of the output's .csv (same protocol) and run only the missing ones")
    args = parser.parse_args(argv)
    if args.resume and not args.output:
        parser.error("--resume needs --output (the records are read from its .csv)")
    tasks, models = args.tasks.split(","), args.models.split(",")
    for value, known, what in ((tasks, TASKS, "task"), (models, MODELS, "model")):
        unknown = sorted(set(value) - set(known))
        if unknown:
            parser.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    from keraszoo.data import load_dataset

    mnist = load_dataset("mnist", download=os.environ.get("KERASZOO_OFFLINE") != "1")
    data = (
        (mnist.images[: args.train_rows, ..., None] / 255.0).astype(np.float32),
        mnist.labels.to_numpy()[: args.train_rows].astype(np.int32),
        (mnist.test_images[: args.test_rows, ..., None] / 255.0).astype(np.float32),
        np.asarray(mnist.test_labels)[: args.test_rows].astype(np.int32),
    )
    command = "python -m training.misconv_mnist " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    protocol = protocol_key(args)
    records = previous_records(args.output, protocol) if args.resume else []
    done = {(r["task"], r["seed"], r["model"]) for r in records}
    start = time.monotonic()
    dmfa_steps = args.dmfa_epochs * max(1, args.train_rows // 48)
    dmfa_params = {"filters": [int(f) for f in args.dmfa_filters.split(",")]}
    for seed in range(args.seeds):
        # the seed's DMFA, trained when a task first needs it
        seed_dmfa = functools.cache(functools.partial(train_dmfa, seed, data, dmfa_steps, args.dmfa_learning_rate, dmfa_params))

        for task in tasks:
            # gt does not depend on the task: trained with the first task, recorded for all
            todo = [m for m in models if not (m == "gt" and task != tasks[0]) and (task, seed, m) not in done]
            if not todo:
                continue
            for model, value in run_task(task, seed, data, todo, args.classifier_epochs, seed_dmfa, args.wae_epochs, dmfa_params).items():
                for t in (tasks if model == "gt" else [task]):
                    records.append({"task": t, "seed": seed, "model": model, "accuracy": value, "protocol": protocol, "command": command})
            if args.output:
                import pandas as pd

                pd.DataFrame(records).to_csv(csv_path(args.output), index=False)
                with open(args.output, "w") as f:
                    f.write(markdown(records, time.monotonic() - start, args))
    return records


if __name__ == "__main__":
    main()
