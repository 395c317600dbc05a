"""The embedded model server: TF Serving's gRPC and REST APIs over exported keraszoo SavedModels.

    python -m serving.server --model-base-path saved_models/serving            # every model in the folder
    python -m serving.server --model-config saved_models/serving/models.config  # TF Serving's config file
    python -m serving.server --model-base-path saved_models/serving/gain_breast --model-name gain

gRPC (default 127.0.0.1:8500) implements `tensorflow.serving.PredictionService` (Predict and
GetModelMetadata; Classify, Regress and MultiInference answer UNIMPLEMENTED), `ModelService`
(GetModelStatus; HandleReloadConfigRequest only with `--allow-reload-config`, and then only for base
paths under the configured ones, else PERMISSION_DENIED) and the standard `grpc.health.v1.Health`,
with the stock `tensorflow_serving.apis` protos, so clients written for `tensorflow_model_server`
work unchanged. REST (default 127.0.0.1:8501) follows TF Serving's REST API:

* ``GET /v1/models/NAME[/versions/V | /labels/L]`` — version status;
* ``GET /v1/models/NAME[/versions/V | /labels/L]/metadata`` — signatures;
* ``POST /v1/models/NAME[/versions/V | /labels/L]:predict`` with ``{"signature_name": ..., "instances": [...]}``
  (row format, answered with ``{"predictions": ...}``) or ``{"inputs": ...}`` (columnar, answered with
  ``{"outputs": ...}``). JSON has no NaN, so besides the ``NaN`` literal that TF Serving (and Python)
  accept, ``null`` in a float input means a missing value.
* ``GET /healthz`` (liveness), ``GET /readyz`` (200 once every model has an AVAILABLE version, else 503),
  ``GET /monitoring/prometheus/metrics`` (TF Serving's metric names, see `serving.metrics`).

The REST server runs `--rest-workers` threads; a connection beyond them is answered 503 at once.
Headers must arrive within `--rest-header-timeout` seconds and the body within `--rest-body-timeout`
(else 408 and the connection is closed); a body over `--max-request-bytes` is refused (413) before
it is read. Large responses are streamed (see `serving.httpserver` and `serving.jsonstream`).

Without a version the latest loaded one answers. Errors: unknown model, version or label NOT_FOUND
(HTTP 404); wrong input keys, dtype, rank or width INVALID_ARGUMENT (HTTP 400) naming the expected
signature; more than `--max-rows` rows or a message over `--max-request-bytes` RESOURCE_EXHAUSTED
(HTTP 413). The server binds 127.0.0.1 unless `--host` says otherwise.

`--enable-batching` merges concurrent requests for one signature into one call, with TF Serving's
`--batching-parameters-file` (see `serving.batching`).

SIGTERM or SIGINT stops the server: probes turn NOT_SERVING, requests in flight get a 2 s grace, and
the process ends within `SHUTDOWN_SECONDS` (a second signal ends it at once).

Differences from `tensorflow_model_server`: with `--model-base-path` every version on disk is served
(TF Serving serves the latest unless the config's `model_version_policy` says otherwise;
`serving.export` writes `all` into models.config for both).
"""
import base64
import binascii
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures
from http import HTTPStatus

if __name__ == "__main__":  # `python -m serving.server`: quiet before the protos below import TensorFlow
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose="--verbose" in sys.argv[1:])

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.process import SHUTDOWN_SECONDS, shut_down  # noqa: F401 (re-exported)
from serving.servables import (
    ModelManager,
    ServingError,
    discover_models,
    invalid,
    model_configs_from,
    parse_model_config,
    version_number,
)
from serving.batching import Batcher, parse_batching_parameters
from serving.health import ModelHealth
from serving.httpserver import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_WORKERS,
    DEFAULT_WRITE_TIMEOUT,
    BoundedHTTPServer,
    BoundedRequestHandler,
    HTTPRefusal,
)
from serving.jsonstream import rest_response_chunks
from serving.metrics import Metrics
from serving.tensors import to_numpy, to_tensor_proto

log = logging.getLogger("keraszoo.serving")

#: requests are refused (RESOURCE_EXHAUSTED / HTTP 413) above these sizes.
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024

