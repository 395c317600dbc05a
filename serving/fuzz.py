"""Random and mutated requests for the embedded server (issue #11): gRPC PredictRequests, raw bytes, HTTP.

Every generator takes a seeded `random.Random`, so a run is reproducible. `serving/fuzz_test.py`
sends what they make to a server on 127.0.0.1 and checks each answer; the senders here only talk
to the address they are given (the test gives loopback).

    python -m serving.fuzz --model-base-path DIR [--model NAME --columns D] [--seed 0] [--count 2000]

starts a server on 127.0.0.1 over DIR, sends `count` PredictRequests and `count / 2` HTTP requests,
prints the answers by status and the server's peak RSS, and exits 1 on any unexpected answer.
"""
import json
import random
import socket
import struct
import sys
import time
from collections import Counter

import grpc
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

#: gRPC codes a Predict may answer to bad input (anything else, UNKNOWN and INTERNAL above all, is a bug).
INPUT_ERROR_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
}

_DTYPES = [v for v in types_pb2.DataType.values() if v < 100] + [0, 99, 150, 999, -1, 2**31 - 1]
_DIMS = [0, 1, 1, 2, 3, 5, 10, 10, 10, 11, 30, 100, 1000, 1001, 10**6, 10**8, 2**31, 2**62, 2**63 - 1, -1, -2, -(2**63)]
_VALUE_FIELDS = [
    ("float_val", lambda r: r.choice([0.0, 1.5, -1e30, float("nan"), float("inf"), r.random()])),
    ("double_val", lambda r: r.random()),
    ("int_val", lambda r: r.choice([0, 1, 3, -1, 1000, 2**31 - 1, -(2**31)])),
    ("int64_val", lambda r: r.choice([0, 1, -1, 2**63 - 1, -(2**63)])),
    ("string_val", lambda r: bytes(r.randrange(256) for _ in range(r.randrange(8)))),
    ("bool_val", lambda r: r.random() < 0.5),
    ("half_val", lambda r: r.randrange(65536)),
    ("scomplex_val", lambda r: r.random()),
    ("dcomplex_val", lambda r: r.random()),
    ("uint32_val", lambda r: r.randrange(2**32)),
    ("uint64_val", lambda r: r.randrange(2**64)),
]
KEYS = ["x", "x", "x", "mask", "n", "", "X", "x ", "inputs", "\x00", "é", "k" * 300]


def random_tensor(rng, columns=None):
    """A TensorProto with random dtype, shape (huge, negative, unknown) and values (wrong kind, wrong count).

    With `columns`, half the rank-2 tensors have that width, so they pass the signature's width check
    and reach the row, byte and value checks behind it.
    """
    proto = tensor_pb2.TensorProto()
    proto.dtype = rng.choice([types_pb2.DT_FLOAT] * 25 + [types_pb2.DT_INT32] * 3 + _DTYPES)
    if rng.random() < 0.05:
        proto.tensor_shape.unknown_rank = True
    rank = rng.choice([0, 1, 2, 2, 2, 2, 2, 2, 3, 4, 33])
    for axis in range(rank):
        size = columns if columns and rank == 2 and axis == 1 and rng.random() < 0.5 else rng.choice(_DIMS)
        proto.tensor_shape.dim.add(size=size, name=rng.choice(["", "", "d"]))
    kind = rng.random()
    if kind < 0.35:  # raw content: right size for the declared shape of float32 or not
        count = 1
        for d in proto.tensor_shape.dim:
            count *= max(d.size, 0)
        size = count * 4 if count * 4 <= 1 << 16 and rng.random() < 0.6 else rng.randrange(0, 400)
        proto.tensor_content = rng.randbytes(size)
    elif kind < 0.9:  # repeated values of one or two fields
        for _ in range(rng.choice([1, 1, 2])):
            field, make = rng.choice(_VALUE_FIELDS)
            getattr(proto, field).extend(make(rng) for _ in range(rng.choice([0, 1, 2, 10, 30, 31, 100])))
    if rng.random() < 0.05:  # nested garbage: a variant holding another tensor, a resource handle
        variant = proto.variant_val.add(type_name=rng.choice(["", "x", "tensorflow::TensorList"]))
        variant.tensors.add().CopyFrom(tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0]))
    if rng.random() < 0.03:
        proto.resource_handle_val.add(device="/cpu:0", name="x")
    proto.version_number = rng.choice([0, 0, 0, 1, -1])
    return proto


