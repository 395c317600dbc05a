"""Server-side request batching, as `tensorflow_model_server --enable_batching`.

Concurrent requests for one (model, version, signature, output filter) are merged along their first
dimension into one signature call, and each gets its own rows of the outputs back. The parameters
are TF Serving's, read from its batching parameters file (text format of `BatchingParameters`)::

    max_batch_size { value: 32 }          # rows in one merged call
    batch_timeout_micros { value: 1000 }  # how long a batch waits for more requests once opened
    num_batch_threads { value: 2 }        # threads running merged calls
    max_enqueued_batches { value: 100 }   # closed batches waiting for a thread; beyond: UNAVAILABLE

A batch is run when it is full or its timeout has passed since its first request (with a timeout
of 0, as soon as a batch thread is free: requests arriving while every thread is busy are merged).
Fields left out of the file take TF Serving's defaults (1000 rows, timeout 0, a thread per core, 10
enqueued batches). Only requests
whose every input has a variable first dimension, the signature's dtype, rank and other dimensions,
and at most `max_batch_size` rows are merged; any other request (multiple_imputation's scalar `n`,
a malformed one, an oversized one) runs alone, exactly as without batching, so its error is the same.
If a merged call fails (a graph assertion on one request's values), each request of the batch is
run alone, so only the bad one gets the error. Outputs must have the merged row count first; a
signature whose outputs do not is marked unbatchable and its requests run alone from then on.

TF Serving's other fields (`allowed_batch_sizes`, `pad_variable_length_inputs`, ...) are accepted
and ignored: padding to allowed sizes helps fixed-shape accelerators, not these graphs.
"""
import collections
import logging
import os
import re
import threading
import time

import grpc
import numpy as np

from serving.servables import ServingError

log = logging.getLogger("keraszoo.serving")

#: fields left out take the defaults of TF Serving's BasicBatchScheduler (threads: one per core)
_FIELDS = {"max_batch_size": 1000, "batch_timeout_micros": 0, "num_batch_threads": os.cpu_count() or 1, "max_enqueued_batches": 10}
_IGNORED = {
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
    "thread_pool_name",
    "batch_resource_options",
}
_ENTRY = re.compile(r"\s*([A-Za-z_]+)\s*(?:\{\s*value\s*:\s*([^\s}]+)\s*\}|:\s*([^\s{}]+))")


def parse_batching_parameters(text):
    """{max_batch_size, batch_timeout_micros, num_batch_threads, max_enqueued_batches} from TF Serving's text format."""
    params = dict(_FIELDS)
    text = re.sub(r"#[^\n]*", "", text)
    position = 0
    while text[position:].strip():
        match = _ENTRY.match(text, position)
        if not match:
            raise ValueError(f"batching parameters: cannot parse {text[position:].strip()[:40]!r}")
        key, value = match[1], match[2] if match[2] is not None else match[3]
        position = match.end()
        if key in _IGNORED:
            continue
        if key not in _FIELDS:
            raise ValueError(f"batching parameters: unknown field {key!r}; known: {sorted(_FIELDS)} (and TF Serving's {sorted(_IGNORED)})")
        try:
            params[key] = int(value)
        except ValueError:
            raise ValueError(f"batching parameters: {key} must be an integer, got {value!r}") from None
        if params[key] < (0 if key in ("batch_timeout_micros",) else 1):
            raise ValueError(f"batching parameters: {key} must be {'non-negative' if key == 'batch_timeout_micros' else 'positive'}")
    return params


class _Task:
    __slots__ = ("inputs", "rows", "done", "result", "error")

    def __init__(self, inputs, rows):
        self.inputs = inputs
        self.rows = rows
        self.done = threading.Event()
        self.result = None
        self.error = None


class _Batch:
    __slots__ = ("key", "servable", "signature", "output_filter", "tasks", "rows", "deadline")

    def __init__(self, key, servable, signature, output_filter, deadline):
        self.key = key
        self.servable = servable
        self.signature = signature
        self.output_filter = output_filter
        self.tasks = []
        self.rows = 0
        self.deadline = deadline