def tensor_proto_to_numpy(key, proto):
    try:
        return to_numpy(proto)
    except Exception as err:  # malformed TensorProto: wrong content size, unknown dtype, ...
        raise invalid(f"input {key!r} is not a valid TensorProto: {err}") from None


def _version_of(spec):
    return spec.version.value if spec.HasField("version") else None


def _served_labels(manager, name, version, label, signature_name):
    """(model, version, signature) metric labels of a request: only what the server serves, else ""."""
    model = version_text = signature = ""
    if name in manager.model_names():
        model = name
        try:
            servable = manager.lookup(name, version, label)
            version_text = str(servable.version)
            signature = servable.signature(signature_name).name
        except ServingError:
            pass
    return model, version_text, signature


def run_signature(batcher, servable, signature, inputs, output_filter, max_rows):
    """Run a signature, through the request batcher when batching is on."""
    if batcher is None:
        return signature.run(inputs, output_filter, max_rows)
    return batcher.run(servable, signature, inputs, output_filter, max_rows)


def metered(api):
    """Count a gRPC method's requests by status code and time them in `self.metrics` (if any)."""

    def wrap(method):
        @functools.wraps(method)
        def call(self, request, context):
            started = time.perf_counter()
            response, status = None, "UNKNOWN"
            try:
                response = method(self, request, context)
                status = "OK"
                return response
            except Exception:
                code = context.code()  # set by context.abort
                status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                if self.metrics is not None:
                    spec = request.model_spec
                    if response is not None:
                        out = response.model_spec
                        labels = (out.name, str(out.version.value), out.signature_name)
                    else:
                        labels = _served_labels(self.manager, spec.name, _version_of(spec), spec.version_label, spec.signature_name)
                    self.metrics.record_request(api, "GRPC", *labels, status=status, seconds=time.perf_counter() - started)

        return call

    return wrap


# --- gRPC ---------------------------------------------------------------------------------------------
class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService over a ModelManager."""

    def __init__(self, manager, max_rows=DEFAULT_MAX_ROWS, metrics=None, batcher=None):
        self.manager = manager
        self.max_rows = max_rows
        self.metrics = metrics
        self.batcher = batcher

    @metered("predict")
    def Predict(self, request, context):
        spec = request.model_spec
        try:
            servable = self.manager.lookup(spec.name, _version_of(spec), spec.version_label)
            signature = servable.signature(spec.signature_name)
            inputs = signature.decode(request.inputs, self.max_rows)  # shapes checked before any array is made
            outputs = run_signature(self.batcher, servable, signature, inputs, tuple(request.output_filter), self.max_rows)
        except ServingError as err:
            context.abort(err.code, err.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature.name
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(to_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        spec = request.model_spec
        try:
            if not request.metadata_field:
                raise invalid("GetModelMetadataRequest must specify at least one metadata_field (\"signature_def\")")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise invalid(f"metadata field {field!r} is not supported; supported: signature_def")
            servable = self.manager.lookup(spec.name, _version_of(spec), spec.version_label)
        except ServingError as err:
            context.abort(err.code, err.message)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(signature_def_map(servable))
        return response

    def _unimplemented(self, request, context):
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "keraszoo models are imputers: use Predict (Classify, Regress and MultiInference are not served)"
        )

    Classify = Regress = MultiInference = _unimplemented


def signature_def_map(servable):
    result = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in servable.signature_def_map.items():
        result.signature_def[key].CopyFrom(signature_def)
    return result


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService: version status, and replacing the model config.

    HandleReloadConfigRequest is refused (PERMISSION_DENIED) unless `allow_reload_config`: anyone
    who reaches the port could otherwise load a SavedModel from any path, and a SavedModel can run
    file operations. When allowed, every model's base path must resolve (symlinks and ".." followed)
    to a folder at or under one of `reload_roots` (by default the base paths configured at start);
    the resolved path is what gets served, so a symlink swapped afterwards does not redirect it.
    """

    def __init__(self, manager, allow_reload_config=False, reload_roots=()):
        self.manager = manager
        self.allow_reload_config = allow_reload_config
        self.reload_roots = [os.path.realpath(root) for root in reload_roots]

    def GetModelStatus(self, request, context):
        spec = request.model_spec
        try:
            rows = self.manager.status(spec.name, _version_of(spec), spec.version_label)
        except ServingError as err:
            context.abort(err.code, err.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state, message in rows:
            status = response.model_version_status.add(version=version, state=state)
            if message:
                status.status.error_code = 13  # INTERNAL: the version failed to load
                status.status.error_message = message
        return response

    def HandleReloadConfigRequest(self, request, context):
        if not self.allow_reload_config:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "HandleReloadConfigRequest is disabled: start the server with --allow-reload-config to replace "
                "the model config at run time (base paths must then lie under the configured ones)",
            )
        response = model_management_pb2.ReloadConfigResponse()
        try:
            configs = model_configs_from(request.config)
            for config in configs:
                config.base_path = self._allowed_path(config.name, config.base_path)
        except PermissionError as err:
            response.status.error_code = grpc.StatusCode.PERMISSION_DENIED.value[0]
            response.status.error_message = str(err)
            return response
        except ValueError as err:
            response.status.error_code = 3
            response.status.error_message = str(err)
            return response
        self.manager.reload_config(configs)
        return response

    def _allowed_path(self, name, base_path):
        """`base_path` resolved; PermissionError unless it lies at or under one of the reload roots."""
        resolved = os.path.realpath(base_path)
        for root in self.reload_roots:
            if resolved == root or resolved.startswith(root.rstrip(os.sep) + os.sep):
                return resolved
        raise PermissionError(
            f"model {name!r}: base_path {base_path!r} (resolved {resolved!r}) is not under the server's "
            f"configured base paths {self.reload_roots}"
        )


