"""The embedded server answers TF Serving's gRPC and REST APIs like `tensorflow_model_server` would."""
import json
import os
import shutil
import signal
import threading
import urllib.error
import urllib.request

import grpc
import numpy as np
import pandas as pd
import pytest
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, predict_pb2

from keraszoo.sklearn import ZooImputer
from keraszoo.testing import wait_until
from serving.client import ImputeClient
from serving.export import export
from serving.server import ImputationServer, make_manager, start_subprocess




TOLERANCE = dict(rtol=1e-5, atol=1e-4)  # raw scale (values up to ~2500), float32 SavedModel vs float64 transform


@pytest.fixture(scope="module")
def imputers():
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:, :10]
    incomplete = np.where(np.random.default_rng(0).random(x.shape) < 0.2, np.nan, x)
    train, rows = incomplete[:400], incomplete[400:]
    return {"gain": ZooImputer("gain", iterations=200).fit(train), "mean": ZooImputer("mean").fit(train), "rows": rows}


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, imputers):
    base = str(tmp_path_factory.mktemp("serving"))
    export(imputers["gain"], base, "breast", version=1)
    export(imputers["mean"], base, "breast", version=2)
    export(imputers["mean"], base, "mean_only", version=1)
    return base


@pytest.fixture(scope="module")
def server(base_path):
    srv = ImputationServer(make_manager(model_base_path=base_path, poll_seconds=0.2), port=0, rest_port=0, max_rows=1000)
    srv.start()
    yield srv
    srv.stop()


