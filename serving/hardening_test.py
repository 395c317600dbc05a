"""Hostile and oversized requests (issue #11): each is sent, answered with a clear status, then a good request succeeds.

Also the export side of the same hardening: version folder names, models.config, warm-up files.
Every server here is in-process on 127.0.0.1 with free ports.
"""
import json
import os
import shutil
import tracemalloc

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from keraszoo.sklearn import ZooImputer
from keraszoo.testing import wait_until
from serving.client import ImputeClient
from serving.export import MAX_DRAWN_VALUES, WARMUP_ROWS, export, next_version, write_models_config
from serving.server import ImputationServer, make_manager

MAX_ROWS = 1000
WIDE = 100  # columns of the generative model: n x rows x WIDE decides the multiple_imputation bound




@pytest.fixture(scope="module")
def imputers():
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:, :10]
    rng = np.random.default_rng(0)
    table = np.where(rng.random(x.shape) < 0.2, np.nan, x)
    wide = rng.normal(size=(200, WIDE))
    wide = np.where(rng.random(wide.shape) < 0.2, np.nan, wide)
    return {
        "mean": ZooImputer("mean").fit(table[:400]),
        "gain": ZooImputer("gain", iterations=5).fit(wide),
        "rows": table[400:].astype(np.float32),
        "wide_rows": wide[:5].astype(np.float32),
    }


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, imputers):
    base = str(tmp_path_factory.mktemp("hardening"))
    export(imputers["mean"], base, "breast", version=1)
    export(imputers["gain"], base, "wide", version=1)
    return base


@pytest.fixture(scope="module")
def server(base_path):
    srv = ImputationServer(make_manager(model_base_path=base_path, poll_seconds=0), port=0, rest_port=0, max_rows=MAX_ROWS)
    srv.start()
    yield srv
    srv.stop()


def _code(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def _serves(client, imputers):
    """A good request after a bad one: the server still answers, and right."""
    rows = imputers["rows"][:3]
    np.testing.assert_allclose(client.impute("breast", rows), imputers["mean"].transform(rows), rtol=1e-5, atol=1e-4)
    return True


def _header_only(shape, dtype=types_pb2.DT_FLOAT, **values):
    """A TensorProto declaring `shape`, with (at most) a few repeated values: tiny on the wire."""
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims))
    for field, items in values.items():
        getattr(proto, field).extend(items)
    return proto


def test_tiny_protos_declaring_huge_shapes_are_refused_before_anything_is_allocated(client, imputers):
    """`tf.make_ndarray` expands one float_val to the declared shape: a 21-byte proto became 400 MB."""
    cases = [
        (_header_only([100_000_000], float_val=[0.0]), grpc.StatusCode.INVALID_ARGUMENT, "rank 1"),
        (_header_only([100_000_000, 10], float_val=[0.0]), grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_ROWS}"),
        (_header_only([2**62, 10], float_val=[0.0]), grpc.StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_ROWS}"),
        (_header_only([10_000_000, 11], float_val=[0.0]), grpc.StatusCode.INVALID_ARGUMENT, "expected 10"),
        (_header_only([10_000_000, 10], types_pb2.DT_DOUBLE, double_val=[0.0]), grpc.StatusCode.INVALID_ARGUMENT, "dtype float64, expected float32"),
        (_header_only([10_000_000, 10], types_pb2.DT_STRING, string_val=[b"a"]), grpc.StatusCode.INVALID_ARGUMENT, "dtype string"),
        (_header_only([10_000_000, 10], 999), grpc.StatusCode.INVALID_ARGUMENT, "DataType 999"),
        (_header_only([-1, 10], float_val=[0.0]), grpc.StatusCode.INVALID_ARGUMENT, "fully known"),
        (_header_only([3, 10], float_val=[0.0] * 31), grpc.StatusCode.INVALID_ARGUMENT, "not a valid TensorProto"),
    ]
    for proto, code, words in cases:
        assert len(proto.SerializeToString()) < 200  # tiny on the wire
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "breast"
        request.inputs["x"].CopyFrom(proto)
        tracemalloc.start()
        try:
            got, details = _code(lambda: client.predictions.Predict(request, timeout=30))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert got == code and words in details, (proto.tensor_shape, got, details)
        assert peak < 20 * 2**20, f"a {len(proto.SerializeToString())}-byte request allocated {peak / 2**20:.0f} MB"
        assert _serves(client, imputers)
    # the stock encoding of a small request (one float_val per value, as the stock converters may send) still works
    rows = np.nan_to_num(imputers["rows"][:2])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "breast"
    request.inputs["x"].CopyFrom(_header_only(rows.shape, float_val=rows.ravel().tolist()))
    out = tf.make_ndarray(client.predictions.Predict(request, timeout=30).outputs["imputed"])
    np.testing.assert_allclose(out, rows, rtol=1e-6)


