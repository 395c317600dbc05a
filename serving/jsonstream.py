"""TF Serving's REST predict responses as JSON text, produced a block of values at a time.

The whole-array route (``array.astype(str)`` for float32's shortest decimal form, then ``tolist``
and ``json.dumps``) holds a string array 32 times the size of the float32 output, then Python
floats (8x) and the text. Here each block of at most `BLOCK_VALUES` values is converted the same way
and turned into text before the next, so the memory held is a block plus the chunk being sent, and
the bytes are exactly ``json.dumps`` of the whole-array route: ``{"predictions": ...}`` for the row
format, ``{"outputs": ...}`` for the columnar one, float32 values in their shortest form (17.91,
not 17.90999984741211), ``NaN``/``Infinity`` as Python's json writes them.
"""
import base64
import json

import numpy as np

#: values converted to text at a time.
BLOCK_VALUES = 4096
#: text gathered into one chunk before it is encoded and handed on.
CHUNK_CHARS = 64 * 1024


def _json_string(value):
    """A string output's bytes as a JSON string (UTF-8), or TF Serving's {"b64": ...} when not UTF-8."""
    if isinstance(value, list):
        return [_json_string(v) for v in value]
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}


def json_list(array):
    """`array` as nested Python lists (float32 through its shortest decimal form; strings as text)."""
    if array.dtype == np.float32:
        array = array.astype(str).astype(np.float64)
    if array.dtype == object:
        return _json_string(array.tolist())
    return array.tolist()


def _array_text(array):
    """JSON text pieces of `array`, never converting more than BLOCK_VALUES values at once."""
    if array.ndim == 0 or array.size <= BLOCK_VALUES:
        yield json.dumps(json_list(array))
        return
    row_values = np.size(array[0]) if len(array) else 0
    yield "["
    if row_values > BLOCK_VALUES:  # rows too large for one block: descend into each
        for i in range(len(array)):
            if i:
                yield ", "
            yield from _array_text(array[i])
    else:
        step = max(1, BLOCK_VALUES // max(1, row_values))
        for start in range(0, len(array), step):
            if start:
                yield ", "
            yield json.dumps(json_list(array[start : start + step]))[1:-1]
    yield "]"


def _row_dicts_text(outputs):
    """Row format with several outputs: [{key: row, ...}, ...], a block of rows at a time."""
    n = min(len(value) for value in outputs.values())
    row_values = sum(np.size(value[0]) for value in outputs.values() if len(value)) if n else 0
    step = max(1, BLOCK_VALUES // max(1, row_values))
    yield "["
    for start in range(0, n, step):
        if start:
            yield ", "
        lists = {key: json_list(value[start : min(n, start + step)]) for key, value in outputs.items()}
        rows = [{key: value[i] for key, value in lists.items()} for i in range(min(n, start + step) - start)]
        yield json.dumps(rows)[1:-1]
    yield "]"


def _pieces(outputs, row_format):
    if not row_format:
        yield '{"outputs": '
        if len(outputs) == 1:
            yield from _array_text(next(iter(outputs.values())))
        else:
            yield "{"
            for i, (key, value) in enumerate(outputs.items()):
                yield (", " if i else "") + json.dumps(key) + ": "
                yield from _array_text(value)
            yield "}"
        yield "}"
        return
    yield '{"predictions": '
    if len(outputs) == 1:
        yield from _array_text(next(iter(outputs.values())))
    else:
        yield from _row_dicts_text(outputs)
    yield "}"


def rest_response_chunks(outputs, row_format):
    """UTF-8 chunks (about CHUNK_CHARS each) of the REST predict response for `outputs` (dict of arrays)."""
    gathered, size = [], 0
    for piece in _pieces(outputs, row_format):
        gathered.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(gathered).encode()
            gathered, size = [], 0
    if gathered:
        yield "".join(gathered).encode()


def rest_response_json(outputs, row_format):
    """The whole response as bytes (small responses, tests)."""
    return b"".join(rest_response_chunks(outputs, row_format))
