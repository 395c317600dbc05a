"""Which SavedModels the server has loaded, and running their signatures — shared by gRPC and REST.

`ModelManager` follows TF Serving's model: a *model* is a base path holding numeric *version*
folders, each a SavedModel. A poller (every `poll_seconds`) loads versions that appear and unloads
versions that disappear, like `tensorflow_model_server --file_system_poll_wait_seconds`:

* a new version is loaded and warmed up (replaying TF Serving's `assets.extra/tf_serving_warmup_requests`,
  which `serving.export` writes) before it becomes visible, so no request sees it half-loaded or pays
  for its tracing; a warm-up file that cannot be replayed fails that version's load;
* the table of loaded versions is replaced, never edited in place: a request in flight keeps the
  version it looked up alive until it finishes, even if that version is unloaded meanwhile;
* a version that fails to load is reported in the model's status and tried again when its folder changes.

Only folders with a `saved_model.pb` are loaded, through `tf.saved_model.load` (no pickles), and
model names from requests are only looked up in the loaded table, never joined to a path.

`ServingError(code, message)` carries a gRPC status code; the REST front end maps it to HTTP.
"""
import logging
import os
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.tensors import MAX_TENSOR_BYTES, TensorTooLarge, declared_shape, dtype_name, to_numpy

log = logging.getLogger("keraszoo.serving")

DEFAULT_SIGNATURE = "serving_default"
#: TF Serving's warm-up file inside a SavedModel (assets.extra/tf_serving_warmup_requests), and the most
#: records it may hold (WarmupConsts::kMaxNumRecords in tensorflow_serving/servables/tensorflow/saved_model_warmup_util.h).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


def version_number(name):
    """The version a folder (or URL) name spells, or None: ASCII digits only, and above 0.

    `str.isdigit` also accepts "²" or "١" (which `int` then refuses or reads as another number).
    """
    if isinstance(name, str) and name.isascii() and name.isdigit():
        number = int(name)
        return number if number > 0 else None
    return None


class ServingError(Exception):
    """A request the server cannot answer; `code` is the gRPC status code to answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class WarmupError(Exception):
    """A version's warm-up requests could not be replayed: the version is not served."""


