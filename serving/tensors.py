"""numpy <-> TensorProto for the server and the client, with a fast path for dense numeric arrays.

`tf.make_tensor_proto` / `tf.make_ndarray` handle every case but cost tens of microseconds of Python
each; a one-row imputation takes a few hundred, so the common case (float32/int32/int64/float64
arrays sent as raw `tensor_content`) is packed and unpacked directly, and everything else (values in
`float_val`, strings, ...) goes through TensorFlow's own converters.

A TensorProto's header (dtype, shape) is read before its values: `tf.make_ndarray` expands repeated
values (`float_val`, ...) to the declared shape, so a 21-byte proto declaring [10^8] would become a
400 MB array. `to_numpy` refuses any tensor whose declared shape needs more than `max_bytes`
(`TensorTooLarge`), and `declared_shape` lets a caller check the shape against a signature first.
"""
import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

_FAST_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
}
_FAST_NUMPY = {enum: dtype for dtype, enum in _FAST_DTYPES.items()}

#: the most bytes one decoded tensor may take (the server's default request size limit: a tensor sent
#: as raw `tensor_content` cannot be larger, so one sent as repeated values may not expand beyond it).
MAX_TENSOR_BYTES = 64 * 1024 * 1024
#: TF Serving's own gRPC message limit, for reference: `builder.SetMaxMessageSize(tensorflow::kint32max)`
#: in tensorflow_serving/model_servers/server.cc (2 GiB - 1, changed with
#: `--grpc_channel_arguments=grpc.max_receive_message_length=N`). serving.server refuses messages above
#: its `--max-request-bytes` (64 MiB by default, RESOURCE_EXHAUSTED): TF Serving's value would let one
#: request hold 2 GiB per worker thread.
TF_SERVING_MAX_MESSAGE_BYTES = 2**31 - 1


class TensorTooLarge(ValueError):
    """A TensorProto whose declared shape needs more memory than the caller allows."""


def dtype_name(enum):
    """'float32' for DT_FLOAT; 'DataType 999' for values TensorFlow does not know."""
    try:
        return tf.dtypes.as_dtype(enum).name
    except (TypeError, ValueError):
        return f"DataType {enum}"


def declared_shape(proto):
    """The shape a TensorProto declares, as a tuple (ValueError unless fully known and non-negative)."""
    if proto.tensor_shape.unknown_rank:
        raise ValueError("tensor_shape must be fully known (unknown_rank is set)")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(s < 0 for s in shape):
        raise ValueError(f"tensor_shape must be fully known and non-negative, got {list(shape)}")
    return shape


def declared_bytes(proto):
    """Bytes the numpy array of `proto` would take (from its header only; ValueError for unknown dtypes)."""
    count = 1
    for size in declared_shape(proto):
        count *= size  # Python integers: no overflow whatever the declared sizes
    try:
        itemsize = np.dtype(tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype).itemsize
    except (TypeError, ValueError):
        raise ValueError(f"unsupported dtype {dtype_name(proto.dtype)}") from None
    return count * itemsize


def to_tensor_proto(array):
    """A TensorProto holding `array` (raw little-endian content for the common numeric dtypes)."""
    array = np.asarray(array)
    enum = _FAST_DTYPES.get(array.dtype)
    if enum is None:
        return tf.make_tensor_proto(array)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape])
    return tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape, tensor_content=np.ascontiguousarray(array).tobytes())


def to_numpy(proto, max_bytes=MAX_TENSOR_BYTES):
    """The numpy array a TensorProto holds (ValueError if it is malformed, TensorTooLarge above `max_bytes`)."""
    dtype = _FAST_NUMPY.get(proto.dtype)
    if dtype is not None and proto.tensor_content:
        shape = [d.size for d in proto.tensor_shape.dim]
        if any(s < 0 for s in shape) or proto.tensor_shape.unknown_rank:
            raise ValueError("tensor_shape must be fully known")
        count = math.prod(shape)  # Python integers: a numpy reduction cost ~5 us a request
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes, shape {shape} of {dtype} needs {count * dtype.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    size = declared_bytes(proto)
    if max_bytes is not None and size > max_bytes:
        raise TensorTooLarge(
            f"tensor of shape {list(declared_shape(proto))} and dtype {dtype_name(proto.dtype)} needs {size} bytes, "
            f"over the limit of {max_bytes}"
        )
    return tf.make_ndarray(proto)