def rest(server, path, body=None, raw=None):
    """(HTTP status, parsed JSON) of a REST call."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_latest_version_by_default_and_pick_another(client, imputers):
    rows = imputers["rows"][:20]
    np.testing.assert_allclose(client.impute("breast", rows), imputers["mean"].transform(rows), **TOLERANCE)
    gain = client.impute("breast", rows, version=1)
    np.testing.assert_allclose(gain, imputers["gain"].transform(rows), **TOLERANCE)
    observed = ~np.isnan(rows)
    np.testing.assert_array_equal(gain[observed], rows[observed].astype(np.float32))
    mask = observed.astype(np.float32)
    with_mask = client.impute_with_mask("breast", np.nan_to_num(rows), mask, version=1)
    np.testing.assert_allclose(with_mask, gain, rtol=1e-6)
    draws = client.multiple_imputation("breast", rows, n=3, version=1)
    assert draws.shape == (3,) + rows.shape and np.std(draws, axis=0)[~observed].max() > 0


def test_pandas_in_pandas_out(client, imputers):
    frame = pd.DataFrame(imputers["rows"][:5], columns=[f"c{i}" for i in range(10)], index=[10, 11, 12, 13, 14])
    completed = client.impute("breast", frame, version=1)
    assert isinstance(completed, pd.DataFrame)
    assert list(completed.columns) == list(frame.columns) and list(completed.index) == list(frame.index)
    assert not completed.isna().any().any()
    with pytest.raises(ValueError, match="not numeric"):
        client.impute("breast", frame.assign(c0="text"))


def test_status_and_metadata(client, server):
    assert client.status("breast") == [(1, "AVAILABLE"), (2, "AVAILABLE")]
    assert client.status("breast", version=2) == [(2, "AVAILABLE")]
    signatures = client.metadata("breast", version=1)
    assert {"serving_default", "impute_with_mask", "multiple_imputation"} <= set(signatures)
    assert signatures["serving_default"].inputs["x"].tensor_shape.dim[1].size == 10
    status, body = rest(server, "/v1/models/breast/versions/1")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = rest(server, "/v1/models/breast/metadata")
    assert status == 200 and body["model_spec"]["version"] == "2"
    assert "serving_default" in body["metadata"]["signature_def"]["signature_def"]


def test_rest_predict_row_and_columnar_formats(server, imputers):
    rows = imputers["rows"][:4]
    expected = imputers["gain"].transform(rows)
    as_json = [[None if np.isnan(v) else float(v) for v in row] for row in rows]  # null = missing
    status, body = rest(server, "/v1/models/breast/versions/1:predict", {"instances": as_json})
    assert status == 200, body
    np.testing.assert_allclose(body["predictions"], expected, **TOLERANCE)
    status, body = rest(server, "/v1/models/breast/versions/1:predict", {"inputs": as_json})
    assert status == 200 and np.allclose(body["outputs"], expected, **TOLERANCE)
    nan_literal = json.dumps({"instances": [[float(v) for v in row] for row in rows]}).encode()  # NaN, as TF Serving takes
    status, body = rest(server, "/v1/models/breast/versions/1:predict", raw=nan_literal)
    assert status == 200 and np.allclose(body["predictions"], expected, **TOLERANCE)
    both = {"instances": [{"x": np.nan_to_num(r).tolist(), "mask": (~np.isnan(r)).astype(float).tolist()} for r in rows]}
    status, body = rest(server, "/v1/models/breast/versions/1:predict", {"signature_name": "impute_with_mask", **both})
    assert status == 200 and np.allclose(body["predictions"], expected, **TOLERANCE)
    draws = {"signature_name": "multiple_imputation", "inputs": {"x": as_json, "n": 2}}
    status, body = rest(server, "/v1/models/breast/versions/1:predict", draws)
    assert status == 200 and np.asarray(body["outputs"]).shape == (2,) + rows.shape


def _code(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_bad_grpc_requests_get_clear_errors_and_the_server_keeps_serving(client, server, imputers):
    rows = imputers["rows"][:3].astype(np.float32)
    good = imputers["mean"].transform(rows)

    def predict(inputs, model="breast", signature="serving_default", **spec):
        return lambda: client.predict(model, inputs, signature=signature, **spec)

    cases = [
        (predict({"x": rows}, model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (predict({"x": rows}, model="../breast"), grpc.StatusCode.NOT_FOUND, "not served"),
        (predict({"x": rows}, version=7), grpc.StatusCode.NOT_FOUND, "version 7"),
        (predict({"x": rows}, version_label="stable"), grpc.StatusCode.NOT_FOUND, "label"),
        (predict({"x": rows}, signature="nope"), grpc.StatusCode.INVALID_ARGUMENT, "no signature 'nope'"),
        (predict({"rows": rows}), grpc.StatusCode.INVALID_ARGUMENT, "serving_default(x: float32 [-1, 10])"),
        (predict({"x": rows, "mask": rows}), grpc.StatusCode.INVALID_ARGUMENT, "unknown input(s) ['mask']"),
        (predict({"x": rows[0]}), grpc.StatusCode.INVALID_ARGUMENT, "rank 1"),
        (predict({"x": rows[:, :9]}), grpc.StatusCode.INVALID_ARGUMENT, "expected 10"),
        (predict({"x": rows.astype(np.float64)}), grpc.StatusCode.INVALID_ARGUMENT, "dtype float64, expected float32"),
        (predict({"x": np.where(np.isnan(rows), np.inf, rows)}), grpc.StatusCode.INVALID_ARGUMENT, "inf"),
        (predict({"x": rows, "mask": np.full_like(rows, 0.5)}, signature="impute_with_mask"), grpc.StatusCode.INVALID_ARGUMENT, "0 (missing)"),
        (predict({"x": rows, "n": np.int32(0)}, signature="multiple_imputation", version=1), grpc.StatusCode.INVALID_ARGUMENT, "n must be"),
        (
            predict({"x": np.zeros((1000, 10), np.float32), "n": np.int32(501)}, signature="multiple_imputation", version=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "n x rows must be at most",
        ),
        (predict({"x": np.zeros((1001, 10), np.float32)}), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most 1000"),
        (  # an 80 MB message, refused by the SERVER at its limit (not by the client, nor for its rows)
            predict({"x": np.zeros((1000, 20000), np.float32)}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            ("SERVER: Received message larger than max", f" vs. {server.max_request_bytes})"),
        ),
    ]
    for call, code, words in cases:
        got, details = _code(call)
        words = (words,) if isinstance(words, str) else words
        assert got == code and all(w and w in details for w in words), (got, details)
        np.testing.assert_allclose(client.impute("breast", rows), good, **TOLERANCE)  # still serving
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "breast"
    assert _code(lambda: client.predictions.Classify(request))[0] == grpc.StatusCode.UNIMPLEMENTED
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "breast"
    assert _code(lambda: client.predictions.GetModelMetadata(metadata))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: client.status("nope"))[0] == grpc.StatusCode.NOT_FOUND


def test_bad_rest_requests_get_clear_errors(server, imputers):
    row = [float(v) for v in np.nan_to_num(imputers["rows"][0])]
    cases = [
        ("/v1/models/nope:predict", {"instances": [row]}, 404, "nope"),
        ("/v1/models/breast/versions/9:predict", {"instances": [row]}, 404, "version 9"),
        ("/v1/models/breast/versions/x", None, 400, "positive integer"),
        ("/v2/anything", None, 404, "unknown path"),
        ("/v1/models/breast:predict", {"instances": [row[:9]]}, 400, "expected 10"),
        ("/v1/models/breast:predict", {"rows": [row]}, 400, '"instances"'),
        ("/v1/models/breast:predict", {"instances": [["a"] * 10]}, 400, "list of numbers"),
        ("/v1/models/breast:predict", {"instances": [row] * 1001}, 413, "at most 1000"),
        ("/v1/models/breast:classify", {"instances": [row]}, 501, "classify"),
    ]
    for path, body, status, words in cases:
        got, answer = rest(server, path, body)
        assert got == status and words in answer["error"], (path, got, answer)
    got, answer = rest(server, "/v1/models/breast:predict", raw=b"{not json")
    assert got == 400 and "JSON" in answer["error"]
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    connection.putrequest("POST", "/v1/models/breast:predict")
    connection.putheader("Content-Length", "lots")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and "Content-Length" in json.loads(response.read())["error"]
    connection.close()
    assert rest(server, "/v1/models/breast:predict", {"instances": [row]})[0] == 200


def test_2000_requests_from_4_threads(client, imputers):
    rows = imputers["rows"].astype(np.float32)
    expected = imputers["gain"].transform(rows)
    errors, wrong = [], []

    def worker(offset):
        for i in range(500):
            start = (offset * 500 + i) % (len(rows) - 8)
            try:
                out = client.impute("breast", rows[start : start + 8], version=1)
            except grpc.RpcError as err:
                errors.append(err)
                continue
            if not np.allclose(out, expected[start : start + 8], **TOLERANCE):
                wrong.append(start)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and not wrong, (errors[:3], wrong[:3])


def test_new_versions_load_and_removed_ones_unload_without_failing_requests(tmp_path, imputers):
    base = str(tmp_path)
    export(imputers["mean"], base, "live", version=1)
    rows = imputers["rows"][:4]
    with ImputationServer(make_manager(model_base_path=base, poll_seconds=0.1), port=0, rest_port=None) as srv:
        client = ImputeClient(f"127.0.0.1:{srv.grpc_port}")
        stop, failures, served = threading.Event(), [], []

        def hammer():  # requests in flight while versions come and go
            while not stop.is_set():
                try:
                    served.append(client.impute("live", rows))
                except grpc.RpcError as err:
                    failures.append(err)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            export(imputers["gain"], base, "live", version=2)
            assert wait_until(lambda: client.status("live") == [(1, "AVAILABLE"), (2, "AVAILABLE")])
            assert wait_until(lambda: np.allclose(client.impute("live", rows), imputers["gain"].transform(rows), **TOLERANCE))
            shutil.rmtree(os.path.join(base, "live", "2"))
            assert wait_until(lambda: client.status("live") == [(1, "AVAILABLE")])
            export(imputers["mean"], base, "another", version=1)  # a new model appears too
            assert wait_until(lambda: "another" in srv.manager.model_names())
            os.makedirs(os.path.join(base, "live", "5"))  # a broken version: reported, others keep serving
            with open(os.path.join(base, "live", "5", "saved_model.pb"), "wb") as f:
                f.write(b"not a SavedModel")
            assert wait_until(lambda: (5, "END") in client.status("live"))
        finally:
            stop.set()
            thread.join()
        assert not failures and len(served) > 10, failures[:3]
        np.testing.assert_allclose(client.impute("live", rows), imputers["mean"].transform(rows), **TOLERANCE)
        client.close()


def test_model_config_file_with_labels_and_reload(tmp_path, base_path, imputers):
    from tensorflow_serving.apis import model_management_pb2

    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list { config { name: 'breast' base_path: '%s' model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 1 versions: 2 } }\n"
        "  version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } } }"
        % os.path.join(base_path, "breast")
    )
    rows = imputers["rows"][:4]
    manager = make_manager(model_config=str(config), poll_seconds=0)
    # reloads may name any model under base_path (by default only under the configured breast/)
    server = ImputationServer(manager, port=0, rest_port=0, allow_reload_config=True, reload_roots=[base_path])
    with server as srv:
        client = ImputeClient(f"127.0.0.1:{srv.grpc_port}")
        np.testing.assert_allclose(client.impute("breast", rows, version_label="stable"), imputers["gain"].transform(rows), **TOLERANCE)
        np.testing.assert_allclose(client.impute("breast", rows, version_label="canary"), imputers["mean"].transform(rows), **TOLERANCE)
        assert rest(srv, "/v1/models/breast/labels/stable")[1]["model_version_status"][0]["version"] == "1"
        request = model_management_pb2.ReloadConfigRequest()
        entry = request.config.model_config_list.config.add(name="renamed", base_path=os.path.join(base_path, "mean_only"))
        entry.model_platform = "tensorflow"
        assert client.models.HandleReloadConfigRequest(request).status.error_code == 0
        assert srv.manager.model_names() == ["renamed"]
        np.testing.assert_allclose(client.impute("renamed", rows), imputers["mean"].transform(rows), **TOLERANCE)
        client.close()


def test_command_line_server_binds_localhost_and_stops_cleanly(base_path, imputers):
    process, target, rest_url = start_subprocess(base_path)
    try:
        assert target.startswith("127.0.0.1:") and rest_url.startswith("http://127.0.0.1:")
        with ImputeClient(target) as client:
            rows = imputers["rows"][:2]
            np.testing.assert_allclose(client.impute("breast", rows), imputers["mean"].transform(rows), **TOLERANCE)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.stdout.close()


def test_a_stuck_shutdown_still_ends_the_process_by_its_deadline():
    """`shut_down` gives `stop` its deadline, then exits (code 1, saying so) instead of waiting on it.
    (`serving.server` re-exports it from `serving.process`, which imports no TensorFlow.)"""
    import subprocess
    import sys
    import time

    code = "import time\nfrom serving.process import shut_down\nclass Stuck:\n    def stop(self):\n        time.sleep(60)\nshut_down(Stuck(), deadline=0.5)\n"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "shutdown took longer than 0.5 s" in done.stderr, done.stderr
    assert time.perf_counter() - start < 30


def test_bad_server_configuration_is_a_clear_error(tmp_path):
    (tmp_path / "bad.config").write_text("model_config_list { config { name: 'x' base_path: '/m' model_platform: 'pytorch' } }")
    with pytest.raises(ValueError, match="only model_platform 'tensorflow'"):
        make_manager(model_config=str(tmp_path / "bad.config"))
    (tmp_path / "garbled.config").write_text("model_config_list {")
    with pytest.raises(ValueError, match="text format"):
        make_manager(model_config=str(tmp_path / "garbled.config"))
    with pytest.raises(ValueError, match="exactly one"):
        make_manager()
    with pytest.raises(SystemExit):
        from serving.server import main

        main(["--model-base-path", str(tmp_path), "--model-name", "x"])
    with pytest.raises(SystemExit, match="INTER,INTRA"):
        main(["--model-base-path", str(tmp_path), "--tf-threads", "many"])


def test_predict_request_proto_round_trip_is_stock(client):
    """The client builds a stock PredictRequest: the server needs nothing beyond the tensorflow_serving protos."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mean_only"
    request.inputs["x"].CopyFrom(__import__("tensorflow").make_tensor_proto(np.full((1, 10), np.nan, np.float32)))
    response = client.predictions.Predict(request)
    assert response.model_spec.version.value == 1 and response.model_spec.signature_name == "serving_default"
    assert response.outputs["imputed"].tensor_shape.dim[1].size == 10