# --- REST ---------------------------------------------------------------------------------------------
_HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    grpc.StatusCode.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
}
_REST_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$"
)


def _json_bytes(value, key):
    """A JSON string (UTF-8) or TF Serving's {"b64": ...} object as bytes; nested lists stay lists."""
    if isinstance(value, list):
        return [_json_bytes(v, key) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f'input {key!r} holds a "b64" value that is not base64') from None
    raise invalid(f'input {key!r} must be a (nested) list of strings (or {{"b64": ...}} objects) for dtype string')


def json_to_array(value, dtype, key):
    """A JSON value as a numpy array of the signature's dtype; null (or NaN) means missing in float inputs.

    String inputs take JSON strings (UTF-8) or TF Serving's ``{"b64": "..."}`` objects for binary data.
    """
    if dtype.name == "string":
        try:
            array = np.asarray(_json_bytes(value, key), dtype=object)
        except RecursionError:
            raise invalid(f"input {key!r} is nested too deeply") from None
        if not all(isinstance(v, bytes) for v in array.flat):  # ragged lists give an array of lists
            raise invalid(f"input {key!r} must be a rectangular (nested) list of strings")
        return array
    numpy_dtype = dtype.as_numpy_dtype
    try:
        array = np.asarray(value)
        if array.dtype.kind in "USO" and not dtype.is_floating:
            raise ValueError
        if array.dtype.kind in "US":
            raise ValueError
        converted = np.asarray(value, dtype=numpy_dtype)
    except (ValueError, TypeError, OverflowError):  # OverflowError: an integer too large for the dtype
        raise invalid(f"input {key!r} must be a (nested) list of numbers for dtype {dtype.name}") from None
    if dtype.is_integer and array.dtype.kind == "f" and not np.array_equal(converted, array):
        raise invalid(f"input {key!r} must hold whole numbers for dtype {dtype.name}")
    return converted


