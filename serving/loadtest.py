"""Load test of the embedded server: latency and throughput over gRPC next to an in-process call.

    python -m serving.loadtest                                  # fits GAIN on breast cancer, serves it
    python -m serving.loadtest --model-base-path saved_models/serving --model gain_breast --clients 4

The server runs in its own process (as in production: its Python does not share a GIL with the
clients). For each batch size (default 1 and 256) it measures, in this order:

* ``in-process``: the exported signature called directly on the loaded SavedModel, one caller;
* ``grpc 1 client``: sequential `ImputeClient.impute` calls (what one user sees: request building,
  the network round trip, the server's work and decoding included);
* ``grpc N clients``: N threads, each with its own channel, sending as fast as they can.

It prints p50/p95/p99 latency in ms and rows/s for each, and the server's overhead two ways: in
latency (p50 of one gRPC client over p50 in-process) and in throughput (in-process rows/s over the
N clients' rows/s). It also times the floor that any request pays: ``grpc status``, sequential
`ImputeClient.status` calls (GetModelStatus: a round trip through the same client, channel and
server that runs no TensorFlow), so the report shows how much of the overhead is transport.
Targets on 2 cores (issue #4): p50 <= 2 ms for one row, >= 20,000 rows/s batched, overhead <= 1.5x.
"""
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np


def _percentiles(latencies):
    ms = np.asarray(latencies) * 1e3
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}


def measure(call, requests):
    """Latencies (s) of `requests` sequential calls, after a warm-up."""
    for _ in range(min(20, requests)):
        call()
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies


def measure_concurrent(make_call, clients, requests_per_client):
    """(latencies, wall seconds) of `clients` threads each making `requests_per_client` calls."""
    calls = [make_call() for _ in range(clients)]
    for call in calls:
        call()  # warm each channel
    latencies, lock, barrier = [], threading.Lock(), threading.Barrier(clients + 1)

    def worker(call):
        own = []
        barrier.wait()
        for _ in range(requests_per_client):
            start = time.perf_counter()
            call()
            own.append(time.perf_counter() - start)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


def fit_and_export(base_path):
    """GAIN fitted on scikit-learn's breast-cancer table (20% MCAR), exported as `gain_breast`."""
    from sklearn.datasets import load_breast_cancer

    from keraszoo.sklearn import ZooImputer
    from serving.export import export

    x = load_breast_cancer().data
    incomplete = np.where(np.random.default_rng(0).random(x.shape) < 0.2, np.nan, x)
    export(ZooImputer("gain", iterations=1000).fit(incomplete), base_path, "gain_breast", version=1)
    return incomplete


def main(argv=None, prog="python -m serving.loadtest"):
    from keraszoo.console import ArgumentParser, quiet_tensorflow

    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", help="folder of exported models (default: fit and export GAIN on breast cancer)")
    parser.add_argument("--model", default="gain_breast")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-sizes", default="1,256")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per measurement for batch 1")
    parser.add_argument("--rows-per-measurement", type=int, default=256_000, help="bounds the requests at large batches")
    parser.add_argument("--workers", type=int, default=8, help="server gRPC threads")
    parser.add_argument(
        "--tf-threads", default="0,0", metavar="INTER,INTRA", help="TensorFlow thread pools of the server AND the in-process call"
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and warnings")
    args = parser.parse_args(argv)

    quiet_tensorflow(verbose=args.verbose)  # before TensorFlow is imported
    import tensorflow as tf

    from serving.server import set_tf_threads

    try:  # the same TensorFlow threading for the in-process reference as for the server
        set_tf_threads(args.tf_threads)
    except (ValueError, RuntimeError) as err:
        print(f"in-process TensorFlow threading left as it is ({err})", file=sys.stderr)

    from serving.client import ImputeClient
    from serving.servables import version_number
    from serving.server import start_subprocess

    temporary = None
    if args.model_base_path is None:
        temporary = tempfile.TemporaryDirectory()
        base_path = temporary.name
        table = fit_and_export(base_path)
    else:
        base_path = args.model_base_path
        table = None
    versions = sorted(v for v in map(version_number, os.listdir(os.path.join(base_path, args.model))) if v is not None)
    signature = tf.saved_model.load(os.path.join(base_path, args.model, str(versions[-1]))).signatures["serving_default"]
    width = int(signature.structured_input_signature[1]["x"].shape[-1])
    if table is None:  # an arbitrary model: random rows in [0, 1] with 20% missing
        rng = np.random.default_rng(0)
        table = np.where(rng.random((4096, width)) < 0.2, np.nan, rng.random((4096, width)))
    table = np.resize(table, (max(4096, len(table)), width)).astype(np.float32)

    process, target, _ = start_subprocess(base_path, rest=False, extra_args=["--poll-seconds", "0", "--workers", str(args.workers), "--tf-threads", args.tf_threads])
    results = []
    try:
        with ImputeClient(target) as client:
            floor = _percentiles(measure(lambda: client.status(args.model), args.requests))
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            rows = table[:batch]
            requests = max(50, min(args.requests, args.rows_per_measurement // batch))
            x = tf.constant(rows)
            in_process = measure(lambda: signature(x=x)["imputed"].numpy(), requests)  # noqa: B023
            client = ImputeClient(target)
            one_client = measure(lambda: client.impute(args.model, rows), requests)  # noqa: B023
            client.close()
            per_client = max(10, requests // args.clients)

            def new_client_call(rows=rows):
                client = ImputeClient(target)  # one channel per client thread, as separate users would have
                return lambda: client.impute(args.model, rows)

            many, wall = measure_concurrent(new_client_call, args.clients, per_client)
            for label, latencies, seconds in (
                ("in-process", in_process, sum(in_process)),
                ("grpc 1 client", one_client, sum(one_client)),
                (f"grpc {args.clients} clients", many, wall),
            ):
                results.append({"batch": batch, "how": label, **_percentiles(latencies), "rows_per_s": len(latencies) * batch / seconds})
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
        if temporary is not None:
            temporary.cleanup()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; model {args.model} ({width} features); "
        f"TensorFlow threads (inter,intra) {args.tf_threads} in the server and in-process"
    )
    print(f"{'batch':>5} {'how':<16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'rows/s':>10}")
    for r in results:
        print(f"{r['batch']:>5} {r['how']:<16} {r['p50']:>8.3f} {r['p95']:>8.3f} {r['p99']:>8.3f} {r['rows_per_s']:>10.0f}")
    print(f"{'-':>5} {'grpc status':<16} {floor['p50']:>8.3f} {floor['p95']:>8.3f} {floor['p99']:>8.3f} {'-':>10}")
    for batch in sorted({r["batch"] for r in results}):
        rows = [r for r in results if r["batch"] == batch]
        print(
            f"batch {batch}: server overhead in latency (p50 of 1 gRPC client / p50 in-process) {rows[1]['p50'] / rows[0]['p50']:.2f}x, "
            f"in throughput (in-process rows/s / {args.clients} gRPC clients' rows/s) {rows[0]['rows_per_s'] / rows[2]['rows_per_s']:.2f}x; "
            f"transport floor (p50 of grpc status + p50 in-process) / p50 in-process {(floor['p50'] + rows[0]['p50']) / rows[0]['p50']:.2f}x"
        )
    return results


if __name__ == "__main__":
    main()