class Batcher:
    """Merges concurrent requests per (model, version, signature, output filter); see the module."""

    def __init__(self, max_batch_size=1000, batch_timeout_micros=0, num_batch_threads=2, max_enqueued_batches=10, metrics=None):
        self.max_batch_size = max_batch_size
        self.timeout = batch_timeout_micros / 1e6
        self.max_enqueued_batches = max_enqueued_batches
        self.metrics = metrics
        self._cond = threading.Condition()
        self._open = {}  # key -> _Batch still taking requests
        self._ready = collections.deque()  # closed batches waiting for a thread
        self._unbatchable = set()  # signatures whose outputs did not have the merged rows first
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"keraszoo-batch-{i}", daemon=True) for i in range(num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def _batchable_rows(self, signature, inputs, max_rows):
        """The request's row count if it can be merged, else None (it then runs alone)."""
        if id(signature) in self._unbatchable or set(inputs) != set(signature.input_specs):
            return None
        rows = None
        for key, value in inputs.items():
            dtype, dims = signature.input_specs[key]
            if dims is None or len(dims) < 1 or dims[0] >= 0 or not isinstance(value, np.ndarray):
                return None
            if value.dtype != dtype.as_numpy_dtype or value.ndim != len(dims):
                return None
            if any(want >= 0 and got != want for got, want in zip(value.shape[1:], dims[1:])):
                return None
            if rows is None:
                rows = value.shape[0]
            elif value.shape[0] != rows:
                return None
        if not rows or rows > self.max_batch_size or (max_rows is not None and rows > max_rows):
            return None
        return rows

    def run(self, servable, signature, inputs, output_filter=(), max_rows=None):
        """`signature.run(inputs, output_filter, max_rows)`, merged with concurrent requests where it can be."""
        rows = self._batchable_rows(signature, inputs, max_rows)
        if rows is None:
            return signature.run(inputs, output_filter, max_rows)
        task = _Task(inputs, rows)
        key = (servable.name, servable.version, signature.name, tuple(output_filter))
        with self._cond:
            if self._stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the server is stopping")
            batch = self._open.get(key)
            if batch is not None and batch.rows + rows > self.max_batch_size:
                self._close(key)
                batch = None
            if batch is None:
                if len(self._ready) >= self.max_enqueued_batches:
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        f"the batch queue is full ({self.max_enqueued_batches} batches waiting); retry later",
                    )
                batch = self._open[key] = _Batch(key, servable, signature, tuple(output_filter), time.monotonic() + self.timeout)
            batch.tasks.append(task)
            batch.rows += rows
            if batch.rows >= self.max_batch_size:
                self._close(key)
            self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def _close(self, key):
        self._ready.append(self._open.pop(key))

    def _work(self):
        while True:
            with self._cond:
                while True:
                    if self._ready:
                        batch = self._ready.popleft()
                        break
                    if self._stopped and not self._open:
                        return
                    now = time.monotonic()
                    for key in [k for k, b in self._open.items() if b.deadline <= now or self._stopped]:
                        self._close(key)
                    if self._ready:
                        continue
                    wait = min((b.deadline for b in self._open.values()), default=now + 1.0) - now
                    self._cond.wait(max(wait, 0.0005))
            self._process(batch)

    def _process(self, batch):
        tasks, signature = batch.tasks, batch.signature
        try:
            if len(tasks) == 1:
                outputs = signature.run(tasks[0].inputs, batch.output_filter)
                self._finish(tasks[0], outputs)
            else:
                merged = {key: np.concatenate([task.inputs[key] for task in tasks]) for key in tasks[0].inputs}
                try:
                    outputs = signature.run(merged, batch.output_filter)
                except ServingError:
                    outputs = None  # one request's values failed a check: answer each on its own
                if outputs is not None and any(
                    np.ndim(value) < 1 or len(value) != batch.rows for value in outputs.values()
                ):
                    log.warning("signature %s of %s: outputs do not have the merged rows first; not batching it", signature.name, batch.key[0])
                    self._unbatchable.add(id(signature))
                    outputs = None
                if outputs is None:
                    for task in tasks:
                        self._run_alone(task, signature, batch.output_filter)
                else:
                    start = 0
                    for task in tasks:
                        self._finish(task, {key: value[start : start + task.rows] for key, value in outputs.items()})
                        start += task.rows
            if self.metrics is not None:
                self.metrics.record_batch(batch.key[0], batch.key[1], batch.key[2], batch.rows)
        except BaseException as err:  # never leave a request waiting
            for task in tasks:
                if not task.done.is_set():
                    task.error = err if isinstance(err, ServingError) else ServingError(grpc.StatusCode.INTERNAL, f"batch failed: {err}")
                    task.done.set()
            if not isinstance(err, Exception):
                raise

    @staticmethod
    def _finish(task, outputs):
        task.result = outputs
        task.done.set()

    @staticmethod
    def _run_alone(task, signature, output_filter):
        try:
            task.result = signature.run(task.inputs, output_filter)
        except ServingError as err:
            task.error = err
        except Exception as err:
            task.error = ServingError(grpc.StatusCode.INTERNAL, f"internal error: {err}")
        task.done.set()

    def stop(self):
        """Run what is queued, then end the batch threads."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
