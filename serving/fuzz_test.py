"""Fuzzing the server (issue #11): thousands of random and mutated requests on both ports, then good ones.

The server runs as a separate process (`python -m serving.server` on 127.0.0.1, free ports) so a
crash shows as a dead process and its peak memory is its own (VmHWM in /proc/PID/status). The
generators live in `serving.fuzz`; a fixed seed makes every run send the same requests.
"""
import random
import time
from collections import Counter

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2

from keraszoo.sklearn import ZooImputer
from serving import fuzz
from serving.client import ImputeClient
from serving.export import export
from serving.server import start_subprocess

SEED = 11
ROUNDS = 5
GRPC_PER_ROUND = 500  # random PredictRequests through the stock stub
MUTATED_PER_ROUND = 150  # serialized good requests with bytes flipped, sent as raw messages
REST_PER_ROUND = 300  # raw HTTP requests
RAW_GRPC_PER_ROUND = 40  # raw bytes on the gRPC port
COLUMNS = 10
#: what the REST port may answer: OK, the 4xx of bad input, 501/505 for methods and HTTP versions it does not speak
#: (never 500, never no answer to a request line)
REST_STATUSES = {200, 400, 404, 405, 408, 411, 413, 414, 431, 501, 505}
#: the server's peak RSS (VmHWM) may grow at most this much during the fuzzing (a 21-byte proto expanded to 400 MB once)
RSS_GROWTH_BOUND_MB = 300


def _kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:, :COLUMNS]
    rng = np.random.default_rng(0)
    table = np.where(rng.random(x.shape) < 0.2, np.nan, x)
    mean = ZooImputer("mean").fit(table[:400])
    gain = ZooImputer("gain", iterations=5).fit(table[:400])
    base = str(tmp_path_factory.mktemp("fuzz"))
    export(mean, base, "breast", version=1)
    export(gain, base, "gen", version=1)
    process, target, rest_url = start_subprocess(
        base, extra_args=["--max-rows", "1000", "--rest-header-timeout", "3", "--rest-body-timeout", "3", "--poll-seconds", "0"]
    )
    try:
        yield process, target, int(rest_url.rsplit(":", 1)[1]), mean, table[400:].astype(np.float32)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _serves(process, client, mean, rows):
    assert process.poll() is None, f"the server died (exit code {process.returncode})"
    np.testing.assert_allclose(client.impute("breast", rows), mean.transform(rows), rtol=1e-5, atol=1e-4)
    draws = client.multiple_imputation("gen", rows, n=2)
    assert draws.shape == (2, *rows.shape) and not np.isnan(draws).any()