def rest_inputs(body, signature):
    """(inputs dict, row_format) from a TF Serving REST predict body."""
    if not isinstance(body, dict):
        raise invalid('the request body must be a JSON object with "instances" or "inputs"')
    if ("instances" in body) == ("inputs" in body):
        raise invalid('the request body must have exactly one of "instances" (row format) or "inputs" (columnar format)')
    specs = signature.input_specs
    keys = sorted(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid('"instances" must be a non-empty list of rows')
        if len(keys) == 1 and not all(isinstance(row, dict) for row in instances):
            return {keys[0]: json_to_array(instances, specs[keys[0]][0], keys[0])}, True
        if not all(isinstance(row, dict) for row in instances):
            raise invalid(f"signature {signature.describe()} has several inputs: each instance must be an object with keys {keys}")
        found = set().union(*(row.keys() for row in instances))
        if any(set(row) != found for row in instances):
            raise invalid("every instance must have the same keys")
        # unknown keys are kept (as None) so the signature check names them
        return {key: json_to_array([row[key] for row in instances], specs[key][0], key) if key in specs else None for key in found}, True
    given = body["inputs"]
    if len(keys) == 1 and not (isinstance(given, dict) and set(given) == {keys[0]}):
        return {keys[0]: json_to_array(given, specs[keys[0]][0], keys[0])}, False
    if not isinstance(given, dict):
        raise invalid(f'signature {signature.describe()} has several inputs: "inputs" must be an object with keys {keys}')
    return {key: json_to_array(value, specs[key][0], key) if key in specs else None for key, value in given.items()}, False


class _Chunks:
    """A response body already encoded, as an iterable of byte chunks (streamed if large)."""

    def __init__(self, chunks, content_type="application/json"):
        self.chunks = chunks
        self.content_type = content_type


#: the gRPC status (for metrics) of a request refused at the HTTP level.
_REFUSAL_CODE = {
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "RESOURCE_EXHAUSTED",
    HTTPStatus.BAD_REQUEST: "INVALID_ARGUMENT",
    HTTPStatus.LENGTH_REQUIRED: "INVALID_ARGUMENT",
}


def _status_json(rows):
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": state,
                "status": {"error_code": "OK" if not message else "INTERNAL", "error_message": message},
            }
            for version, state, message in rows
        ]
    }


