"""The server's front ends under hostile clients (issue #11), and its probes and metrics.

Each hostile request is sent to a real server (in-process, 127.0.0.1, free ports), its status and
message are checked, and then a good request must succeed. Timeouts here are 1 s, so every test is
bounded by a few seconds.
"""
import functools
import json
import os
import socket
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_management_pb2

from keraszoo.sklearn import ZooImputer
from keraszoo import testing
from serving.client import ImputeClient
from serving.export import export
from serving.server import ImputationServer, make_manager

TIMEOUT = 1.0  # the REST header and body timeouts of the test server
WORKERS = 2  # its REST worker threads
MAX_BYTES = 4 << 20  # its request size limit


wait_until = functools.partial(testing.wait_until, timeout=20.0, interval=0.02)  # this file's servers answer fast


def make_server(manager, **options):
    defaults = dict(
        port=0, rest_port=0, max_rows=100_000, max_request_bytes=MAX_BYTES,
        rest_workers=WORKERS, rest_header_timeout=TIMEOUT, rest_body_timeout=TIMEOUT,
    )
    return ImputationServer(manager, **{**defaults, **options})


@pytest.fixture(scope="module")
def imputer():
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:, :10]
    incomplete = np.where(np.random.default_rng(0).random(x.shape) < 0.2, np.nan, x)
    return ZooImputer("mean").fit(incomplete[:400]), incomplete[400:].astype(np.float32)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, imputer):
    base = str(tmp_path_factory.mktemp("frontend") / "models")
    export(imputer[0], base, "m", version=1)
    return base


@pytest.fixture(scope="module")
def server(base_path):
    srv = make_server(make_manager(model_base_path=base_path, poll_seconds=0))
    srv.start()
    yield srv
    srv.stop()


