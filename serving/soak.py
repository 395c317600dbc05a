"""Soak test of the embedded server: mixed good and bad requests from several clients, for a bounded time.

    python -m serving.soak                              # fits GAIN on breast cancer, 8 clients, 600 s
    python -m serving.soak --model-base-path saved_models/serving --model gain_breast --seconds 60

The server runs in its own process (`python -m serving.server`, gRPC and REST on 127.0.0.1, free
ports); `--clients` threads, each with its own gRPC channel and HTTP connection, send a seeded
random mix of requests to 127.0.0.1 only, until `--seconds` have passed or `--max-requests` were
sent, whichever comes first. Each request kind has the one answer it must get:

* good requests (gRPC Predict of 1-64 rows, by default signature, explicit version and
  `impute_with_mask`; REST predict in row and columnar format; model status, metadata, probes):
  OK / 200, and every imputation must equal the in-process call of the same SavedModel signature
  on the same rows (within `--rtol`/`--atol`) with every observed entry returned bit for bit;
  `multiple_imputation` draws are random, so only their shape and observed entries are checked;
* bad requests: wrong width, rank or dtype, unknown input key, model, version, label or signature,
  inf in `x`, NaN at an observed entry, a mask other than 0/1, an
  unknown output filter, a raw tensor of the wrong size, a tiny tensor declaring 10^8 rows, more
  rows than `--max-rows`, Classify; REST bad JSON, strings, inf, unknown model, unknown path (GET
  and POST with a body), a non-ASCII version, both "instances" and "inputs": each must get its expected status
  (INVALID_ARGUMENT / 400, NOT_FOUND / 404, RESOURCE_EXHAUSTED / 413, UNIMPLEMENTED).

A *wrong answer* is a good request whose imputation differs from the in-process result or whose
observed entries changed; an *unexpected status* is any request answered with another status than
its kind's (a transport error counts as one). The server's resident memory (VmRSS of
/proc/PID/status) is read before the first request, after a warm-up share of the run, every second
(peak), and at the end. Prints a summary (and returns it from `main`); exits 1 if there was any wrong
answer or unexpected status.
"""
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter

import numpy as np

#: request kinds that must succeed (the others must be refused with their own status)
GOOD_KINDS = frozenset(
    ("grpc_predict", "grpc_predict_version", "grpc_with_mask", "grpc_multiple", "grpc_status", "grpc_metadata")
    + ("rest_instances", "rest_columnar", "rest_status", "rest_metadata", "rest_probes", "rest_metrics")
)