def not_found(message):
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- one loaded version ----------------------------------------------------------------------------
class Signature:
    """One signature of a loaded version: its SignatureDef proto and the function that runs it."""

    def __init__(self, name, signature_def, function):
        self.name = name
        self.signature_def = signature_def
        self.function = function
        self.input_specs = {
            key: (tf.dtypes.as_dtype(info.dtype), _dims(info.tensor_shape)) for key, info in signature_def.inputs.items()
        }
        self.output_keys = sorted(signature_def.outputs)
        self._flat_order = self._flat_input_order()
        self._call = self._structured_call if self._flat_order is None else self._first_call

    def _structured_call(self, tensors):
        return self.function(**tensors)

    def _flat_input_order(self):
        """Input names in the order of the function's flat inputs, or None if that cannot be told.

        Calling a restored signature by keyword spends ~0.2 ms in Python binding and checking the
        arguments, as long as the whole model on one row. `ConcreteFunction._call_flat` (a private
        TensorFlow API) skips that; it is only used when the flat inputs name every signature input,
        and once the first request has shown it returns exactly what the structured call does.
        """
        try:
            captured = len(self.function.captured_inputs)
            names = [t.name.split(":")[0] for t in self.function.inputs[: len(self.function.inputs) - captured]]
        except AttributeError:
            return None
        return names if sorted(names) == sorted(self.input_specs) else None

    def _flat_call(self, tensors):
        return self.function._call_flat([tensors[key] for key in self._flat_order], self.function.captured_inputs)

    def _first_call(self, tensors):
        """Structured call; then the flat one on the same request, kept for later requests if equal."""
        expected = self._structured_call(tensors)  # raises for bad input, like every later call would
        try:
            got = self._flat_call(tensors)
            same = set(got) == set(expected) and all(
                np.array_equal(got[k].numpy(), expected[k].numpy(), equal_nan=True) for k in expected
            )
        except Exception:  # any surprise from the private API: keep the structured call
            same = False
        self._call = self._flat_call if same else self._structured_call
        return expected

    def describe(self):
        """'serving_default(x: float32 [-1, 30]) -> imputed', for error messages."""
        args = ", ".join(
            f"{key}: {dtype.name} {list(dims) if dims is not None else 'any shape'}"
            for key, (dtype, dims) in sorted(self.input_specs.items())
        )
        return f"{self.name}({args}) -> {', '.join(self.output_keys)}"

    def _check_keys(self, given):
        if set(given) != set(self.input_specs):
            missing = sorted(set(self.input_specs) - set(given))
            extra = sorted(set(given) - set(self.input_specs))
            problem = "; ".join(
                part for part in (f"missing input(s) {missing}" if missing else "", f"unknown input(s) {extra}" if extra else "") if part
            )
            raise invalid(f"{problem}; expected signature {self.describe()}")

    def _check(self, key, dtype_enum, shape, max_rows):
        """INVALID_ARGUMENT for a dtype or shape the signature does not take, RESOURCE_EXHAUSTED above max_rows."""
        dtype, dims = self.input_specs[key]
        if dtype_enum != dtype.as_datatype_enum:
            raise invalid(f"input {key!r} has dtype {dtype_name(dtype_enum)}, expected {dtype.name}; expected signature {self.describe()}")
        if dims is None:
            return
        if len(shape) != len(dims):
            raise invalid(
                f"input {key!r} has rank {len(shape)} (shape {list(shape)}), expected rank {len(dims)}; "
                f"expected signature {self.describe()}"
            )
        for axis, (got, want) in enumerate(zip(shape, dims)):
            if want >= 0 and got != want:
                raise invalid(
                    f"input {key!r} has size {got} in dimension {axis} (shape {list(shape)}), expected {want}; "
                    f"expected signature {self.describe()}"
                )
        if max_rows is not None and len(dims) >= 1 and dims[0] < 0 and shape[0] > max_rows:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"input {key!r} has {shape[0]} rows; this server accepts at most {max_rows} per request",
            )

    def decode(self, protos, max_rows=None, max_bytes=MAX_TENSOR_BYTES):
        """{key: numpy array} of a request's TensorProtos, each checked against the signature BEFORE decoding.

        The dtype, shape and row count come from the proto's header, so a tiny proto declaring a huge
        shape (its repeated values would be expanded to it) is refused without allocating anything:
        INVALID_ARGUMENT for a dtype or shape the signature does not take, RESOURCE_EXHAUSTED for more
        than `max_rows` rows or a tensor needing more than `max_bytes`.
        """
        self._check_keys(protos)
        inputs = {}
        for key, proto in protos.items():
            try:
                shape = declared_shape(proto)
            except ValueError as err:
                raise invalid(f"input {key!r} is not a valid TensorProto: {err}") from None
            self._check(key, proto.dtype, shape, max_rows)
            try:
                inputs[key] = to_numpy(proto, max_bytes)
            except TensorTooLarge as err:
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"input {key!r}: {err}") from None
            except Exception as err:  # malformed TensorProto: wrong content size, value count, ...
                raise invalid(f"input {key!r} is not a valid TensorProto: {err}") from None
        return inputs

    def run(self, inputs, output_filter=(), max_rows=None):
        """Validate `inputs` (dict of numpy arrays) against the signature and run it; dict of numpy outputs."""
        self._check_keys(inputs)
        tensors = {}
        for key, value in inputs.items():
            dtype = self.input_specs[key][0]
            if value.dtype != dtype.as_numpy_dtype:
                raise invalid(f"input {key!r} has dtype {value.dtype}, expected {dtype.name}; expected signature {self.describe()}")
            self._check(key, dtype.as_datatype_enum, value.shape, max_rows)
            tensors[key] = tf.constant(value)
        unknown = sorted(set(output_filter) - set(self.output_keys))
        if unknown:
            raise invalid(f"output_filter names unknown output(s) {unknown}; signature {self.name} has {self.output_keys}")
        try:
            outputs = self._call(tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise invalid(f"{_first_line(err)} (signature {self.describe()})") from None
        except tf.errors.ResourceExhaustedError as err:
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, _first_line(err)) from None
        keys = output_filter or self.output_keys
        return {key: outputs[key].numpy() for key in keys}