class RestHandler(BoundedRequestHandler):
    """TF Serving's REST API, plus probes and metrics; `server.manager`, `server.max_rows`,
    `server.max_body_bytes`, `server.health` and `server.metrics` configure it.

    ``GET /healthz`` and ``GET /readyz`` are the liveness and readiness probes (see `serving.health`),
    ``GET /monitoring/prometheus/metrics`` the metrics (see `serving.metrics`).
    """

    server_version = "keraszoo-serving"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self.send_json(HTTPStatus.OK, b'{"status": "alive"}')
        if path == "/readyz":
            ready, models = self.server.health.readiness()
            waiting = sorted(name for name, available in models.items() if not available)
            body = {"ready": ready, "models": models}
            if not ready:
                body["error"] = (
                    "the server is stopping" if self.server.health.stopping
                    else f"models without an AVAILABLE version: {waiting}" if waiting
                    else "no model is configured"
                )
            return self.send_json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(body).encode())
        if path == "/monitoring/prometheus/metrics":
            text = self.server.metrics.render().encode()
            return self.send_body(HTTPStatus.OK, [text], content_type="text/plain; version=0.0.4; charset=utf-8")
        self._handle(self._get)

    def do_POST(self):
        self._handle(self._post)

    def _handle(self, method):
        started = time.perf_counter()
        self._labels = None  # (model, version, signature) once a predict request names them
        code = "OK"
        try:
            match = _REST_PATH.match(self.path.split("?", 1)[0])
            if not match:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"unknown path {self.path!r}; expected /v1/models/NAME[...]")
            version = match["version"]
            if version is not None:
                if version_number(version) is None:  # ASCII digits only: "²" passes isdigit, not int
                    raise invalid(f"version must be a positive integer, got {version!r}")
                version = version_number(version)
            status, body = method(match, version)
        except ServingError as err:
            code = err.code.name
            status, body = _HTTP_STATUS.get(err.code, HTTPStatus.INTERNAL_SERVER_ERROR), {"error": err.message}
        except HTTPRefusal as err:
            code = _REFUSAL_CODE.get(err.status, "UNKNOWN")
            status, body = err.status, {"error": err.message}
        except (TimeoutError, ConnectionError):  # the client was too slow or went away: no answer to give
            raise
        except Exception as err:  # answer, log, and keep serving
            log.exception("REST request %s failed", self.path)
            code = "INTERNAL"
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {err}"}
        recorded = False

        def record():  # once, before the answer's last bytes: a client that has its answer sees it counted
            nonlocal recorded
            if not recorded and self._labels is not None and self.server.metrics is not None:
                recorded = True
                self.server.metrics.record_request(
                    "predict", "REST", *self._labels, status=code, seconds=time.perf_counter() - started
                )

        try:
            if isinstance(body, _Chunks):
                try:
                    self.send_body(status, body.chunks, body.content_type, finishing=record)
                except (TimeoutError, ConnectionError):
                    raise
                except Exception as err:  # formatting failed: an error answer if nothing is sent yet
                    if self._responded:
                        raise
                    log.exception("REST request %s failed", self.path)
                    code = "INTERNAL"
                    self.send_json(
                        HTTPStatus.INTERNAL_SERVER_ERROR,
                        json.dumps({"error": f"internal error: {err}"}).encode(),
                        finishing=record,
                    )
            else:
                self.send_json(status, json.dumps(body).encode(), finishing=record)
        finally:
            record()  # the answer could not be sent in full (client gone, write timeout)

    def _get(self, match, version):
        manager = self.server.manager
        if match["verb"]:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"use POST for :{match['verb']}")
        if match["metadata"]:
            servable = manager.lookup(match["name"], version, match["label"])
            metadata = json_format.MessageToDict(signature_def_map(servable), preserving_proto_field_name=True)
            spec = {"name": servable.name, "signature_name": "", "version": str(servable.version)}
            return HTTPStatus.OK, {"model_spec": spec, "metadata": {"signature_def": metadata}}
        return HTTPStatus.OK, _status_json(manager.status(match["name"], version, match["label"]))

    def _post(self, match, version):
        manager = self.server.manager
        if match["verb"] == "predict" and not match["metadata"]:
            self._labels = (match["name"] if match["name"] in manager.model_names() else "", "", "")
        raw = self.read_body()  # HTTPRefusal (413, 411, 400) before reading a body it will not take
        if match["verb"] in ("classify", "regress"):
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f":{match['verb']} is not served; keraszoo models answer :predict")
        if match["verb"] != "predict" or match["metadata"]:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"unknown method in {self.path!r}; use :predict")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nested too deep
            raise invalid(f"request body is not valid JSON: {err}") from None
        servable = manager.lookup(match["name"], version, match["label"])
        self._labels = (servable.name, str(servable.version), "")
        signature_name = body.get("signature_name") if isinstance(body, dict) else None
        if not isinstance(signature_name, (str, type(None))):  # a list or object is unhashable: was a 500
            raise invalid(f'"signature_name" must be a string, got {json.dumps(signature_name)[:100]}')
        signature = servable.signature(signature_name)
        self._labels = (servable.name, str(servable.version), signature.name)
        inputs, row_format = rest_inputs(body, signature)
        outputs = run_signature(self.server.batcher, servable, signature, inputs, (), self.server.max_rows)
        return HTTPStatus.OK, _Chunks(rest_response_chunks(outputs, row_format))