def rest(server, path, body=None, raw=None):
    """(HTTP status, body bytes) of a REST call."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def rest_when_free(server, path, body=None):
    """`rest` once no REST worker is busy. The test server has 2 workers, and a worker frees itself a moment
    after its client has the response: on a loaded machine two back-to-back calls can find both still
    busy and get the documented 503 ("server busy"), which is not what the calling test is about."""
    assert wait_until(lambda: server._http.busy_workers == 0, timeout=5)
    return rest(server, path, body)


def assert_good_requests(server, client, imputer):
    """A good gRPC and a good REST request are answered correctly."""
    model, rows = imputer
    np.testing.assert_allclose(client.impute("m", rows[:3]), model.transform(rows[:3]), rtol=1e-5, atol=1e-4)
    rows_json = [[None if np.isnan(v) else float(v) for v in row] for row in rows[:3]]
    status, body = rest(server, "/v1/models/m:predict", {"instances": rows_json})
    assert status == 200, body
    np.testing.assert_allclose(json.loads(body)["predictions"], model.transform(rows[:3]), rtol=1e-5, atol=1e-4)


def connect(server):
    sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=10)
    return sock


def read_until_closed(sock, limit):
    """(bytes received, seconds until the server closed the connection, or None if it did not within `limit`)."""
    started, received = time.monotonic(), b""
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return received, time.monotonic() - started
            received += data
            sock.settimeout(max(0.01, limit - (time.monotonic() - started)))
    except socket.timeout:
        return received, None
    except ConnectionResetError:
        return received, time.monotonic() - started


# --- HandleReloadConfigRequest ---------------------------------------------------------------------
def reload_request(**models):
    request = model_management_pb2.ReloadConfigRequest()
    for name, path in models.items():
        request.config.model_config_list.config.add(name=name, base_path=path, model_platform="tensorflow")
    return request


def test_reload_config_is_refused_unless_the_flag_allows_it(server, client, imputer, base_path):
    with pytest.raises(grpc.RpcError) as caught:
        client.models.HandleReloadConfigRequest(reload_request(other=os.path.join(base_path, "m")))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "--allow-reload-config" in caught.value.details()
    assert server.manager.model_names() == ["m"]
    assert_good_requests(server, client, imputer)


def test_reload_config_takes_only_base_paths_under_the_configured_ones(tmp_path, imputer):
    model, rows = imputer
    served, outside = tmp_path / "served", tmp_path / "outside"
    export(model, str(served), "m", version=1)
    export(model, str(outside), "evil", version=1)
    srv = make_server(make_manager(model_base_path=str(served), poll_seconds=0), allow_reload_config=True)
    with srv, ImputeClient(f"127.0.0.1:{srv.grpc_port}") as client:
        os.symlink(outside / "evil", served / "link")  # a symlink inside the served folder leading out of it
        for path in (outside / "evil", f"{served}/../outside/evil", served / "link", "/"):
            response = client.models.HandleReloadConfigRequest(reload_request(evil=str(path)))
            assert response.status.error_code == grpc.StatusCode.PERMISSION_DENIED.value[0], path
            assert "not under the server's configured base paths" in response.status.error_message
            assert srv.manager.model_names() == ["m"]
            np.testing.assert_allclose(client.impute("m", rows[:2]), model.transform(rows[:2]), rtol=1e-5, atol=1e-4)
        response = client.models.HandleReloadConfigRequest(reload_request(renamed=f"{served}/./m"))
        assert response.status.error_code == 0, response.status.error_message
        assert srv.manager.model_names() == ["renamed"]
        np.testing.assert_allclose(client.impute("renamed", rows[:2]), model.transform(rows[:2]), rtol=1e-5, atol=1e-4)


# --- REST: slow clients, large bodies, a full pool ------------------------------------------------
def test_slow_clients_are_dropped_after_the_timeouts_while_good_requests_are_served(server, client, imputer):
    stalls = [
        # headers started, never finished
        b"POST /v1/models/m:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        # headers complete, the announced body never comes (10 of 1000 bytes)
        b"POST /v1/models/m:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
    ]
    for data in stalls:
        sock = connect(server)
        try:
            started = time.monotonic()
            sock.sendall(data)
            assert_good_requests(server, client, imputer)  # served while the slow client stalls
            received, closed_after = read_until_closed(sock, 10 * TIMEOUT)
            elapsed = time.monotonic() - started
        finally:
            sock.close()
        assert closed_after is not None, f"not dropped: {data[:40]!r}"
        assert TIMEOUT * 0.9 <= elapsed <= 5 * TIMEOUT, elapsed
        assert received.startswith(b"HTTP/1.1 408 ") and b"not received in time" in received, received
        assert_good_requests(server, client, imputer)


def test_a_client_trickling_its_headers_is_dropped_at_the_deadline(server, client, imputer):
    """A byte every 0.2 s never trips a per-read timeout of 1 s: the deadline on the whole headers does."""
    import select

    sock = connect(server)
    try:
        started, dropped_at = time.monotonic(), None
        sock.sendall(b"GET /v1/models/m HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while time.monotonic() - started < 8 * TIMEOUT:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:  # the server answered (408) or closed: it dropped the client
                dropped_at = time.monotonic() - started
                break
            try:
                sock.sendall(b"a")  # one more byte of a header line that never ends
            except OSError:
                dropped_at = time.monotonic() - started
                break
            if 0.3 < time.monotonic() - started < 0.6:
                assert_good_requests(server, client, imputer)  # served meanwhile
        received, closed_after = read_until_closed(sock, 5 * TIMEOUT)
    finally:
        sock.close()
    assert dropped_at is not None and TIMEOUT * 0.9 <= dropped_at <= 3 * TIMEOUT, dropped_at
    assert closed_after is not None and (received == b"" or received.startswith(b"HTTP/1.1 408 ")), received
    assert_good_requests(server, client, imputer)


def test_oversized_chunked_and_expect_continue_bodies_are_refused_without_reading_them(server, client, imputer):
    huge = MAX_BYTES + 1
    cases = [
        (f"Content-Length: {huge}\r\n", b"413 ", b"over this server's limit"),
        (f"Content-Length: {huge}\r\nExpect: 100-continue\r\n", b"413 ", b"over this server's limit"),  # not "100 Continue"
        ("Transfer-Encoding: chunked\r\n", b"411 ", b"send Content-Length"),
    ]
    for headers, status, words in cases:
        sock = connect(server)
        try:
            sock.sendall(f"POST /v1/models/m:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())  # no body
            received, closed_after = read_until_closed(sock, 5 * TIMEOUT)
        finally:
            sock.close()
        assert received.startswith(b"HTTP/1.1 " + status) and words in received, received
        assert closed_after is not None and closed_after < TIMEOUT * 0.9, closed_after  # answered at once, not timed out
        assert_good_requests(server, client, imputer)


def test_a_full_worker_pool_answers_503_at_once_and_serves_again_when_a_worker_frees(base_path, imputer):
    """Documented behaviour: a connection arriving while all REST workers are busy gets 503, never a queue.

    Its own server, with 30 s header and body timeouts: with the shared server's 1 s, a stalled client
    timed out on a loaded CI machine before the next request arrived, freeing its worker (200, not 503)."""
    server = make_server(make_manager(model_base_path=base_path, poll_seconds=0), rest_header_timeout=30.0, rest_body_timeout=30.0)
    with server, ImputeClient(f"127.0.0.1:{server.grpc_port}") as client:
        stalled = [connect(server) for _ in range(WORKERS)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /v1/models/m HTTP/1.1\r\n")  # and nothing more
            assert wait_until(lambda: server._http.busy_workers == WORKERS, timeout=5)
            started = time.monotonic()
            status, body = rest(server, "/v1/models/m")
            assert status == 503 and f"all {WORKERS} REST workers are in use" in json.loads(body)["error"], (status, body)
            assert time.monotonic() - started < 5.0  # refused at once, not after a stalled client's 30 s timeout
            # gRPC does not share the REST pool
            np.testing.assert_allclose(client.impute("m", imputer[1][:2]), imputer[0].transform(imputer[1][:2]), rtol=1e-5, atol=1e-4)
            stalled.pop().close()
            assert wait_until(lambda: server._http.busy_workers < WORKERS, timeout=5)
            assert rest(server, "/v1/models/m")[0] == 200
        finally:
            for sock in stalled:
                sock.close()
        assert wait_until(lambda: server._http.busy_workers == 0, timeout=5)
        assert_good_requests(server, client, imputer)


# --- REST responses ----------------------------------------------------------------------------------
def _whole_array_json(outputs, row_format):
    """The response as the server built it before streaming: astype(str) of the whole output, tolist, json.dumps."""

    def as_list(array):
        return (array.astype(str).astype(np.float64) if array.dtype == np.float32 else array).tolist()

    if not row_format:
        if len(outputs) == 1:
            return json.dumps({"outputs": as_list(next(iter(outputs.values())))}).encode()
        return json.dumps({"outputs": {k: as_list(v) for k, v in outputs.items()}}).encode()
    if len(outputs) == 1:
        return json.dumps({"predictions": as_list(next(iter(outputs.values())))}).encode()
    lists = {k: as_list(v) for k, v in outputs.items()}
    n = min(len(v) for v in lists.values())
    return json.dumps({"predictions": [{k: v[i] for k, v in lists.items()} for i in range(n)]}).encode()


def test_rest_responses_are_tf_servings_json_byte_for_byte(server, client, imputer):
    model, rows = imputer
    many = np.tile(rows, (200, 1))[:20_000]  # a response over 1 MB: streamed, chunked
    for batch in (rows[:3], many):
        expected_array = client.impute("m", batch)
        rows_json = [[None if np.isnan(v) else float(v) for v in row] for row in batch]
        for key, wrapper in (("instances", True), ("inputs", False)):
            status, body = rest(server, "/v1/models/m:predict", {key: rows_json})
            assert status == 200 and body == _whole_array_json({"imputed": expected_array}, wrapper), body[:200]
    from serving.jsonstream import rest_response_json

    rng = np.random.default_rng(1)
    odd = (rng.standard_normal((3000, 7)) * 1e4).astype(np.float32)
    odd[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    cases = [
        {"imputed": odd},
        {"imputations": rng.random((3, 2000, 5)).astype(np.float32)},  # multiple_imputation's [n, rows, cols]
        {"a": rng.random((5000, 2)).astype(np.float32), "b": rng.integers(0, 9, (5000, 3)).astype(np.int32)},
        {"imputed": np.zeros((0, 10), np.float32)},
    ]
    for outputs in cases:
        for row_format in (True, False):
            assert rest_response_json(outputs, row_format) == _whole_array_json(outputs, row_format)


def test_formatting_a_large_response_holds_a_small_fraction_of_its_float32_size():
    import tracemalloc

    from serving.jsonstream import rest_response_chunks

    output = np.random.default_rng(2).standard_normal((25_000, 30)).astype(np.float32)  # 3 MB of float32 (measured: peak 0.24x)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        total = sum(len(chunk) for chunk in rest_response_chunks({"imputed": output}, True))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert total > 2 * output.nbytes  # the JSON text itself is larger than the floats
    assert peak < 0.5 * output.nbytes, (peak, output.nbytes)  # the whole-array route peaks at over 32x


# --- health ----------------------------------------------------------------------------------------
def health_check(target, service):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return health_pb2.HealthCheckResponse.ServingStatus.Name(
                stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
            )
        except grpc.RpcError as err:
            return err.code().name


def test_liveness_readiness_and_grpc_health(server, client, imputer):
    target = f"127.0.0.1:{server.grpc_port}"
    assert rest(server, "/healthz") == (200, b'{"status": "alive"}')
    status, body = rest(server, "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "models": {"m": True}}
    assert [health_check(target, name) for name in ("", "m", "nope")] == ["SERVING", "SERVING", "NOT_FOUND"]
    assert_good_requests(server, client, imputer)


def test_readiness_waits_for_every_configured_model(tmp_path, imputer):
    model, rows = imputer
    export(model, str(tmp_path), "ready", version=1)
    os.makedirs(tmp_path / "later")
    config = tmp_path / "two.config"
    config.write_text(
        "model_config_list { "
        f"config {{ name: 'ready' base_path: '{tmp_path / 'ready'}' model_platform: 'tensorflow' }} "
        f"config {{ name: 'later' base_path: '{tmp_path / 'later'}' model_platform: 'tensorflow' }} }}"
    )
    with make_server(make_manager(model_config=str(config), poll_seconds=0.1), health_interval=0.1) as srv:
        target = f"127.0.0.1:{srv.grpc_port}"
        status, body = rest(srv, "/readyz")
        assert status == 503 and "'later'" in json.loads(body)["error"], body
        assert [health_check(target, name) for name in ("", "ready", "later")] == ["NOT_SERVING", "SERVING", "NOT_SERVING"]
        assert rest(srv, "/healthz")[0] == 200  # alive all the same
        with ImputeClient(target) as client:
            np.testing.assert_allclose(client.impute("ready", rows[:2]), model.transform(rows[:2]), rtol=1e-5, atol=1e-4)
        export(model, str(tmp_path), "later", version=1)
        assert wait_until(lambda: rest(srv, "/readyz")[0] == 200)
        assert [health_check(target, name) for name in ("", "ready", "later")] == ["SERVING"] * 3


# --- metrics ---------------------------------------------------------------------------------------
def scrape(server):
    """{(metric name, frozenset of label pairs): value} from the Prometheus text at /monitoring/prometheus/metrics."""
    status, body = rest_when_free(server, "/monitoring/prometheus/metrics")
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = frozenset(tuple(pair.split("=", 1)) for pair in labels.rstrip("}").split(",") if pair) if labels else frozenset()
        samples[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return samples


def test_prometheus_metrics_count_requests_by_status_and_time_them(server, client, imputer):
    model, rows = imputer
    before = scrape(server)
    for _ in range(3):
        client.impute("m", rows[:2])
    rows_json = [[float(v) for v in np.nan_to_num(row)] for row in rows[:2]]
    for _ in range(2):
        assert rest_when_free(server, "/v1/models/m:predict", {"instances": rows_json})[0] == 200
    with pytest.raises(grpc.RpcError):
        client.impute("m", rows[:2, :9])  # INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError):
        client.impute("no_such_model", rows[:2])  # NOT_FOUND, counted without the unknown name
    assert rest_when_free(server, "/v1/models/m:predict", {"instances": [[1.0] * 9]})[0] == 400
    after = scrape(server)

    def delta(name, **labels):
        want = set(labels.items())
        keys = {k for k in after if k[0] == name and want <= k[1]}
        assert keys, (name, labels)
        return sum(after[k] - before.get(k, 0.0) for k in keys)

    count = ":tensorflow:serving:request_count"
    ok = dict(model_name="m", model_version="1", signature_name="serving_default", status="OK")
    assert delta(count, **ok) == 5
    assert delta(count, model_name="m", status="INVALID_ARGUMENT") == 2
    assert delta(count, model_name="", status="NOT_FOUND") == 1
    latency = ":tensorflow:serving:request_latency"
    labels = dict(model_name="m", model_version="1", signature_name="serving_default", API="predict")
    for entrypoint, n in (("GRPC", 4), ("REST", 3)):  # latency of the good and the invalid requests
        assert delta(latency + "_count", entrypoint=entrypoint, **labels) == n
        assert delta(latency + "_bucket", entrypoint=entrypoint, le="+Inf", **labels) == n
        seconds = delta(latency + "_sum", entrypoint=entrypoint, **labels) / 1e6
        assert 0 < seconds < 30 * n
        buckets = sorted(
            (float(dict(k[1])["le"]), v) for k, v in after.items()
            if k[0] == latency + "_bucket" and dict(k[1]).get("entrypoint") == entrypoint
            and set(labels.items()) <= k[1] and dict(k[1])["le"] != "+Inf"
        )
        assert len(buckets) == 33 and buckets[0][0] == 10
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] <= after[next(
            k for k in after if k[0] == latency + "_count" and dict(k[1]).get("entrypoint") == entrypoint and set(labels.items()) <= k[1]
        )]
    assert_good_requests(server, client, imputer)



def test_a_request_is_counted_before_its_client_has_the_whole_answer(server, imputer, monkeypatch):
    """A client that scrapes right after its answer sees that request counted (CI once scraped between
    the 400's last byte and its count). Recording is slowed down so that the old order fails every time."""
    _, rows = imputer
    record = server.metrics.record_request

    def slow_record(*args, **kwargs):
        time.sleep(0.3)
        record(*args, **kwargs)

    monkeypatch.setattr(server.metrics, "record_request", slow_record)
    count = ":tensorflow:serving:request_count"
    for body, status, code in (
        ({"instances": [[1.0] * 9]}, 400, "INVALID_ARGUMENT"),  # a whole JSON error body
        ({"instances": [[float(v) for v in np.nan_to_num(rows[0])]]}, 200, "OK"),  # a predict body
    ):
        key = (count, frozenset(dict(model_name="m", status=code).items()))

        def counted(samples):
            return sum(v for k, v in samples.items() if k[0] == count and key[1] <= k[1])

        before = counted(scrape(server))
        assert rest(server, "/v1/models/m:predict", body)[0] == status
        assert counted(scrape(server)) == before + 1, code

# --- request batching ------------------------------------------------------------------------------
def test_batching_merges_concurrent_one_row_requests_and_answers_each_its_own_rows(base_path, imputer):
    import threading

    from serving.batching import parse_batching_parameters

    model, rows = imputer
    params = parse_batching_parameters(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500000 }\nnum_batch_threads { value: 1 }\nmax_enqueued_batches { value: 8 }"
    )
    manager = make_manager(model_base_path=base_path, poll_seconds=0)
    srv = make_server(manager, enable_batching=True, batching_parameters=params, rest_workers=8)  # 4 REST requests at once
    with srv, ImputeClient(f"127.0.0.1:{srv.grpc_port}") as client:
        signature = srv.manager.lookup("m").signature("serving_default")
        calls, run = [], signature.run

        def counting_run(inputs, *args, **kwargs):  # counts the signature calls the server makes
            calls.append(len(inputs["x"]))
            return run(inputs, *args, **kwargs)

        signature.run = counting_run

        def concurrently(requests):
            barrier, results = threading.Barrier(len(requests)), [None] * len(requests)

            def one(i):
                barrier.wait(timeout=30)
                try:
                    results[i] = requests[i]()
                except Exception as err:  # noqa: BLE001 - the test inspects it
                    results[i] = err

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            return results

        def grpc_row(i):
            return lambda: client.impute("m", rows[i : i + 1])

        def rest_row(i):
            row = [[None if np.isnan(v) else float(v) for v in rows[i]]]
            def call():
                status, body = rest(srv, "/v1/models/m:predict", {"instances": row})
                assert status == 200, body
                return np.asarray(json.loads(body)["predictions"])

            return call

        # 16 one-row requests (12 gRPC, 4 REST) at once: each its own row back, in fewer calls
        results = concurrently([grpc_row(i) if i < 12 else rest_row(i) for i in range(16)])
        for i, result in enumerate(results):
            assert isinstance(result, np.ndarray), result
            np.testing.assert_allclose(result, model.transform(rows[i : i + 1]), rtol=1e-5, atol=1e-4)
        assert sum(calls) == 16 and len(calls) < 16, calls
        samples = scrape(srv)
        batch_rows = sum(v for k, v in samples.items() if k[0] == ":tensorflow:serving:batching_session:processed_batch_size_sum")
        assert batch_rows == 16

        # a request failing the graph's checks, merged with good ones: only it gets the error
        calls.clear()
        bad = rows[:1].copy()
        bad[0, 0] = np.inf
        results = concurrently([grpc_row(i) for i in range(6)] + [lambda: client.impute("m", bad)])
        for i, result in enumerate(results[:6]):
            np.testing.assert_allclose(result, model.transform(rows[i : i + 1]), rtol=1e-5, atol=1e-4)
        assert isinstance(results[6], grpc.RpcError) and results[6].code() == grpc.StatusCode.INVALID_ARGUMENT, results[6]
        assert "inf" in results[6].details()

        # requests that cannot be merged run alone, with their usual answers
        draws = client.multiple_imputation("m", rows[:3], n=2) if "multiple_imputation" in srv.manager.lookup("m").signatures else None
        assert draws is None or draws.shape == (2, 3, 10)
        with pytest.raises(grpc.RpcError) as caught:
            client.impute("m", rows[:2, :9])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "expected 10" in caught.value.details()
        np.testing.assert_allclose(client.impute("m", rows[:40]), model.transform(rows[:40]), rtol=1e-5, atol=1e-4)  # > max_batch_size


def test_bad_batching_and_rest_options_are_clear_errors(tmp_path):
    from serving.batching import parse_batching_parameters
    from serving.server import main

    assert parse_batching_parameters("max_batch_size { value: 8 }  # rows\nallowed_batch_sizes: 8\n")["max_batch_size"] == 8
    for text, words in (
        ("max_batch_size { value: many }", "must be an integer"),
        ("num_batch_threads { value: 0 }", "must be positive"),
        ("max_batch_sise { value: 8 }", "unknown field 'max_batch_sise'"),
        ("max_batch_size {", "cannot parse"),
    ):
        with pytest.raises(ValueError, match=words):
            parse_batching_parameters(text)
    (tmp_path / "batching.txt").write_text("max_batch_sise { value: 8 }")
    with pytest.raises(SystemExit, match="unknown field"):
        main(["--model-base-path", str(tmp_path), "--batching-parameters-file", str(tmp_path / "batching.txt")])
    with pytest.raises(SystemExit, match="--rest-workers"):
        main(["--model-base-path", str(tmp_path), "--rest-workers", "0"])