def test_docker_compose_serves_the_config_that_export_writes(base_path):
    """No Docker engine runs in CI: check docker-compose.yml agrees with what `export` writes."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from serving.export import DOCKER_CONFIG_NAME, DOCKER_MODELS_ROOT

    compose = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "docker-compose.yml")).read()
    assert f"./saved_models/serving:{DOCKER_MODELS_ROOT}:ro" in compose
    assert f"--model_config_file={DOCKER_MODELS_ROOT}/{DOCKER_CONFIG_NAME}" in compose
    assert '"127.0.0.1:8500:8500"' in compose and '"127.0.0.1:8501:8501"' in compose
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(os.path.join(base_path, DOCKER_CONFIG_NAME)).read(), config)
    assert {c.name: c.base_path for c in config.model_config_list.config} == {
        "breast": f"{DOCKER_MODELS_ROOT}/breast",
        "mean_only": f"{DOCKER_MODELS_ROOT}/mean_only",
    }


def test_tensor_protos_round_trip_and_malformed_ones_are_refused():
    import tensorflow as tf

    from serving.tensors import to_numpy, to_tensor_proto

    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.int32(4), np.zeros((0, 3), np.float64), np.array([b"a"])):
        proto = to_tensor_proto(array)
        np.testing.assert_array_equal(to_numpy(proto), array)
        np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # what the stock client decodes
    stock = tf.make_tensor_proto(np.float32([[1.5, np.nan]]), dtype=tf.float32)  # float_val, not content
    stock.ClearField("tensor_content")
    stock.float_val.extend([1.5, np.nan])
    np.testing.assert_array_equal(to_numpy(stock), [[1.5, np.nan]])
    broken = to_tensor_proto(np.zeros((2, 3), np.float32))
    broken.tensor_content = broken.tensor_content[:-4]
    with pytest.raises(ValueError, match="bytes"):
        to_numpy(broken)


def test_signatures_switch_to_the_flat_call_only_after_it_matched(base_path, imputers):
    from serving.servables import ServableVersion

    servable = ServableVersion("breast", 1, os.path.join(base_path, "breast", "1"))
    rows = imputers["rows"][:5].astype(np.float32)
    mask = (~np.isnan(rows)).astype(np.float32)
    signature = servable.signature("impute_with_mask")
    first = signature.run({"x": np.nan_to_num(rows), "mask": mask})["imputed"]
    assert signature._call == signature._flat_call  # the flat inputs are ordered by name (mask, x)
    second = signature.run({"mask": mask, "x": np.nan_to_num(rows)})["imputed"]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(second, imputers["gain"].transform(rows), **TOLERANCE)


def test_load_test_reports_every_measurement_and_compares_batching_off_and_on(base_path, capsys):
    """One run (each run starts its own servers): every batch size's measurements, then batching off and on."""
    from serving import loadtest

    results = loadtest.main(
        ["--model-base-path", base_path, "--model", "mean_only", "--clients", "2", "--batch-sizes", "1,16", "--requests", "30",
         "--batching-clients", "4", "--batching-requests", "10", "--max-seconds", "20"]
    )
    assert [(r["batch"], r["how"]) for r in results[:-2]] == [
        (batch, how) for batch in (1, 16) for how in ("in-process", "grpc 1 client", "grpc 2 clients")
    ]
    assert [r["how"] for r in results[-2:]] == ["grpc 4 clients, batching off", "grpc 4 clients, batching on"]
    assert all(0 < r["p50"] <= r["p95"] <= r["p99"] and r["rows_per_s"] > 0 for r in results)
    out = capsys.readouterr().out
    assert "server overhead in latency" in out and "transport floor" in out and "grpc status" in out
    assert "target one row:" in out and "target batching:" in out and "batching parameters (default)" in out and "server gRPC threads 4" in out
    assert "load average" in out