# --- the server ---------------------------------------------------------------------------------------
class ImputationServer:
    """gRPC and REST front ends over one ModelManager. Port 0 picks a free port (see `grpc_port`, `rest_port`)."""

    def __init__(
        self,
        manager,
        host="127.0.0.1",
        port=8500,
        rest_port=8501,
        max_rows=DEFAULT_MAX_ROWS,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
        workers=8,
        allow_reload_config=False,
        reload_roots=None,
        rest_workers=DEFAULT_WORKERS,
        rest_header_timeout=DEFAULT_HEADER_TIMEOUT,
        rest_body_timeout=DEFAULT_BODY_TIMEOUT,
        rest_write_timeout=DEFAULT_WRITE_TIMEOUT,
        health_interval=0.5,
        enable_batching=False,
        batching_parameters=None,
    ):
        self.manager = manager
        self.host = host
        self._port = port
        self._rest_port = rest_port
        self.max_rows = max_rows
        self.max_request_bytes = max_request_bytes
        self.workers = workers
        self.allow_reload_config = allow_reload_config
        # HandleReloadConfigRequest may only name base paths under these (default: those configured now)
        self.reload_roots = list(reload_roots) if reload_roots is not None else configured_base_paths(manager)
        self.rest_options = dict(
            workers=rest_workers,
            header_timeout=rest_header_timeout,
            body_timeout=rest_body_timeout,
            write_timeout=rest_write_timeout,
            max_body_bytes=max_request_bytes,
        )
        self.metrics = Metrics()
        self.health = ModelHealth(manager, interval=health_interval)
        # TF Serving's --enable_batching: a dict as parse_batching_parameters returns (None: its defaults)
        self.enable_batching = enable_batching
        self.batching_parameters = dict(batching_parameters or parse_batching_parameters(""))
        self.batcher = None
        self.grpc_port = self.rest_port = None
        self._grpc = self._http = None

    def start(self):
        self.manager.start()
        if self.enable_batching:
            self.batcher = Batcher(**self.batching_parameters, metrics=self.metrics)
        options = [
            ("grpc.max_receive_message_length", self.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.manager, self.max_rows, self.metrics, self.batcher), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(self.manager, self.allow_reload_config, self.reload_roots), self._grpc
        )
        self.health.add_to_server(self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._port}")
        if self.grpc_port == 0:
            raise OSError(f"cannot bind gRPC to {self.host}:{self._port}")
        self._grpc.start()
        self.health.start()
        if self._rest_port is not None:
            self._http = BoundedHTTPServer((self.host, self._rest_port), RestHandler, **self.rest_options)
            self._http.manager = self.manager
            self._http.max_rows = self.max_rows
            self._http.health = self.health
            self._http.metrics = self.metrics
            self._http.batcher = self.batcher
            self.rest_port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, name="keraszoo-rest", daemon=True).start()
        return self

    def stop(self, grace=2.0):
        self.health.stop()  # probes say NOT_SERVING / 503 while requests in flight finish
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self.batcher is not None:
            self.batcher.stop()
        self.manager.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def configured_base_paths(manager):
    """The base paths a manager serves from: its folder of models, or each configured model's folder."""
    if manager.base_path is not None:
        return [manager.base_path]
    return [config.base_path for config in manager._configs]


def make_manager(model_config=None, model_base_path=None, model_name=None, poll_seconds=1.0):
    """A ModelManager from the command line's choices (exactly one of the config file or base path)."""
    if (model_config is None) == (model_base_path is None):
        raise ValueError("give exactly one of --model-config FILE or --model-base-path DIR")
    if model_config is not None:
        with open(model_config) as f:
            return ModelManager(parse_model_config(f.read()), poll_seconds=poll_seconds)
    if model_name:  # TF Serving's --model_name/--model_base_path: the folder is one model's versions
        configs = discover_models(model_base_path)
        if len(configs) != 1 or configs[0].base_path != os.path.abspath(model_base_path):
            raise ValueError(f"--model-name needs --model-base-path to be one model's folder of versions: {model_base_path}")
        configs[0].name = model_name
        return ModelManager(configs, poll_seconds=poll_seconds)
    return ModelManager(base_path=model_base_path, poll_seconds=poll_seconds)


def set_tf_threads(spec):
    """Size TensorFlow's thread pools from "INTER,INTRA" (0 = TensorFlow's default); before any TF op runs."""
    import tensorflow as tf

    try:
        inter, intra = (int(part) for part in spec.split(","))
        if inter < 0 or intra < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"--tf-threads expects INTER,INTRA (non-negative integers), got {spec!r}") from None
    if (inter, intra) == (0, 0):
        return  # TensorFlow's defaults: nothing to set (and nothing that must happen before its first op)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    tf.config.threading.set_intra_op_parallelism_threads(intra)


def start_subprocess(model_base_path, rest=True, extra_args=(), timeout=120):
    """Start `python -m serving.server` on free localhost ports in a child process.

    Returns (process, grpc target "127.0.0.1:PORT", REST URL or None); stop it with `process.terminate()`.
    """
    import subprocess

    command = [sys.executable, "-m", "serving.server", "--model-base-path", model_base_path, "--port", "0"]
    command += ["--rest-port", "0" if rest else "-1", *extra_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, process.kill)  # a server that never prints its line is not waited for forever
    timer.start()
    try:
        line = process.stdout.readline().strip()
    finally:
        timer.cancel()
    if " grpc " not in line:
        process.kill()
        raise RuntimeError(f"the server did not start (exit code {process.wait()}): {line!r}")
    grpc_target, _, rest_url = line.split(" grpc ")[1].partition(" rest ")
    return process, grpc_target, rest_url or None


