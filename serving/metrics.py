"""Request metrics in Prometheus' text format, named as TF Serving exports them.

TF Serving serves ``GET /monitoring/prometheus/metrics`` (with a monitoring config) and names its
metrics after TensorFlow's monitoring paths, ``/`` becoming ``:``. The same names are used here:

* ``:tensorflow:serving:request_count`` (counter) — labels ``model_name`` and ``status`` (the gRPC
  status code's name, "OK", "INVALID_ARGUMENT", ...) as TF Serving has them, plus ``model_version``
  and ``signature_name``;
* ``:tensorflow:serving:request_latency`` (histogram, microseconds, TF Serving's buckets: 10 x 1.8^i,
  33 of them) — labels ``model_name``, ``API`` ("predict", "get_model_metadata", ...) and
  ``entrypoint`` ("GRPC" or "REST") as TF Serving has them, plus ``model_version`` and ``signature_name``;
* ``:tensorflow:serving:batching_session:processed_batch_size`` (histogram of the rows per merged
  call) and ``:tensorflow:serving:batching_session:wrapped_run_count`` (merged calls), when
  request batching is on.

Label values come only from what the server serves (a request for an unknown model, version or
signature is counted with an empty label), so requests cannot grow the set of series without bound.
Every update takes one lock; rendering copies under it and formats outside.
"""
import math
import threading

LATENCY_BUCKETS_US = tuple(round(10 * 1.8**i, 6) for i in range(33))
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(15))  # TF Serving's batch size buckets: 1, 2, 4, ..., 16384

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
BATCH_RUNS = ":tensorflow:serving:batching_session:wrapped_run_count"

_HELP = {
    REQUEST_COUNT: ("counter", "The total number of requests."),
    REQUEST_LATENCY: ("histogram", "Distribution of wall time (in microseconds) for Tensorflow Serving request."),
    BATCH_SIZE: ("histogram", "Tracks the batch size distribution on processed batches."),
    BATCH_RUNS: ("counter", "Tracks the number of batched calls of a signature."),
}


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs, extra=""):
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)
    if extra:
        inner = f"{inner},{extra}" if inner else extra
    return "{" + inner + "}" if inner else ""


def _number(value):
    if value == math.inf:
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


class _Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def add(self, value):
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        self.sum += value
        self.count += 1

    def copy(self):
        other = _Histogram(self.bounds)
        other.counts, other.sum, other.count = list(self.counts), self.sum, self.count
        return other


class Metrics:
    """Thread-safe counters and histograms; `render()` is the Prometheus text exposition."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counters = {}  # (name, labels tuple) -> value
        self._histograms = {}  # (name, labels tuple) -> _Histogram

    def increment(self, name, labels, by=1):
        key = (name, tuple(labels))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + by

    def observe(self, name, labels, value, bounds):
        key = (name, tuple(labels))
        with self._lock:
            histogram = self._histograms.get(key)
            if histogram is None:
                histogram = self._histograms[key] = _Histogram(bounds)
            histogram.add(value)

    def record_request(self, api, entrypoint, model="", version="", signature="", status="OK", seconds=0.0):
        """One request: its count by status and its latency (TF Serving's names and labels, see the module)."""
        version = "" if version in (None, "") else str(version)
        self.increment(
            REQUEST_COUNT, (("model_name", model), ("model_version", version), ("signature_name", signature), ("status", status))
        )
        self.observe(
            REQUEST_LATENCY,
            (("model_name", model), ("model_version", version), ("signature_name", signature), ("API", api), ("entrypoint", entrypoint)),
            seconds * 1e6,
            LATENCY_BUCKETS_US,
        )

    def record_batch(self, model, version, signature, rows):
        labels = (("model_name", model), ("model_version", str(version)), ("signature_name", signature))
        self.increment(BATCH_RUNS, labels)
        self.observe(BATCH_SIZE, labels, rows, BATCH_SIZE_BUCKETS)

    def counter(self, name, **labels):
        """The sum of a counter over the series whose labels include `labels` (for tests and tools)."""
        with self._lock:
            return sum(v for (n, pairs), v in self._counters.items() if n == name and labels.items() <= dict(pairs).items())

    def render(self):
        with self._lock:
            counters = dict(self._counters)
            histograms = {key: value.copy() for key, value in self._histograms.items()}
        lines = []
        for name in sorted({n for n, _ in counters} | {n for n, _ in histograms}):
            kind, text = _HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for (n, pairs), value in sorted(counters.items()):
                if n == name:
                    lines.append(f"{name}{_labels(pairs)} {_number(value)}")
            for (n, pairs), histogram in sorted(histograms.items(), key=lambda item: item[0]):
                if n != name:
                    continue
                cumulative = 0
                for bound, count in zip(histogram.bounds, histogram.counts):
                    cumulative += count
                    lines.append(f"{name}_bucket{_labels(pairs, 'le=' + chr(34) + _number(bound) + chr(34))} {cumulative}")
                lines.append(f"{name}_bucket{_labels(pairs, 'le=' + chr(34) + '+Inf' + chr(34))} {histogram.count}")
                lines.append(f"{name}_sum{_labels(pairs)} {_number(histogram.sum)}")
                lines.append(f"{name}_count{_labels(pairs)} {histogram.count}")
        return "\n".join(lines) + "\n"
