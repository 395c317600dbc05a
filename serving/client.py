"""`ImputeClient`: impute rows over TF Serving's gRPC API (the embedded server or `tensorflow_model_server`).

    from serving.client import ImputeClient
    client = ImputeClient("127.0.0.1:8500")
    completed = client.impute("gain_breast", frame)            # pandas in, pandas out (index, columns kept)
    completed = client.impute("gain_breast", rows, version=1)  # numpy in, numpy out
    draws = client.multiple_imputation("gain_breast", rows, n=5)

Only the stock `tensorflow_serving.apis` stubs are used, so the same code talks to the official
server. NaN marks missing values; rows are a table [rows, features] or images [rows, H, W, C].
Server errors arise as `grpc.RpcError` (its `code()` and `details()` name the problem); input that
cannot be sent (non-numeric columns, a rank other than 2 or 4) raises ValueError before any request
is made. `predict_proba` queries an exported classifier.
"""
import grpc
import numpy as np
import pandas as pd
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.tensors import to_numpy, to_tensor_proto

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class ImputeClient:
    """A gRPC client for exported keraszoo imputers; `target` is "host:port"."""

    def __init__(self, target="127.0.0.1:8500", timeout=30.0, channel=None):
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        self.channel = channel or grpc.insecure_channel(target, options=options)
        self.timeout = timeout
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def impute(self, model, rows, version=None, version_label=None):
        """Rows with NaN for missing values, completed; numpy or pandas in, the same type out."""
        values, rebuild = _as_rows(rows)
        response = self.predict(model, {"x": values}, version=version, version_label=version_label)
        return rebuild(to_numpy(response.outputs["imputed"]))

    def impute_with_mask(self, model, rows, mask, version=None, version_label=None):
        """Rows completed where `mask` is 0 (1 = observed); numpy or pandas in, the same type out."""
        values, rebuild = _as_rows(rows)
        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != values.shape:
            raise ValueError(f"mask has shape {mask.shape} but rows have shape {values.shape}")
        response = self.predict(
            model, {"x": values, "mask": mask}, signature="impute_with_mask", version=version, version_label=version_label
        )
        return rebuild(to_numpy(response.outputs["imputed"]))

    def predict_proba(self, model, rows, version=None, version_label=None):
        """Class probabilities [rows, n_classes] of incomplete rows (NaN = missing) from an exported classifier."""
        values, _ = _as_rows(rows)
        response = self.predict(model, {"x": values}, signature="predict", version=version, version_label=version_label)
        return to_numpy(response.outputs["probabilities"])

    def multiple_imputation(self, model, rows, n, version=None, version_label=None):
        """`n` imputations of `rows`, a numpy array [n, rows, features] (generative models only)."""
        values, _ = _as_rows(rows)
        response = self.predict(
            model,
            {"x": values, "n": np.asarray(int(n), dtype=np.int32)},
            signature="multiple_imputation",
            version=version,
            version_label=version_label,
        )
        return to_numpy(response.outputs["imputations"])

    def log_likelihood(self, model, rows, samples=1000, version=None, version_label=None):
        """Estimated log-density of each row's observed entries (NaN = missing), [rows] (density models, e.g. MIWAE)."""
        values, _ = _as_rows(rows)
        response = self.predict(
            model,
            {"x": values, "samples": np.asarray(int(samples), dtype=np.int32)},
            signature="log_likelihood",
            version=version,
            version_label=version_label,
        )
        return to_numpy(response.outputs["log_likelihood"])

    def log_prob(self, model, rows, version=None, version_label=None):
        """Exact log-density of complete rows (no NaN), [rows] (models with an exact density: the flows)."""
        values, _ = _as_rows(rows)
        response = self.predict(model, {"x": values}, signature="log_prob", version=version, version_label=version_label)
        return to_numpy(response.outputs["log_prob"])

    def predict(self, model, inputs, signature="serving_default", version=None, version_label=None):
        """A raw Predict call: `inputs` maps input names to numpy arrays; returns the PredictResponse."""
        request = predict_pb2.PredictRequest()
        _fill_spec(request.model_spec, model, version, version_label)
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(to_tensor_proto(value))
        return self.predictions.Predict(request, timeout=self.timeout)

    def metadata(self, model, version=None):
        """{signature name: SignatureDef} of the served version."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        _fill_spec(request.model_spec, model, version, None)
        response = self.predictions.GetModelMetadata(request, timeout=self.timeout)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return dict(signatures.signature_def)

    def status(self, model, version=None):
        """[(version, state name)] of the model's versions, e.g. [(1, "AVAILABLE")]."""
        request = get_model_status_pb2.GetModelStatusRequest()
        _fill_spec(request.model_spec, model, version, None)
        response = self.models.GetModelStatus(request, timeout=self.timeout)
        names = get_model_status_pb2.ModelVersionStatus.State.Name
        return [(status.version, names(status.state)) for status in response.model_version_status]

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fill_spec(spec, model, version, version_label):
    spec.name = model
    if version is not None:
        spec.version.value = int(version)
    if version_label:
        spec.version_label = version_label


def _as_rows(rows):
    """(float32 [rows, features] array, function turning the imputed array back into `rows`'s type)."""
    if isinstance(rows, pd.DataFrame):
        non_numeric = [str(c) for c in rows.columns if not pd.api.types.is_numeric_dtype(rows[c])]
        if non_numeric:
            raise ValueError(f"columns {non_numeric} are not numeric; the imputer takes numeric columns only")
        index, columns = rows.index, rows.columns
        return rows.to_numpy(dtype=np.float32), lambda out: pd.DataFrame(out, index=index, columns=columns)
    try:
        values = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError("rows must be numeric (NaN marks missing values)") from None
    if values.ndim not in (2, 4):
        raise ValueError(f"rows must be a 2-D array [rows, features] or images [rows, H, W, C], got shape {values.shape}")
    return values, lambda out: out