def _http(port, data):
    """(status, body) of raw request bytes sent to 127.0.0.1:port (the connection half-closed after them)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert received.startswith(b"HTTP/1."), received[:200]
    return int(head.split(b" ", 2)[1]), body


def _post(port, body, path="/v1/models/gen:predict"):
    return _http(port, b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))


# --- what the fuzzing found, each sent once more --------------------------------------------------
REST_BODIES = [
    # json.loads raises RecursionError (not ValueError) on deep nesting: was a 500
    (b'{"instances": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}", "not valid JSON"),
    (b"[" * 5000, "not valid JSON"),
    # integers beyond float or int32 (json reads them exactly): numpy raises OverflowError, was a 500
    (b'{"instances": [[' + b",".join([b"1" * 400] * 10) + b"]]}", "must be a (nested) list of numbers for dtype float32"),
    (b'{"signature_name": "multiple_imputation", "inputs": {"x": [[1,2,3,4,5,6,7,8,9,10]], "n": ' + b"9" * 30 + b"}}",
     "must be a (nested) list of numbers for dtype int32"),
    # a signature_name that is not a string: a list or object is unhashable, was a 500
    (b'{"signature_name": ["serving_default"], "instances": [[1,2,3,4,5,6,7,8,9,10]]}', '\\"signature_name\\" must be a string'),
    (b'{"signature_name": {"a": 1}, "instances": [[1,2,3,4,5,6,7,8,9,10]]}', '\\"signature_name\\" must be a string'),
]


@pytest.mark.parametrize("body, words", REST_BODIES, ids=range(len(REST_BODIES)))
def test_rest_bodies_found_by_fuzzing_are_400(served, body, words):
    process, target, rest_port, mean, rows = served
    status, answer = _post(rest_port, body)
    assert status == 400 and words in answer.decode(), (status, answer[:300])
    with ImputeClient(target, timeout=30) as client:
        _serves(process, client, mean, rows[:3])


REQUEST_LINES = [
    (b"GET /healthz FOO", 400),  # unparsable version: was answered as HTTP/0.9, an HTML page without a status line
    (b"GET / HTTP/1.1.1", 400),
    (b"\xff\xff /v1/models/breast:predict FOO", 400),
    (b"POST /v1/models/breast:predict", 400),  # two words: "HTTP/0.9" POST
    (b"GET /healthz", 200),  # an HTTP/0.9 GET: answered with a status line too
    (b"HEAD /v1/models/breast:predict HTTP/0.9", 501),  # was no answer at all
    (b"PUT /v1/models/breast:predict HTTP/0.9", 501),
    (b"GET / HTTP/2.0", 505),
    (b"BREW", 400),
]


@pytest.mark.parametrize("line, status", REQUEST_LINES, ids=range(len(REQUEST_LINES)))
def test_every_answer_to_a_malformed_request_line_has_a_status_line(served, line, status):
    process, target, rest_port, mean, rows = served
    got, _ = _http(rest_port, line + b"\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nnull")
    assert got == status
    with ImputeClient(target, timeout=30) as client:
        _serves(process, client, mean, rows[:3])


# --- the fuzzing ---------------------------------------------------------------------------------
def _parses(data):
    try:
        predict_pb2.PredictRequest.FromString(data)
        return True
    except Exception:
        return False


@pytest.mark.slow
def test_fuzzed_requests_on_both_ports_get_a_status_and_the_server_keeps_serving(served):
    process, target, rest_port, mean, rows = served
    rng = random.Random(SEED)
    models = ["breast", "gen"]
    good = rows[:3]
    client = ImputeClient(target, timeout=30)
    _serves(process, client, mean, good)
    rss_mb, peak_before_mb = _kib(process.pid, "VmRSS") / 1024, _kib(process.pid, "VmHWM") / 1024
    good_request = predict_pb2.PredictRequest()
    good_request.model_spec.name = "breast"
    good_request.inputs["x"].CopyFrom(fuzz.good_tensor(3, COLUMNS, rng))
    good_bytes = good_request.SerializeToString()

    grpc_codes, rest_codes, unexpected = Counter(), Counter(), []
    raw_grpc = 0
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        for _ in range(ROUNDS):
            # gRPC: random requests through the stock stub, then mutated serialized ones as raw bytes
            requests = [fuzz.random_predict_request(rng, models, COLUMNS) for _ in range(GRPC_PER_ROUND)]
            mutated = [fuzz.mutate(rng, good_bytes) for _ in range(MUTATED_PER_ROUND)]
            for request, code, details in fuzz.predict_codes(channel, requests, mutated):
                grpc_codes[code.name] += 1
                allowed = fuzz.INPUT_ERROR_CODES
                if isinstance(request, bytes) and not _parses(request):
                    allowed = allowed | {grpc.StatusCode.INTERNAL}  # grpcio's own answer to a message that does not parse
                if code not in allowed:
                    unexpected.append(("grpc", request, code, details))
            _serves(process, client, mean, good)
            # REST: raw HTTP requests, each on its own connection
            for _ in range(REST_PER_ROUND):
                data = fuzz.random_http_request(rng, models, COLUMNS)
                status, answer = fuzz.http_exchange(rest_port, data)
                rest_codes[status] += 1
                if status not in REST_STATUSES and (status is not None or fuzz.needs_answer(data)):
                    unexpected.append(("rest", data[:300], status, answer[:300]))
            _serves(process, client, mean, good)
            # raw bytes on the gRPC port
            for _ in range(RAW_GRPC_PER_ROUND):
                fuzz.raw_exchange(int(target.rsplit(":", 1)[1]), fuzz.random_grpc_bytes(rng, good_bytes))
                raw_grpc += 1
            _serves(process, client, mean, good)
    elapsed = time.monotonic() - started
    client.close()
    peak_mb = _kib(process.pid, "VmHWM") / 1024
    total = sum(grpc_codes.values()) + sum(rest_codes.values()) + raw_grpc
    print(
        f"\nfuzz: {total} requests in {elapsed:.1f} s; gRPC {dict(grpc_codes)}; REST {dict(rest_codes)}; raw gRPC bytes {raw_grpc}; "
        f"server RSS after start {rss_mb:.0f} MB, peak RSS (VmHWM) {peak_before_mb:.0f} MB before the fuzzing, {peak_mb:.0f} MB after"
    )
    kinds = Counter((kind, str(code), answer[:80]) for kind, _, code, answer in unexpected)
    assert not unexpected, f"{len(unexpected)} unexpected answers: {kinds.most_common(20)}; first ones: {unexpected[:5]}"
    assert grpc_codes["OK"] > 0 and rest_codes[200] > 0  # the fuzz reaches the models, not only the checks
    assert peak_mb < peak_before_mb + RSS_GROWTH_BOUND_MB, f"peak RSS {peak_mb:.0f} MB, {peak_before_mb:.0f} MB before the fuzzing"