def good_tensor(rows, columns, rng, dtype=types_pb2.DT_FLOAT):
    """A well-formed float32 [rows, columns] tensor (some NaN), raw content."""
    import numpy as np

    values = np.array([rng.uniform(0, 30) for _ in range(rows * columns)], np.float32).reshape(rows, columns)
    values[values < 5] = np.nan
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (rows, columns)])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=values.tobytes())


def random_predict_request(rng, models, columns):
    """A PredictRequest: mostly near-valid (served model, known signatures) with one or more things wrong."""
    request = predict_pb2.PredictRequest()
    spec = request.model_spec
    spec.name = rng.choice(models * 4 + ["", "nope", "../etc", "é" * 50, "a" * 5000])
    roll = rng.random()
    if roll < 0.2:
        spec.version.value = rng.choice([0, 1, 1, 2, 99, -1, 2**63 - 1, -(2**63)])
    elif roll < 0.3:
        spec.version_label = rng.choice(["stable", "", "x" * 1000])
        if rng.random() < 0.3:
            spec.version.value = 1
    spec.signature_name = rng.choice(["", "", "", "serving_default", "impute_with_mask", "multiple_imputation", "predict", "__saved_model_init_op", "nope"])
    roll = rng.random()
    if roll < 0.3:  # the right keys with good tensors, then one thing broken
        request.inputs["x"].CopyFrom(good_tensor(rng.choice([0, 1, 3]), columns, rng))
        if spec.signature_name == "impute_with_mask":
            request.inputs["mask"].CopyFrom(good_tensor(rng.choice([0, 1, 3]), columns, rng))
        if spec.signature_name == "multiple_imputation":
            n = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[rng.choice([0, 1, 2, 1000, 1001, -1, 2**31 - 1])])
            request.inputs["n"].CopyFrom(n)
        if rng.random() < 0.7:
            request.inputs[rng.choice(KEYS)].CopyFrom(random_tensor(rng, columns))
    else:
        for i in range(rng.choice([0, 1, 1, 1, 2, 3])):
            key = "x" if i == 0 and rng.random() < 0.6 else rng.choice(KEYS)
            request.inputs[key].CopyFrom(random_tensor(rng, columns))
    if rng.random() < 0.1:
        request.output_filter.extend(rng.choice(["imputed", "imputations", "", "nope"]) for _ in range(rng.randrange(1, 3)))
    return request


def mutate(rng, data, max_size=1 << 16):
    """`data` with random bytes flipped, inserted, deleted, duplicated or truncated."""
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at:at] = rng.randbytes(rng.randrange(1, 16))
        elif op == 2:
            del data[at : at + rng.randrange(1, 32)]
        elif op == 3:
            data = data[:at]
        elif op == 4 and data:
            end = min(len(data), at + rng.randrange(1, 64))
            data[at:at] = data[at:end] * rng.randrange(1, 8)
        elif op == 5 and data:
            data[min(at, len(data) - 1)] = rng.choice([0, 0x7F, 0x80, 0xFF, ord("\n"), ord("{"), ord("[")])
    return bytes(data[:max_size])