def test_a_tensor_expanding_beyond_the_byte_limit_is_resource_exhausted(server, imputers):
    """Shape and rows within the signature, but its repeated values would expand past the byte limit."""
    from serving.servables import ServingError

    signature = server.manager.lookup("breast").signature("serving_default")
    with pytest.raises(ServingError) as caught:
        signature.decode({"x": _header_only([1000, 10], float_val=[1.0])}, max_rows=MAX_ROWS, max_bytes=39_999)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "needs 40000 bytes, over the limit of 39999" in caught.value.message
    decoded = signature.decode({"x": _header_only([1000, 10], float_val=[1.0])}, max_rows=MAX_ROWS, max_bytes=40_000)
    assert decoded["x"].shape == (1000, 10) and (decoded["x"] == 1.0).all()


def test_multiple_imputation_is_bounded_by_values_not_rows(client, imputers):
    """n x rows within MAX_DRAWN_ROWS, but n x rows x 100 columns over MAX_DRAWN_VALUES: refused in the graph."""
    rows = np.zeros((300, WIDE), np.float32)
    assert 1000 * 300 * WIDE > MAX_DRAWN_VALUES >= 1000 * 300 * 10
    got, details = _code(lambda: client.multiple_imputation("wide", rows, n=1000))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and f"n x rows x values per row must be at most {MAX_DRAWN_VALUES}" in details, details
    good = imputers["wide_rows"]
    draws = client.multiple_imputation("wide", good, n=3)
    assert draws.shape == (3, *good.shape) and not np.isnan(draws).any()
    observed = ~np.isnan(good)
    for draw in draws:
        np.testing.assert_array_equal(draw[observed], good[observed])
    assert _serves(client, imputers)


