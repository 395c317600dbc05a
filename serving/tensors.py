"""numpy <-> TensorProto for the server and the client, with a fast path for dense numeric arrays.

`tf.make_tensor_proto` / `tf.make_ndarray` handle every case but cost tens of microseconds of Python
each; a one-row imputation takes a few hundred, so the common case (float32/int32/int64/float64
arrays sent as raw `tensor_content`) is packed and unpacked directly, and everything else (values in
`float_val`, strings, ...) goes through TensorFlow's own converters.
"""
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


def to_tensor_proto(array):
    """A TensorProto holding `array` (raw little-endian content for the common numeric dtypes)."""
    array = np.asarray(array)
    enum = _FAST_DTYPES.get(array.dtype)
    if enum is None:
        return tf.make_tensor_proto(array)
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape])
    return tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape, tensor_content=np.ascontiguousarray(array).tobytes())


def to_numpy(proto):
    """The numpy array a TensorProto holds (ValueError if it is malformed)."""
    dtype = _FAST_NUMPY.get(proto.dtype)
    if dtype is not None and proto.tensor_content:
        shape = [d.size for d in proto.tensor_shape.dim]
        if any(s < 0 for s in shape) or proto.tensor_shape.unknown_rank:
            raise ValueError("tensor_shape must be fully known")
        count = int(np.prod(shape, dtype=np.int64))
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes, shape {shape} of {dtype} needs {count * dtype.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return tf.make_ndarray(proto)