def rss_kb(pid):
    """VmRSS of a process, in kB (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Reference:
    """The in-process SavedModel: expected imputations of the request pool."""

    def __init__(self, version_dir):
        import tensorflow as tf

        self._tf = tf
        self.loaded = tf.saved_model.load(version_dir)
        self.signatures = set(self.loaded.signatures.keys())
        self.width = int(self.loaded.signatures["serving_default"].structured_input_signature[1]["x"].shape[-1])

    def impute(self, rows):
        return self.loaded.signatures["serving_default"](x=self._tf.constant(rows))["imputed"].numpy()


def make_pool(reference, table, rng, size=64):
    """`size` good payloads (1-64 rows with NaN for missing) and their in-process imputations."""
    pool = []
    for i in range(size):
        rows = 1 if i % 4 == 0 else int(rng.integers(1, 65))
        start = int(rng.integers(0, len(table) - rows + 1))
        x = np.ascontiguousarray(table[start : start + rows], dtype=np.float32)
        pool.append((x, reference.impute(x)))
    return pool


class Soak:
    """The client side: request kinds, their expected answers, and the tallies."""

    def __init__(self, grpc_target, rest_url, model, version, reference, pool, max_rows, rtol, atol, exclude=(), only=()):
        self.grpc_target = grpc_target
        host_port = rest_url.split("//", 1)[1]
        self.rest_host, self.rest_port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])
        if self.rest_host != "127.0.0.1" or not grpc_target.startswith("127.0.0.1:"):
            raise ValueError(f"the soak only talks to 127.0.0.1, got {grpc_target} and {rest_url}")
        self.model, self.version = model, version
        self.reference, self.pool = reference, pool
        self.width = reference.width
        self.max_rows = max_rows
        self.rtol, self.atol = rtol, atol
        self.lock = threading.Lock()
        self.sent = Counter()
        self.wrong = Counter()
        self.unexpected = Counter()
        self.examples = []
        self.kinds = self._kinds()
        unknown = set(exclude) - set(self.kinds)
        if unknown:
            raise ValueError(f"unknown request kinds {sorted(unknown)}; kinds: {sorted(self.kinds)}")
        unknown = set(only) - set(self.kinds)
        if unknown:
            raise ValueError(f"unknown request kinds {sorted(unknown)}; kinds: {sorted(self.kinds)}")
        self.kinds = {kind: value for kind, value in self.kinds.items() if kind not in set(exclude) and (not only or kind in only)}

    # tallies -----------------------------------------------------------------------------------
    def _note(self, counter, kind, detail):
        with self.lock:
            counter[kind] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{kind}: {detail}")

    def _check_imputed(self, kind, x, expected, got):
        got = np.asarray(got, dtype=np.float32)
        if got.shape != expected.shape:
            return self._note(self.wrong, kind, f"shape {got.shape}, expected {expected.shape}")
        observed = ~np.isnan(x)
        if not np.array_equal(got[observed], x[observed]):
            return self._note(self.wrong, kind, "an observed entry changed")
        if not np.allclose(got, expected, rtol=self.rtol, atol=self.atol, equal_nan=False):
            diff = float(np.max(np.abs(got - expected)))
            return self._note(self.wrong, kind, f"differs from the in-process imputation (max |diff| {diff:.3g})")

    # request kinds ------------------------------------------------------------------------------
    def _kinds(self):
        """{kind: (weight, function(state, rng))}; bad kinds name their expected gRPC code or HTTP status."""
        import grpc
        from tensorflow_serving.apis import classification_pb2

        from serving.tensors import to_tensor_proto

        code = grpc.StatusCode
        width, model = self.width, self.model
        kinds = {}

        def good_payload(rng):
            return self.pool[rng.randrange(len(self.pool))]

        def predict(state, inputs, signature="serving_default", version=None, label=None, name=None, output_filter=()):
            from tensorflow_serving.apis import predict_pb2

            request = predict_pb2.PredictRequest()
            request.model_spec.name = model if name is None else name
            request.model_spec.signature_name = signature
            if version is not None:
                request.model_spec.version.value = version
            if label is not None:
                request.model_spec.version_label = label
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(value if not isinstance(value, np.ndarray) else to_tensor_proto(value))
            request.output_filter.extend(output_filter)
            return state.client.predictions.Predict(request, timeout=30)

        def expect_grpc(kind, expected, send):
            def run(state, rng):
                try:
                    send(state, rng)
                    got = code.OK
                    detail = "OK"
                except grpc.RpcError as err:
                    got, detail = err.code(), err.details()
                if got != expected:
                    self._note(self.unexpected, kind, f"expected {expected.name}, got {getattr(got, 'name', got)}: {str(detail)[:200]}")

            return run

        # good gRPC -----------------------------------------------------------------------------
        def grpc_good(kind, signature="serving_default", version=None):
            def run(state, rng):
                x, expected = good_payload(rng)
                inputs = {"x": x}
                if signature == "impute_with_mask":
                    mask = (~np.isnan(x)).astype(np.float32)
                    inputs = {"x": np.nan_to_num(x), "mask": mask}
                try:
                    response = predict(state, inputs, signature=signature, version=version)
                except grpc.RpcError as err:
                    return self._note(self.unexpected, kind, f"expected OK, got {err.code().name}: {err.details()[:200]}")
                from serving.tensors import to_numpy

                self._check_imputed(kind, x, expected, to_numpy(response.outputs["imputed"]))

            return run

        kinds["grpc_predict"] = (30, grpc_good("grpc_predict"))
        kinds["grpc_predict_version"] = (5, grpc_good("grpc_predict_version", version=self.version))
        if "impute_with_mask" in self.reference.signatures:
            kinds["grpc_with_mask"] = (8, grpc_good("grpc_with_mask", "impute_with_mask"))
        if "multiple_imputation" in self.reference.signatures:

            def grpc_multiple(state, rng):
                from serving.tensors import to_numpy

                x, _ = good_payload(rng)
                n = rng.randrange(1, 4)
                try:
                    response = predict(state, {"x": x, "n": np.asarray(n, np.int32)}, signature="multiple_imputation")
                except grpc.RpcError as err:
                    return self._note(self.unexpected, "grpc_multiple", f"expected OK, got {err.code().name}: {err.details()[:200]}")
                draws = to_numpy(response.outputs["imputations"])
                observed = ~np.isnan(x)
                if draws.shape != (n, *x.shape):
                    return self._note(self.wrong, "grpc_multiple", f"shape {draws.shape}, expected {(n, *x.shape)}")
                if not all(np.array_equal(draw[observed], x[observed]) for draw in draws) or not np.isfinite(draws).all():
                    self._note(self.wrong, "grpc_multiple", "an observed entry changed or a draw is not finite")

            kinds["grpc_multiple"] = (3, grpc_multiple)

        def grpc_status(state, rng):
            try:
                versions = state.client.status(model)
            except grpc.RpcError as err:
                return self._note(self.unexpected, "grpc_status", f"expected OK, got {err.code().name}")
            if (self.version, "AVAILABLE") not in versions:
                self._note(self.wrong, "grpc_status", f"status {versions} lacks version {self.version} AVAILABLE")

        kinds["grpc_status"] = (3, grpc_status)
        kinds["grpc_metadata"] = (2, expect_grpc("grpc_metadata", code.OK, lambda s, r: s.client.metadata(model)))

        # bad gRPC ------------------------------------------------------------------------------
        def tensor(content, shape, dtype_enum=None):
            from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

            proto = tensor_pb2.TensorProto(dtype=dtype_enum or types_pb2.DT_FLOAT)
            proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
            if isinstance(content, bytes):
                proto.tensor_content = content
            else:
                proto.float_val.extend(content)
            return proto

        def rows_of(rng, count=None):
            x, _ = good_payload(rng)
            return x if count is None else np.resize(x, (count, width)).astype(np.float32)

        bad_grpc = {
            "bad_width": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": np.zeros((2, width + 1), np.float32)})),
            "bad_rank": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": np.zeros((width,), np.float32)})),
            "bad_dtype_float64": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": rows_of(r).astype(np.float64)})),
            "bad_dtype_int32": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": np.zeros((1, width), np.int32)})),
            "bad_input_key": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"y": rows_of(r)})),
            "unknown_model": (code.NOT_FOUND, lambda s, r: predict(s, {"x": rows_of(r)}, name="no_such_model")),
            "unknown_version": (code.NOT_FOUND, lambda s, r: predict(s, {"x": rows_of(r)}, version=self.version + 1000)),
            "unknown_label": (code.NOT_FOUND, lambda s, r: predict(s, {"x": rows_of(r)}, label="no_such_label")),
            "unknown_signature": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": rows_of(r)}, signature="no_such_signature")),
            "unknown_output_filter": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": rows_of(r)}, output_filter=("nope",))),
            "inf_in_x": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": np.where(np.arange(width) == 0, np.inf, rows_of(r)).astype(np.float32)})),
            "wrong_content_size": (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": tensor(b"\0" * (4 * width - 4), (1, width))})),
            "huge_declared_shape": (code.RESOURCE_EXHAUSTED, lambda s, r: predict(s, {"x": tensor([1.0], (10**8, width))})),
            "too_many_rows": (code.RESOURCE_EXHAUSTED, lambda s, r: predict(s, {"x": rows_of(r, self.max_rows + 1)})),
            "classify": (code.UNIMPLEMENTED, lambda s, r: s.client.predictions.Classify(classification_pb2.ClassificationRequest(), timeout=30)),
        }
        if "impute_with_mask" in self.reference.signatures:

            def with_mask(x, mask):
                return lambda s, r: predict(s, {"x": x, "mask": mask}, signature="impute_with_mask")

            nan_observed = np.full((1, width), np.nan, np.float32)
            bad_grpc["nan_at_observed"] = (code.INVALID_ARGUMENT, with_mask(nan_observed, np.ones((1, width), np.float32)))
            bad_grpc["mask_not_binary"] = (code.INVALID_ARGUMENT, with_mask(np.zeros((1, width), np.float32), np.full((1, width), 0.5, np.float32)))
            bad_grpc["mask_missing"] = (code.INVALID_ARGUMENT, lambda s, r: predict(s, {"x": rows_of(r)}, signature="impute_with_mask"))
        for kind, (expected, send) in bad_grpc.items():
            kinds[kind] = (1, expect_grpc(kind, expected, send))

        # REST --------------------------------------------------------------------------------------
        path = f"/v1/models/{model}"

        def rest_good(kind, columnar):
            def run(state, rng):
                x, expected = good_payload(rng)
                values = [[None if np.isnan(v) else float(v) for v in row] for row in x]
                body = {"inputs": values} if columnar else {"instances": values}
                status, text = state.rest("POST", f"{path}:predict", json.dumps(body).encode())
                if status != 200:
                    return self._note(self.unexpected, kind, f"expected 200, got {status}: {text[:200]!r}")
                answer = json.loads(text)
                self._check_imputed(kind, x, expected, answer["outputs" if columnar else "predictions"])

            return run

        kinds["rest_instances"] = (10, rest_good("rest_instances", False))
        kinds["rest_columnar"] = (4, rest_good("rest_columnar", True))

        def rest_expect(kind, expected, method, target, body=None):
            def run(state, rng):
                status, text = state.rest(method, target, body)
                if status != expected:
                    self._note(self.unexpected, kind, f"expected {expected}, got {status}: {text[:200]!r}")

            return run

        one_row = [[0.5] * width]
        for kind, weight, expected, method, target, body in (
            ("rest_status", 2, 200, "GET", path, None),
            ("rest_metadata", 1, 200, "GET", f"{path}/metadata", None),
            ("rest_probes", 1, 200, "GET", "/readyz", None),
            ("rest_metrics", 1, 200, "GET", "/monitoring/prometheus/metrics", None),
            ("rest_bad_json", 1, 400, "POST", f"{path}:predict", b'{"instances": [[1.0, 2.0'),
            ("rest_not_json_object", 1, 400, "POST", f"{path}:predict", b"[1, 2, 3]"),
            ("rest_strings", 1, 400, "POST", f"{path}:predict", json.dumps({"instances": [["a"] * width]}).encode()),
            ("rest_wrong_width", 1, 400, "POST", f"{path}:predict", json.dumps({"instances": [[0.5] * (width + 1)]}).encode()),
            ("rest_inf", 1, 400, "POST", f"{path}:predict", ('{"instances": [[Infinity' + ", 0.5" * (width - 1) + "]]}").encode()),
            ("rest_both_formats", 1, 400, "POST", f"{path}:predict", json.dumps({"instances": one_row, "inputs": one_row}).encode()),
            ("rest_unknown_model", 1, 404, "POST", "/v1/models/no_such_model:predict", json.dumps({"instances": one_row}).encode()),
            ("rest_unknown_version", 1, 404, "POST", f"{path}/versions/{self.version + 1000}:predict", json.dumps({"instances": one_row}).encode()),
            ("rest_unicode_version", 1, 400, "POST", f"{path}/versions/%C2%B2:predict", json.dumps({"instances": one_row}).encode()),
            ("rest_unknown_path", 1, 404, "GET", "/v2/nothing/here", None),
            ("rest_unknown_path_post", 1, 404, "POST", "/v2/nothing:predict", json.dumps({"instances": one_row}).encode()),
            ("rest_unknown_signature", 1, 400, "POST", f"{path}:predict", json.dumps({"signature_name": "nope", "instances": one_row}).encode()),
        ):
            kinds[kind] = (weight, rest_expect(kind, expected, method, target, body))
        return kinds

    # clients ------------------------------------------------------------------------------------
    def client_loop(self, index, seed, deadline, max_requests, stop):
        state = _ClientState(self.grpc_target, self.rest_host, self.rest_port)
        rng = random.Random(seed * 1000 + index)
        names = list(self.kinds)
        weights = [self.kinds[name][0] for name in names]
        sent = Counter()
        try:
            for _ in range(max_requests):
                if time.monotonic() >= deadline or stop.is_set():
                    break
                kind = rng.choices(names, weights)[0]
                try:
                    self.kinds[kind][1](state, rng)
                except Exception as err:  # a transport error or a malformed answer: counted, the loop goes on
                    self._note(self.unexpected, kind, f"{type(err).__name__}: {str(err)[:200]}")
                    state.reset_rest()
                sent[kind] += 1
                if sum(sent.values()) >= 100:  # hand the counts over now and then, for the progress lines
                    with self.lock:
                        self.sent.update(sent)
                    sent.clear()
        finally:
            state.close()
            with self.lock:
                self.sent.update(sent)


class _ClientState:
    """One client's gRPC channel and HTTP connection (loopback only)."""

    def __init__(self, grpc_target, rest_host, rest_port):
        from serving.client import ImputeClient

        self.client = ImputeClient(grpc_target)
        self.rest_host, self.rest_port = rest_host, rest_port
        self.connection = None

    def rest(self, method, target, body=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.rest_host, self.rest_port, timeout=30)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, target, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read()
        if response.will_close:
            self.reset_rest()
        return response.status, text.decode("utf-8", "replace")

    def reset_rest(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def close(self):
        self.reset_rest()
        self.client.close()


def run_soak(base_path, model, seconds, clients=8, seed=0, max_requests=10**9, max_rows=1000, rtol=1e-5, atol=1e-5,
             warmup_share=0.1, extra_server_args=(), table=None, exclude=(), only=(), log=print):
    """Start a server on `base_path`, soak it, stop it; the summary dict (see `main`)."""
    from serving.servables import version_number
    from serving.server import start_subprocess

    versions = sorted(v for v in map(version_number, os.listdir(os.path.join(base_path, model))) if v is not None)
    version = versions[-1]
    reference = Reference(os.path.join(base_path, model, str(version)))
    if table is None:  # random rows in [0, 1] with 20% missing
        gen = np.random.default_rng(seed)
        table = np.where(gen.random((4096, reference.width)) < 0.2, np.nan, gen.random((4096, reference.width)))
    table = np.asarray(table, dtype=np.float32)
    pool = make_pool(reference, table, np.random.default_rng(seed))

    server_args = ["--poll-seconds", "0", "--max-rows", str(max_rows), *extra_server_args]
    process, grpc_target, rest_url = start_subprocess(base_path, rest=True, extra_args=server_args)
    pid = process.pid
    summary = {"seconds_asked": seconds, "clients": clients, "model": model, "version": version, "server_pid": pid,
               "server_args": server_args, "excluded": sorted(exclude), "only": sorted(only), "load_before": os.getloadavg()}
    try:
        soak = Soak(grpc_target, rest_url, model, version, reference, pool, max_rows, rtol, atol, exclude, only)
        summary["rss_start_kb"] = rss_kb(pid)
        peak = [summary["rss_start_kb"] or 0]
        stop = threading.Event()
        started = time.monotonic()
        deadline = started + seconds
        per_client = max(1, max_requests // clients)
        threads = [
            threading.Thread(target=soak.client_loop, args=(i, seed, deadline, per_client, stop), name=f"soak-client-{i}", daemon=True)
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        warm_at = started + max(1.0, min(60.0, seconds * warmup_share))
        summary["rss_warm_kb"] = None
        next_report = started + 60
        while any(t.is_alive() for t in threads):
            time.sleep(0.25 if seconds < 30 else 1.0)
            now = time.monotonic()
            rss = rss_kb(pid)
            if rss is None:
                log("the server process is gone")
                stop.set()
                break
            peak[0] = max(peak[0], rss)
            if summary["rss_warm_kb"] is None and now >= warm_at:
                summary["rss_warm_kb"] = rss
            if now >= next_report:
                next_report += 60
                with soak.lock:
                    done = sum(soak.sent.values())
                    bad = sum(soak.wrong.values()), sum(soak.unexpected.values())
                log(f"  {now - started:5.0f} s: {done} requests, {bad[0]} wrong, {bad[1]} unexpected, server RSS {rss / 1024:.1f} MB")
            if now > deadline + 60:  # a client stuck past the deadline (each call has a 30 s timeout)
                stop.set()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started
        summary["rss_end_kb"] = rss_kb(pid)
        summary["rss_peak_kb"] = peak[0]
        summary["server_alive"] = process.poll() is None
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except Exception:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()
    start_kb, end_kb, warm_kb = summary["rss_start_kb"], summary["rss_end_kb"], summary["rss_warm_kb"] or summary["rss_start_kb"]
    summary.update(
        seconds=elapsed,
        requests=sum(soak.sent.values()),
        requests_per_s=sum(soak.sent.values()) / elapsed if elapsed else 0.0,
        sent=dict(sorted(soak.sent.items())),
        good=sum(v for k, v in soak.sent.items() if k in GOOD_KINDS),
        wrong_answers=sum(soak.wrong.values()),
        unexpected_statuses=sum(soak.unexpected.values()),
        wrong=dict(soak.wrong),
        unexpected=dict(soak.unexpected),
        examples=list(soak.examples),
        rss_growth_pct=100.0 * (end_kb - start_kb) / start_kb if start_kb and end_kb else None,
        rss_growth_after_warmup_pct=100.0 * (end_kb - warm_kb) / warm_kb if warm_kb and end_kb else None,
        load_after=os.getloadavg(),
    )
    return summary


def format_summary(s):
    mb = lambda kb: "?" if kb is None else f"{kb / 1024:.1f} MB"  # noqa: E731
    pct = lambda v: "?" if v is None else f"{v:+.1f}%"  # noqa: E731
    lines = [
        f"soak: {s['clients']} clients, {s['seconds']:.1f} s (asked {s['seconds_asked']} s), model {s['model']} version {s['version']}, "
        f"server args {' '.join(s['server_args'])}" + (f"; kinds left out: {', '.join(s['excluded'])}" if s["excluded"] else "")
        + (f"; only kinds: {', '.join(s['only'])}" if s["only"] else ""),
        f"requests: {s['requests']} ({s['requests_per_s']:.0f}/s), of which good (answer checked or OK expected) {s['good']}, "
        f"bad {s['requests'] - s['good']}; kinds: {len(s['sent'])}",
        f"wrong answers: {s['wrong_answers']} {s['wrong'] or ''}",
        f"unexpected statuses: {s['unexpected_statuses']} {s['unexpected'] or ''}",
        f"server RSS: start {mb(s['rss_start_kb'])}, after warm-up {mb(s['rss_warm_kb'])}, peak {mb(s['rss_peak_kb'])}, "
        f"end {mb(s['rss_end_kb'])}; growth start->end {pct(s['rss_growth_pct'])}, warm-up->end {pct(s['rss_growth_after_warmup_pct'])}; "
        f"server alive at the end: {s['server_alive']}",
        f"load average (1, 5, 15 min) before: {' '.join(f'{v:.2f}' for v in s['load_before'])}; after: {' '.join(f'{v:.2f}' for v in s['load_after'])}",
        "requests by kind: " + ", ".join(f"{k} {v}" for k, v in s["sent"].items()),
    ]
    lines += [f"  example: {e}" for e in s["examples"]]
    return lines


def main(argv=None, prog="python -m serving.soak"):
    from keraszoo.console import ArgumentParser, quiet_tensorflow

    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", help="folder of exported models (default: fit and export GAIN on breast cancer)")
    parser.add_argument("--model", default="gain_breast")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to send requests (default 600)")
    parser.add_argument("--max-requests", type=int, default=10**7, help="stop after this many requests in all, if earlier")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=1000, help="the server's --max-rows (a request above it must be refused)")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--enable-batching", action="store_true", help="start the server with --enable-batching")
    parser.add_argument("--exclude", default="", help="request kinds to leave out, comma-separated")
    parser.add_argument("--only", default="", help="send only these request kinds, comma-separated")
    parser.add_argument("--json", help="also write the summary to this file as JSON")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and warnings")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.max_requests < 1:
        raise SystemExit("serving.soak: --seconds, --clients and --max-requests must be positive")
    quiet_tensorflow(verbose=args.verbose)

    temporary = None
    table = None
    base_path = args.model_base_path
    if base_path is None:
        from serving.loadtest import fit_and_export

        temporary = tempfile.TemporaryDirectory()
        base_path = temporary.name
        table = fit_and_export(base_path)
    try:
        summary = run_soak(
            base_path, args.model, args.seconds, clients=args.clients, seed=args.seed, max_requests=args.max_requests,
            max_rows=args.max_rows, rtol=args.rtol, atol=args.atol, table=table,
            extra_server_args=["--enable-batching"] if args.enable_batching else (),
            exclude=[kind for kind in args.exclude.split(",") if kind],
            only=[kind for kind in args.only.split(",") if kind],
        )
    finally:
        if temporary is not None:
            temporary.cleanup()
    for line in format_summary(summary):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result["wrong_answers"] or result["unexpected_statuses"] or not result["server_alive"] else 0)