def _raw_http(port, head, body=b""):
    """(status, parsed JSON body) of one raw HTTP/1.1 request (its request line may hold any bytes)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    header, _, payload = received.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():  # de-chunk
        data, rest = b"", payload
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            size = int(size, 16)
            if size == 0:
                break
            data, rest = data + rest[:size], rest[size + 2 :]
        payload = data
    return status, json.loads(payload)


def test_non_ascii_digit_versions_are_refused_on_rest(server, imputers):
    """"²" passes str.isdigit and then crashes int() (a 500); "١" (Arabic-Indic one) would be read as 1."""
    row = [float(v) for v in np.nan_to_num(imputers["rows"][0])]
    body = json.dumps({"instances": [row]}).encode()
    versions = [
        "²".encode("latin-1"),  # the request line is read as ISO-8859-1: byte B2 is "²"
        "²".encode(),
        "١".encode(),
        b"%C2%B2",
        b"%D9%A1",
        b"0",
    ]
    for version in versions:
        status, answer = _raw_http(server.rest_port, b"POST /v1/models/breast/versions/" + version + b":predict HTTP/1.1", body)
        assert status == 400 and "positive integer" in answer["error"], (version, status, answer)
        status, answer = _raw_http(server.rest_port, b"GET /v1/models/breast/versions/" + version + b" HTTP/1.1")
        assert status == 400 and "positive integer" in answer["error"], (version, status, answer)
        status, answer = _raw_http(server.rest_port, b"POST /v1/models/breast/versions/1:predict HTTP/1.1", body)
        assert status == 200 and len(answer["predictions"][0]) == 10


def test_non_ascii_digit_version_folders_are_ignored_by_poller_and_export(tmp_path, imputers):
    base = str(tmp_path)
    first = export(imputers["mean"], base, "live", version=1)
    for odd in ("²", "١"):  # "²" crashed int(); "١" was read as version 1
        shutil.copytree(first, os.path.join(base, "live", odd))
    assert next_version(base, "live") == 2
    with ImputationServer(make_manager(model_base_path=base, poll_seconds=0.1), port=0, rest_port=None) as srv:
        with ImputeClient(f"127.0.0.1:{srv.grpc_port}") as client:
            assert client.status("live") == [(1, "AVAILABLE")]
            second = export(imputers["mean"], base, "live")  # the next version, despite the odd folders
            assert second.endswith(os.path.join("live", "2"))
            assert wait_until(lambda: client.status("live") == [(1, "AVAILABLE"), (2, "AVAILABLE")], timeout=20), client.status("live")
            rows = imputers["rows"][:2]
            np.testing.assert_allclose(client.impute("live", rows), imputers["mean"].transform(rows), rtol=1e-5, atol=1e-4)


def test_model_names_are_restricted_and_the_config_is_escaped_and_replaced_atomically(tmp_path, imputers):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base = str(tmp_path)
    for bad in ("it's", "a b", "x:predict", ".hidden", "-flag", "é", "a/b", "", "n" * 201):
        with pytest.raises(ValueError, match="letters, digits"):
            export(imputers["mean"], base, bad)
    assert not os.listdir(base)  # nothing written for a refused name
    export(imputers["mean"], base, "good.name-1_x", version=1)
    config_path = os.path.join(base, "models.config")
    before = open(config_path).read()
    # a folder made by hand with a quote in its name: the config stays valid TF Serving text format
    shutil.copytree(os.path.join(base, "good.name-1_x", "1"), os.path.join(base, "it's", "1"))
    reader = open(config_path)  # a reader that opened the file before the rewrite
    inode = os.stat(config_path).st_ino
    write_models_config(base)
    assert reader.read() == before  # it still reads the complete old file, not a truncated or mixed one
    reader.close()
    assert os.stat(config_path).st_ino != inode  # replaced, not rewritten in place
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(config_path).read(), config)
    assert {c.name: c.base_path for c in config.model_config_list.config} == {
        "good.name-1_x": os.path.join(base, "good.name-1_x"),
        "it's": os.path.join(base, "it's"),
    }
    assert all(c.model_version_policy.HasField("all") for c in config.model_config_list.config)
    assert sorted(os.listdir(base)) == ["good.name-1_x", "it's", "models.config", "models.docker.config"]  # no temp files left
    assert oct(os.stat(config_path).st_mode & 0o777) == "0o644"


def _warmup_records(version_dir):
    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def test_export_writes_tf_serving_warmup_requests(base_path):
    for name, signatures in (("breast", {"serving_default", "impute_with_mask"}), ("wide", {"serving_default", "impute_with_mask", "multiple_imputation"})):
        records = _warmup_records(os.path.join(base_path, name, "1"))
        assert 0 < len(records) <= 1000
        assert all(r.WhichOneof("log_type") == "predict_log" and r.predict_log.request.model_spec.name == name for r in records)
        requests = [r.predict_log.request for r in records]
        assert sorted(r.model_spec.signature_name for r in requests) == sorted(s for s in signatures for _ in WARMUP_ROWS)
        for request in requests:
            x = tf.make_ndarray(request.inputs["x"])
            assert x.dtype == np.float32 and x.shape[0] in WARMUP_ROWS
            if request.model_spec.signature_name == "multiple_imputation":
                assert tf.make_ndarray(request.inputs["n"]) == 2


def test_loaded_versions_have_replayed_their_warmup(server, client, imputers):
    for name in ("breast", "wide"):
        servable = server.manager.lookup(name)
        assert servable.warmup_requests == len(servable.signatures) * len(WARMUP_ROWS)
        # every signature has already answered a request through the same path as a client's
        assert all(s._call != s._first_call for s in servable.signatures.values())
    assert _serves(client, imputers)


def test_a_bad_warmup_file_fails_that_version_only(tmp_path, imputers):
    base = str(tmp_path)
    good = export(imputers["mean"], base, "m", version=1)
    bad_request = predict_pb2.PredictRequest()
    bad_request.model_spec.signature_name = "serving_default"
    bad_request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 9), np.float32)))  # 9 columns, not 10
    one = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=_warmup_records(good)[0].predict_log.request))
    broken = {
        2: (b"definitely not a TFRecord file", "cannot read it as TFRecord"),
        3: ([prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=bad_request))], "record 1 failed: input 'x' has size 9"),
        4: ([one] * 1001, "more than 1000 records"),
        5: ([prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog())], "predict_log only"),
    }
    for version, (content, _) in broken.items():
        folder = os.path.join(base, "m", str(version))
        shutil.copytree(good, folder)
        path = os.path.join(folder, "assets.extra", "tf_serving_warmup_requests")
        if isinstance(content, bytes):
            with open(path, "wb") as f:
                f.write(content)
        else:
            with tf.io.TFRecordWriter(path) as writer:
                for record in content:
                    writer.write(record.SerializeToString())
    with ImputationServer(make_manager(model_base_path=base, poll_seconds=0), port=0, rest_port=None) as srv:
        with ImputeClient(f"127.0.0.1:{srv.grpc_port}") as client:
            from tensorflow_serving.apis import get_model_status_pb2

            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "m"
            statuses = {s.version: s for s in client.models.GetModelStatus(request, timeout=30).model_version_status}
            assert statuses[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
            for version, (_, words) in broken.items():
                status = statuses[version]
                assert status.state == get_model_status_pb2.ModelVersionStatus.END, (version, status)
                assert "warm-up file" in status.status.error_message and words in status.status.error_message, (version, status)
            rows = imputers["rows"][:2]
            np.testing.assert_allclose(client.impute("m", rows), imputers["mean"].transform(rows), rtol=1e-5, atol=1e-4)
            assert _code(lambda: client.impute("m", rows, version=2))[0] == grpc.StatusCode.NOT_FOUND


def test_grpc_message_limit_is_configurable_and_answers_resource_exhausted(base_path, imputers):
    limit = 2**20
    with ImputationServer(make_manager(model_base_path=base_path, poll_seconds=0), port=0, rest_port=None, max_request_bytes=limit) as srv:
        with ImputeClient(f"127.0.0.1:{srv.grpc_port}") as client:
            big = np.zeros((30_000, 10), np.float32)  # 1.2 MB: over the limit, though its shape is fine
            got, details = _code(lambda: client.impute("breast", big))
            assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details and f"vs. {limit})" in details, details
            assert _serves(client, imputers)
            just_under = np.full((limit // 40 - 100, 10), np.nan, np.float32)  # 4,000 bytes under the limit
            imputed = client.impute("breast", just_under)
            assert imputed.shape == just_under.shape and not np.isnan(imputed).any()


def test_tfds_version_folders_are_ascii_digits_only(tmp_path, monkeypatch):
    """The same isdigit-then-int pattern in keraszoo.data: a "3.0.²" folder crashed the MNIST lookup."""
    from keraszoo.data import datasets

    for name in ("3.0.1", "3.0.²", "٣.0.2"):
        (tmp_path / "mnist" / name).mkdir(parents=True)
        (tmp_path / "mnist" / name / "dataset_info.json").write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert datasets._tfds_prepared_mnist_dir() == tmp_path / "mnist" / "3.0.1"


def test_rest_string_inputs_take_text_and_b64_and_refuse_anything_else():
    """String signatures (the tabular export's) over REST: JSON strings and {"b64": ...} become bytes; numbers,
    nulls, ragged lists and bad base64 are INVALID_ARGUMENT, never a 500."""
    import tensorflow as tf

    from serving.server import ServingError, json_to_array

    array = json_to_array(["a", {"b64": "AAE="}, "ü"], tf.string, "k")
    assert array.tolist() == [b"a", b"\x00\x01", "ü".encode()]
    for bad in (["a", ["b"]], [1, "a"], ["a", None], [{"b64": "!!"}]):
        with pytest.raises(ServingError) as error:
            json_to_array(bad, tf.string, "k")
        assert "INVALID_ARGUMENT" in str(error.value.code)