def main(argv=None, prog="python -m serving.server"):
    from keraszoo.console import ArgumentParser, quiet_tensorflow

    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-config", help="TF Serving model config file (text format, model_config_list)")
    source.add_argument("--model-base-path", help="folder of exported models (or, with --model-name, one model's versions)")
    parser.add_argument("--model-name", help="serve --model-base-path as one model under this name")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0 = any free port)")
    parser.add_argument("--rest-port", type=int, default=8501, help="REST port (0 = any free port, -1 = no REST)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new or removed versions (0 = never)")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="rows per request above which it is refused")
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help=f"largest gRPC message and REST body accepted (default {DEFAULT_MAX_REQUEST_BYTES}: 64 MiB; TF Serving allows 2 GiB - 1, "
        "but every worker thread may hold one); above it: RESOURCE_EXHAUSTED (gRPC), 413 (REST)",
    )
    parser.add_argument("--workers", type=int, default=8, help="gRPC worker threads")
    parser.add_argument(
        "--allow-reload-config",
        action="store_true",
        help="accept ModelService.HandleReloadConfigRequest (off: PERMISSION_DENIED); base paths must lie under the configured ones",
    )
    parser.add_argument("--enable-batching", action="store_true", help="merge concurrent requests for one signature (TF Serving's --enable_batching)")
    parser.add_argument(
        "--batching-parameters-file",
        help="TF Serving's batching parameters (text format: max_batch_size, batch_timeout_micros, num_batch_threads, max_enqueued_batches)",
    )
    parser.add_argument("--rest-workers", type=int, default=DEFAULT_WORKERS, help="REST worker threads (connections beyond: 503)")
    parser.add_argument(
        "--rest-header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, help="seconds a REST request may take to send its headers"
    )
    parser.add_argument(
        "--rest-body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT, help="seconds a REST request may take to send its body"
    )
    parser.add_argument(
        "--tf-threads",
        default="0,0",
        metavar="INTER,INTRA",
        help="TensorFlow's inter- and intra-op thread pools (default 0,0: TensorFlow's own choice, one per core); "
        "1,1 was no faster on 2 cores, see benchmarks/results/serving.md",
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and warnings")
    args = parser.parse_args(argv)
    if args.rest_workers < 1 or not (args.rest_header_timeout > 0 and args.rest_body_timeout > 0):
        raise SystemExit("serving.server: --rest-workers must be at least 1 and the REST timeouts positive")
    quiet_tensorflow(verbose=args.verbose)  # TensorFlow is imported already (by the protos): this sets its log levels
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        set_tf_threads(args.tf_threads)
    except (ValueError, RuntimeError) as err:  # RuntimeError: TensorFlow already started in this process
        raise SystemExit(f"serving.server: {err}") from None
    try:
        manager = make_manager(args.model_config, args.model_base_path, args.model_name, args.poll_seconds)
        batching = None
        if args.batching_parameters_file:
            with open(args.batching_parameters_file) as f:
                batching = parse_batching_parameters(f.read())
    except (OSError, ValueError) as err:
        raise SystemExit(f"serving.server: {err}") from None
    server = ImputationServer(
        manager,
        host=args.host,
        port=args.port,
        rest_port=None if args.rest_port < 0 else args.rest_port,
        max_rows=args.max_rows,
        max_request_bytes=args.max_request_bytes,
        workers=args.workers,
        allow_reload_config=args.allow_reload_config,
        rest_workers=args.rest_workers,
        rest_header_timeout=args.rest_header_timeout,
        rest_body_timeout=args.rest_body_timeout,
        enable_batching=args.enable_batching or batching is not None,
        batching_parameters=batching,
    ).start()
    done = threading.Event()

    def on_signal(*_):
        if done.is_set():  # a second SIGINT / SIGTERM: stop waiting for the graceful shutdown
            os._exit(1)
        done.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    rest = f" rest http://{args.host}:{server.rest_port}" if server.rest_port else ""
    # One parseable line: tests and scripts read the bound ports from it.
    print(f"serving {manager.model_names()} grpc {args.host}:{server.grpc_port}{rest}", flush=True)
    done.wait()
    return shut_down(server)


if __name__ == "__main__":
    sys.exit(main())