# --- HTTP ------------------------------------------------------------------------------------------
def _json_bodies(rng, columns):
    row = [rng.choice([None, 1.5, 0, -3e38]) for _ in range(columns)]
    depth = rng.choice([10, 31, 33, 100, 1000, 100_000])
    return [
        json.dumps({"instances": [row]}),
        json.dumps({"inputs": [row, row]}),
        json.dumps({"signature_name": "impute_with_mask", "inputs": {"x": [row], "mask": [[1] * columns]}}),
        json.dumps({"signature_name": "multiple_imputation", "inputs": {"x": [row], "n": rng.choice([1, 0, 10**6, -1, 1.5, "2", None, [2], 10**30, -(10**400)])}}),
        json.dumps({"signature_name": "multiple_imputation", "instances": [{"x": row, "n": 2}]}),
        json.dumps({"signature_name": rng.choice([[], {}, ["serving_default"], {"a": 1}, 5, None, "", "nope", "x" * 10000]), "instances": [row]}),
        json.dumps({"instances": [row], "inputs": [row]}),
        json.dumps({"instances": rng.choice([[], {}, "x", 1, None, [[]], [[[row]]], [{}], [{"x": row}, {"y": row}]])}),
        json.dumps({"inputs": {"x": row, "z": row}}),
        json.dumps([row]),
        '{"instances": [[' + ",".join(rng.choice(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" * 400, "1" * 5000, "0.1", "null", "true", '"1"', "{}"]) for _ in range(columns)) + "]]}",
        '{"instances": ' + "[" * depth + "1" + "]" * depth + "}",
        '{"instances": ' + "[" * depth + "}",
        '{"a":' * min(depth, 5000) + "1" + "}" * min(depth, 5000),
        '{"instances": [[' + ",".join(["1"] * rng.choice([columns - 1, columns + 1, 100_000])) + "]]}",
        '{"instances": [[' + ",".join(["9" * rng.choice([20, 40, 400])] * columns) + "]]}",
        "",
        "null",
        "\ufeff" + json.dumps({"instances": [row]}),
    ]


def random_http_request(rng, models, columns):
    """Raw bytes of one HTTP request (valid, broken, or mutated)."""
    method = rng.choice(["GET", "GET"] + ["POST"] * 8 + ["PUT", "HEAD", "DELETE", "OPTIONS", "PRI", "get", "", "P\x00ST", "\xff" * 3])
    name = rng.choice(models * 3 + ["nope", "", "%00", "..%2f", "é", "\udcff"])
    path = rng.choice(
        [
            f"/v1/models/{name}:predict",
            f"/v1/models/{name}:predict",
            f"/v1/models/{name}/versions/{rng.choice(['1', '0', '2', '-1', '99999999999999999999999', '²', '1e3', ''])}:predict",
            f"/v1/models/{name}/labels/{rng.choice(['stable', '', '%ff'])}:predict",
            f"/v1/models/{name}/metadata",
            f"/v1/models/{name}:classify",
            f"/v1/models/{name}:regress",
            f"/v1/models/{name}",
            "/healthz",
            "/readyz",
            "/monitoring/prometheus/metrics",
            "/",
            "*",
            "/" + "a" * rng.choice([10, 70000]),
            "/v1/models/" + "/" * 100,
            "http://127.0.0.1/v1/models/x:predict",
        ]
    )
    version = rng.choice(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.1.1", "FOO", ""])
    body = rng.choice(_json_bodies(rng, columns)).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        body = body.replace(b"1", b"\xff\xfe", 1)  # invalid UTF-8
    headers = ["Host: 127.0.0.1", "Content-Type: application/json"]
    length = len(body)
    roll = rng.random()
    if roll < 0.06:
        length = rng.choice([-1, length + 100, 10**20, 2**63, "abc", "", "1 2", " 5"])
    elif roll < 0.1:
        body = body[: rng.randrange(len(body) + 1)]  # truncated: fewer bytes than announced
    if rng.random() > 0.03:
        headers.append(f"Content-Length: {length}")
    if rng.random() < 0.04:
        headers.append("Transfer-Encoding: chunked")
    if rng.random() < 0.04:
        headers.append("Expect: 100-continue")
    if rng.random() < 0.03:
        headers.append("X-Big: " + "a" * 70000)
    if rng.random() < 0.03:
        headers += [f"X-{i}: {i}" for i in range(150)]
    if rng.random() < 0.5:
        headers.append("Connection: close")
    head = f"{method} {path} {version}".encode("utf-8", "surrogatepass") + b"\r\n" + "\r\n".join(headers).encode() + b"\r\n\r\n"
    data = head + body
    if rng.random() < 0.25:
        data = mutate(rng, data)
    return data


def http_exchange(port, data, timeout=10.0):
    """Send raw bytes to 127.0.0.1:port, half-close, read the answer: (status of the first response or None, bytes read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before taking everything (413 before a body, 400, ...)
            pass
        received = b""
        try:
            while len(received) < 1 << 22:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
    status, rest = None, received
    while rest.startswith(b"HTTP/"):
        status = int(rest.split(b" ", 2)[1])
        if status >= 200:
            break
        rest = rest.partition(b"\r\n\r\n")[2]  # an interim answer (100 Continue): the final one follows
    return status, received


def needs_answer(data):
    """Whether an HTTP server must answer these bytes: anything but an empty or blank first line."""
    first = data.split(b"\n", 1)[0].strip(b"\r\n")
    return bool(first.strip())


# --- gRPC raw bytes ---------------------------------------------------------------------------------
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def random_grpc_bytes(rng, good_request_bytes):
    """Raw bytes for the gRPC port: garbage, a bare HTTP/2 preface with garbage frames, or a mutated HTTP/1 request."""
    roll = rng.random()
    if roll < 0.3:
        return rng.randbytes(rng.choice([0, 1, 24, 100, 5000]))
    if roll < 0.7:
        frames = b""
        for _ in range(rng.randrange(1, 6)):
            payload = rng.randbytes(rng.randrange(0, 64))
            length = len(payload) if rng.random() < 0.8 else rng.randrange(2**24)
            frames += struct.pack(">I", length)[1:] + bytes([rng.randrange(12), rng.randrange(256)]) + struct.pack(">I", rng.randrange(2**31)) + payload
        return mutate(rng, _PREFACE + frames) if rng.random() < 0.3 else _PREFACE + frames
    message = b"\x00" + struct.pack(">I", len(good_request_bytes)) + good_request_bytes
    return mutate(rng, b"POST /tensorflow.serving.PredictionService/Predict HTTP/1.1\r\ncontent-type: application/grpc\r\n\r\n" + message)


def raw_exchange(port, data, timeout=5.0):
    """Send bytes to 127.0.0.1:port, half-close, read until the server closes or `timeout`; bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        received = b""
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while len(received) < 1 << 20:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, BrokenPipeError, TimeoutError, socket.timeout):
            pass
    return received


