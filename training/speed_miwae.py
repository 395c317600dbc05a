"""MIWAE speed: training steps/s and single-imputation rows/s at L = 1,000 and 10,000, with peak memory,
beside a PyTorch MIWAE of the same size on the same machine, in one run.

    python -m training.speed_miwae [--steps 2000] [--batch-size 64] [--torch-python PATH] [--threads 2]

Data: scikit-learn's breast cancer (569 x 30), min-max scaled, 50% MCAR (the authors' notebook setting).
Model: MIWAE's defaults (the notebook's sizes: d = 10, widths 128, Student-t, learned imputation
constant, K = 20). The PyTorch side is `benchmarks/torch_miwae.py` (the same networks, bound and
chunked importance sampling, written for this comparison), run by `--torch-python` (an interpreter with
torch; default this one, skipped with a message if it has none).

Like with like: both train on random batches of the same size for the same number of timed steps after
200 warm-up steps, on `--threads` threads (TensorFlow's intra- and inter-op pools; `torch.set_num_threads`).
PyTorch runs one step per Python call; the zoo is timed at 1 step per `tf.function` call (the same
thing) and at its default `steps_per_execution` (what `fit_arrays` uses). Imputation: both impute all
rows, the same number of rows per call (the zoo's `rows_per_chunk()`), L draws 100 at a time. Peak
memory is the rise of the process's peak resident set (Linux `VmHWM`, reset before each imputation)
over its resident set just before: what one imputation call adds, not the interpreter and library.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_SCRIPT = os.path.join(ROOT, "benchmarks", "torch_miwae.py")
SAMPLE_COUNTS = (1000, 10000)


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def breast_half_missing(seed=0):
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data
    x = ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32)
    mask = (np.random.default_rng(seed).random(x.shape) >= 0.5).astype(np.float32)
    return x, mask


def zoo_timings(x, mask, steps, batch_size):
    import tensorflow as tf

    from keraszoo.models.miwae import MIWAE

    report = {"tensorflow": tf.__version__}
    trained = None
    for label, per_call in (("1 step per call", 1), ("default steps per call", None)):
        model = MIWAE(seed=0)
        model.build((None, x.shape[1]))
        if per_call is not None:
            model.compile_default(steps_per_execution=per_call)
        model.fit_arrays(x, mask, iterations=200, batch_size=batch_size)  # warm-up: tracing, first steps
        before = int(model.bound_optimizer.iterations)
        start = time.perf_counter()
        model.fit_arrays(x, mask, iterations=steps, batch_size=batch_size)
        seconds = time.perf_counter() - start
        ran = int(model.bound_optimizer.iterations) - before
        report[f"train_steps_per_second ({label})"] = ran / seconds
        report[f"steps per call ({label})"] = int(model.steps_per_execution)
        trained = model
    report["rows_per_call"] = {}
    for samples in SAMPLE_COUNTS:
        model = MIWAE(seed=0, imputation_samples=samples)
        model.build((None, x.shape[1]))
        model.set_weights(trained.get_weights())
        before = _reset_peak()
        model.impute(x, mask)  # tracing for this shape (not timed)
        report[f"first_call_peak_extra_mib_L{samples}"] = _status("VmHWM") - before
        report[f"memory_hint_mib_L{samples}"] = model.values_per_row() * min(len(x), model.rows_per_chunk()) * 4 / 2**20
        rows_per_call = model.rows_per_chunk()
        before = _reset_peak()
        start = time.perf_counter()
        model.impute(x, mask)
        seconds = time.perf_counter() - start
        report[f"impute_rows_per_second_L{samples}"] = len(x) / seconds
        report[f"impute_peak_extra_mib_L{samples}"] = _status("VmHWM") - before
        report["rows_per_call"][samples] = rows_per_call
    return report


def torch_timings(python, data_path, steps, batch_size, threads, rows_per_call):
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    done = subprocess.run(
        [python, TORCH_SCRIPT, "--data", data_path, "--steps", str(steps), "--batch-size", str(batch_size), "--threads", str(threads),
         "--rows-per-call", str(rows_per_call), "--imputation-samples", ",".join(str(s) for s in SAMPLE_COUNTS)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.speed_miwae", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed training steps of each run (default 2000)")
    parser.add_argument("--batch-size", type=int, default=64, help="default 64")
    parser.add_argument("--threads", type=int, default=2, help="threads of each framework (default 2)")
    parser.add_argument("--torch-python", default=sys.executable, help="an interpreter with torch for the PyTorch side (default: this one)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    x, mask = breast_half_missing()
    zoo = zoo_timings(x, mask, args.steps, args.batch_size)
    rows_per_call = min(zoo["rows_per_call"].values())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, x=np.where(mask == 1, x, np.nan), mask=mask)
        torch = torch_timings(args.torch_python, path, args.steps, args.batch_size, args.threads, rows_per_call)
    print(f"MIWAE on breast cancer (569 x 30, 50% MCAR), batch {args.batch_size}, {args.steps} timed steps, {args.threads} threads, "
          f"{os.cpu_count()} cores; imputation of all rows, {rows_per_call} rows per call")
    print(f"zoo (TensorFlow {zoo['tensorflow']}):")
    for key, value in zoo.items():
        if key not in ("tensorflow", "rows_per_call"):
            print(f"  {key}: {value:.1f}")
    if torch is None:
        print(f"PyTorch: not installed in {args.torch_python} (pass --torch-python): skipped")
        return {"zoo": zoo, "torch": None}
    print(f"PyTorch {torch['torch']}:")
    for key, value in torch.items():
        if key not in ("torch", "threads"):
            print(f"  {key}: {value:.1f}")
    print("zoo / PyTorch:")
    print(f"  training steps/s, both at 1 step per call: {zoo['train_steps_per_second (1 step per call)'] / torch['train_steps_per_second']:.2f}")
    print(f"  training steps/s, zoo at its default steps per call: {zoo['train_steps_per_second (default steps per call)'] / torch['train_steps_per_second']:.2f}")
    for samples in SAMPLE_COUNTS:
        ratio = zoo[f"impute_rows_per_second_L{samples}"] / torch[f"impute_rows_per_second_L{samples}"]
        print(f"  imputation rows/s at L = {samples}: {ratio:.2f} (target >= 1: {'met' if ratio >= 1 else 'missed'})")
    return {"zoo": zoo, "torch": torch}


if __name__ == "__main__":
    main()