def _first_line(err):
    """The useful part of an error: a graph assertion's own message, else the first line."""
    message = (getattr(err, "message", None) or str(err)).strip()
    if "assertion failed: [" in message:
        return message.split("assertion failed: [", 1)[1].split("]", 1)[0]
    return message.splitlines()[0] if message else type(err).__name__


def _dims(tensor_shape):
    if tensor_shape.unknown_rank:
        return None
    return tuple(int(d.size) for d in tensor_shape.dim)


class ServableVersion:
    """A loaded SavedModel version: its signatures, ready to run."""

    def __init__(self, name, version, path):
        self.name = name
        self.version = version
        self.path = path
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved_model = saved_model_pb2.SavedModel.FromString(f.read())
        signature_defs = saved_model.meta_graphs[0].signature_def
        self._loaded = tf.saved_model.load(path)
        self.signatures = {
            key: Signature(key, signature_defs[key], self._loaded.signatures[key])
            for key in signature_defs
            if key in self._loaded.signatures
        }
        self.signature_def_map = signature_defs
        #: warm-up requests replayed from the SavedModel's warm-up file before this version is served
        self.warmup_requests = 0
        warmup_file = os.path.join(path, WARMUP_FILE)
        if os.path.exists(warmup_file):
            self.warmup_requests = self._replay_warmup(warmup_file)
        else:
            self._warm_up()

    def _replay_warmup(self, warmup_file):
        """Run every request of TF Serving's warm-up file (TFRecord of PredictionLog); WarmupError if any fails.

        Like `tensorflow_model_server --enable_model_warmup`: at most MAX_WARMUP_RECORDS records, each
        a `predict_log` (this server answers Predict only), run once through the same checks as a
        request; the version is only served once all of them succeeded.
        """
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        try:
            for record in tf.data.TFRecordDataset(warmup_file):
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise WarmupError(f"more than {MAX_WARMUP_RECORDS} records (TF Serving's limit)")
                try:
                    entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                except Exception:
                    raise WarmupError(f"record {count} is not a PredictionLog") from None
                if entry.WhichOneof("log_type") != "predict_log":
                    raise WarmupError(f"record {count} is a {entry.WhichOneof('log_type')}; this server replays predict_log only")
                request = entry.predict_log.request
                try:
                    signature = self.signature(request.model_spec.signature_name)
                    signature.run(signature.decode(request.inputs), tuple(request.output_filter))
                except ServingError as err:
                    raise WarmupError(f"record {count} failed: {err.message}") from None
                except tf.errors.OpError as err:
                    raise WarmupError(f"record {count} failed: {_first_line(err)}") from None
        except tf.errors.OpError as err:  # DataLossError: not a TFRecord file, truncated, bad checksum
            message = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", _first_line(err))
            raise WarmupError(f"warm-up file {warmup_file}: cannot read it as TFRecord: {message}") from None
        except WarmupError as err:
            raise WarmupError(f"warm-up file {warmup_file}: {err}") from None
        if count == 0:
            raise WarmupError(f"warm-up file {warmup_file} holds no records")
        return count

    def _warm_up(self):
        # No warm-up file (an older export): the first call of a restored function pays one-off
        # set-up; pay it on dummy rows before requests arrive.
        for signature in self.signatures.values():
            inputs = {}
            for key, (dtype, dims) in signature.input_specs.items():
                if dims is None or not dtype.is_floating:
                    break
                inputs[key] = np.zeros([1 if d < 0 else d for d in dims], dtype.as_numpy_dtype)
            else:
                try:
                    signature.function(**{k: tf.constant(v) for k, v in inputs.items()})
                except tf.errors.OpError:
                    pass  # a signature with extra checks on dummy input; it still works on real requests

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise invalid(
                f"model {self.name!r} version {self.version} has no signature {name!r}; "
                f"it has {sorted(self.signatures)}"
            )
        return self.signatures[name]