def predict_codes(channel, requests, raw=(), timeout=10.0):
    """Counter of the StatusCode of each PredictRequest (stock stub) and of each raw message (bytes, no stub)."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    raw_predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")  # bytes in, bytes out
    answers = []
    for request in requests:
        try:
            stub.Predict(request, timeout=timeout)
            answers.append((request, grpc.StatusCode.OK, ""))
        except grpc.RpcError as err:
            answers.append((request, err.code(), err.details()))
    for data in raw:
        try:
            raw_predict(data, timeout=timeout)
            answers.append((data, grpc.StatusCode.OK, ""))
        except grpc.RpcError as err:
            answers.append((data, err.code(), err.details()))
    return answers


def main(argv=None):
    import argparse

    from serving.server import start_subprocess

    parser = argparse.ArgumentParser(prog="python -m serving.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--model", action="append", help="model names to aim at (default: every folder)")
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args(argv)
    import os

    models = args.model or sorted(os.listdir(args.model_base_path))
    rng = random.Random(args.seed)
    process, target, rest_url = start_subprocess(args.model_base_path, extra_args=["--rest-header-timeout", "2", "--rest-body-timeout", "2"])
    try:
        started = time.monotonic()
        with grpc.insecure_channel(target) as channel:
            answers = predict_codes(channel, [random_predict_request(rng, models, args.columns) for _ in range(args.count)])
        grpc_codes = Counter(code.name for _, code, _ in answers)
        bad = sum(code not in INPUT_ERROR_CODES for _, code, _ in answers)
        port = int(rest_url.rsplit(":", 1)[1])
        http = Counter()
        for _ in range(args.count // 2):
            data = random_http_request(rng, models, args.columns)
            status = http_exchange(port, data)[0]
            http[status] += 1
            bad += status == 500 or (status is None and needs_answer(data))
        with open(f"/proc/{process.pid}/status") as f:
            peak = next(line for line in f if line.startswith("VmHWM")).split()[1]
        alive = process.poll() is None
        print(f"gRPC {dict(grpc_codes)}\nREST {dict(http)}\npeak RSS {int(peak) // 1024} MiB, {time.monotonic() - started:.1f} s")
        print(f"{bad} unexpected answers (gRPC UNKNOWN/INTERNAL/..., REST 500 or none); server {'alive' if alive else 'DEAD'}")
    finally:
        process.terminate()
        process.wait()
    return 0 if bad == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