# --- which versions a model should serve ---------------------------------------------------------
def version_folders(base_path):
    """{version: folder} of the complete SavedModel versions under a model's base path."""
    try:
        entries = os.listdir(base_path)
    except OSError:
        return {}
    found = {}
    for entry in entries:
        version = version_number(entry)
        if version is not None:
            folder = os.path.join(base_path, entry)
            if os.path.isfile(os.path.join(folder, "saved_model.pb")):
                found[version] = folder
    return found


def wanted_versions(config, available):
    """The versions of `available` that `config.model_version_policy` asks for (TF Serving's rules)."""
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return set(available)
    if which == "specific":
        return set(available) & set(policy.specific.versions)
    count = policy.latest.num_versions if which == "latest" and policy.latest.num_versions > 0 else 1
    return set(sorted(available)[-count:])


def parse_model_config(text):
    """ModelServerConfig from TF Serving's text format; only `model_config_list` is supported."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"model config is not valid TF Serving text format: {err}") from None
    return model_configs_from(config)


def model_configs_from(config):
    """The ModelConfig list of a ModelServerConfig, checked: SavedModels only, names unique."""
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError("model config must hold a model_config_list")
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {model.name!r}: only model_platform 'tensorflow' (SavedModel) is served")
        if not model.name or not model.base_path:
            raise ValueError("every model config needs a name and a base_path")
    names = [model.name for model in config.model_config_list.config]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    return list(config.model_config_list.config)


def discover_models(base_path):
    """Model configs for a folder of models (each sub-folder with version folders), every version served.

    If `base_path` itself holds version folders it is one model, named after the folder.
    """
    base_path = os.path.abspath(base_path)

    def config(name, path):
        model = model_server_config_pb2.ModelConfig(name=name, base_path=path, model_platform="tensorflow")
        model.model_version_policy.all.SetInParent()
        return model

    if version_folders(base_path):
        return [config(os.path.basename(base_path.rstrip("/")), base_path)]
    try:
        names = sorted(os.listdir(base_path))
    except OSError:
        return []
    return [config(name, os.path.join(base_path, name)) for name in names if version_folders(os.path.join(base_path, name))]


# --- the manager ---------------------------------------------------------------------------------
class ModelManager:
    """Loaded versions of every configured model, kept in step with the disk by a poller.

    Give `model_configs` (a list of `ModelConfig`, e.g. from `parse_model_config`) or `base_path`
    (a folder of models, re-scanned at each poll so new models appear too).
    """

    def __init__(self, model_configs=None, base_path=None, poll_seconds=1.0):
        if (model_configs is None) == (base_path is None):
            raise ValueError("give either model_configs or base_path")
        self.base_path = base_path
        self._configs = list(model_configs) if model_configs is not None else []
        self.poll_seconds = float(poll_seconds)
        self._table = {}  # name -> {version: ServableVersion}; replaced on change, never mutated
        self._labels = {}  # name -> {label: version}
        # (name, version) -> (folder mtime, message) of versions that failed to load; replaced, never mutated
        self._errors = {}
        self._configured = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # public lookups (thread-safe: they read one immutable snapshot) ---------------------------
    def model_names(self):
        return sorted(self._configured)

    def lookup(self, name, version=None, label=None):
        """The ServableVersion a request names; NOT_FOUND naming what exists otherwise."""
        if version is not None and label:
            raise invalid("give model_spec.version or model_spec.version_label, not both")
        table = self._table
        if name not in table:
            known = sorted(table)
            raise not_found(f"Servable not found for request: model {name!r} is not served; models: {known}")
        versions = table[name]
        if not versions:
            raise not_found(f"model {name!r} has no loaded version yet (see its status)")
        if label:
            labels = self._labels.get(name, {})
            if label not in labels:
                raise not_found(f"model {name!r} has no version label {label!r}; labels: {sorted(labels)}")
            version = labels[label]
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise not_found(f"model {name!r} has no loaded version {version}; loaded versions: {sorted(versions)}")
        return versions[version]

    def status(self, name, version=None, label=None):
        """[(version, state, error message)] for GetModelStatus; NOT_FOUND for unknown models."""
        if name not in self._configured:
            raise not_found(f"model {name!r} is not served; models: {self.model_names()}")
        if label:
            version = self.lookup(name, label=label).version
        loaded = self._table.get(name, {})
        rows = [(v, "AVAILABLE", "") for v in loaded]
        rows += [(v, "END", message) for (n, v), (_, message) in self._errors.items() if n == name and v not in loaded]
        if version is not None:
            rows = [row for row in rows if row[0] == version]
            if not rows:
                raise not_found(f"model {name!r} has no version {version}")
        return sorted(rows)

    # loading ----------------------------------------------------------------------------------
    def reload_config(self, model_configs):
        """Serve exactly `model_configs` from now on (ModelService.HandleReloadConfigRequest)."""
        with self._lock:
            self.base_path = None
            self._configs = list(model_configs)
        self.poll_once()

    def poll_once(self):
        """Bring the loaded versions in step with the disk once (the poller calls this)."""
        with self._lock:
            configs = discover_models(self.base_path) if self.base_path is not None else list(self._configs)
            old = self._table
            new, labels = {}, {}
            for config in configs:
                available = version_folders(config.base_path)
                wanted = wanted_versions(config, available)
                versions = {}
                for version in sorted(wanted):
                    servable = old.get(config.name, {}).get(version)
                    if servable is None or servable.path != available[version]:
                        servable = self._load(config.name, version, available[version])
                    if servable is not None:
                        versions[version] = servable
                new[config.name] = versions
                labels[config.name] = dict(config.version_labels)
                self._errors = {
                    key: value for key, value in self._errors.items() if key[0] != config.name or key[1] in available
                }
            for name, versions in new.items():
                for label, version in labels[name].items():
                    if version not in versions:
                        log.warning("model %s: label %r points to version %d, which is not loaded", name, label, version)
            for name in old:
                for version in set(old[name]) - set(new.get(name, {})):
                    log.info("unloaded model %s version %d", name, version)
            self._configured = {config.name for config in configs}
            self._labels = labels
            self._table = new  # one assignment: readers see the old table or the new one, never a mix

    def _load(self, name, version, folder):
        mtime = os.path.getmtime(folder)
        failed = self._errors.get((name, version))
        if failed and failed[0] == mtime:
            return None  # failed before and unchanged since: do not retry every poll
        try:
            servable = ServableVersion(name, version, folder)
        except Exception as err:  # a broken SavedModel must not take the server down
            message = f"loading {folder} failed: {_first_line(err)}"
            log.error("model %s version %d: %s", name, version, message)
            self._errors = {**self._errors, (name, version): (mtime, message)}
            return None
        self._errors = {key: value for key, value in self._errors.items() if key != (name, version)}
        log.info("loaded model %s version %d from %s", name, version, folder)
        return servable

    def start(self):
        """Load what is on disk now, then poll in a background thread."""
        self.poll_once()
        if self.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll_forever, name="keraszoo-model-poller", daemon=True)
            self._thread.start()
        return self

    def _poll_forever(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # keep polling whatever one scan hits
                log.exception("polling the model base paths failed")

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
