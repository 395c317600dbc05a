"""SavedModel export in TF Serving's layout: `<base_path>/<name>/<version>/`.

    from serving.export import export
    export(fitted_zoo_imputer, "saved_models/serving", "gain_breast", version=1)

Signatures (inputs and outputs float32, raw scale — the imputer's min-max scaling is baked in):

* ``serving_default(x)`` -> ``{"imputed": ...}``: ``x`` [None, D] (tables) or [None, H, W, C] (images)
  with NaN marking missing values;
* ``impute_with_mask(x, mask)`` -> ``{"imputed": ...}``: ``mask`` 1 = observed, 0 = missing;
* ``multiple_imputation(x, n)`` -> ``{"imputations": [n, None, ...]}`` (generative models only);
* ``log_likelihood(x, samples)`` -> ``{"log_likelihood": [None]}`` (density models only, e.g. MIWAE):
  the estimated log-density of each row's observed entries in the raw units of `x` (nats): the model's
  estimate in scaled units minus Σ log(range) over the row's observed entries, the min-max scaling's
  Jacobian (constant columns, scaled by 1, add nothing); `samples` is the model's Monte-Carlo budget
  (MIWAE's K), at most MAX_LIKELIHOOD_SAMPLES, and samples x rows at most MAX_LIKELIHOOD_DRAWS.
* ``log_prob(x)`` -> ``{"log_prob": [None]}`` (models with an exact density, the flows): the exact
  log-density of complete rows in the raw units of `x` (the model's minus Σ log(range) over the row);
  a NaN anywhere in `x` is INVALID_ARGUMENT (``log_likelihood`` takes incomplete rows).

Classifiers (`keraszoo.sklearn.ZooClassifier`) export ``predict(x)`` (also ``serving_default``) and
``predict_with_mask(x, mask)`` -> ``{"probabilities": [None, n_classes]}`` (columns in the order of
the classifier's `classes_`).

Deep models impute at most `rows_per_chunk` rows at a time inside the graph (their memory hint), so
a request's memory is bounded by the chunk, not by its row count.

Each export also rewrites `<base_path>/models.config`, TF Serving's model config listing every
model exported under `base_path` (every version served), and `models.docker.config`, the same with
paths under `/models` for the TF Serving container of `docker-compose.yml`. A version appears
atomically (written under a hidden name, then renamed), so a polling server never loads half of one,
and so do the config files (written beside, then `os.replace`d), so a reader never sees half of one.
Model names are restricted to `MODEL_NAME_PATTERN` (letters, digits, `_`, `-`, `.`; not starting
with `.`): they are folder names, REST path segments (`/v1/models/NAME:predict`) and config strings.

Each version holds TF Serving's warm-up file, `assets.extra/tf_serving_warmup_requests` (a TFRecord
of `PredictionLog`s, `WARMUP_ROWS` requests per signature on representative rows), which
`tensorflow_model_server --enable_model_warmup` (its default) and `serving.server` replay before
serving the version, so the first real request does not pay for tracing and set-up.

Bad input is rejected inside the graph (so TF Serving itself answers INVALID_ARGUMENT naming it):
inf anywhere in `x`, NaN at an entry `mask` marks observed, a mask other than 0/1, and `n` outside
[1, MAX_DRAWS], n x rows above MAX_DRAWN_ROWS, or n x rows x values per row above MAX_DRAWN_VALUES.
`multiple_imputation` is the only signature whose output grows with a parameter (`n`); every other
output has the size of its input, which the server bounds (rows per request, message size).

Observed entries pass through unchanged (selected, never recomputed). Deep models export, and so
do the classical baselines with a TensorFlow version of their imputation (`tf_impute`: zero, mean,
median, most_frequent, em, matrix, knn, mice, missforest); only mice with sample_posterior=True is
refused (its random draws cannot be replayed in a graph).
"""
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from keraszoo.models.base import IMPUTE_MEMORY_VALUES, DeepImputer, chunked_rows, keep_observed

#: where docker-compose.yml mounts the export base path inside the TF Serving container, and the
#: config file (beside models.config) whose paths point there.
DOCKER_MODELS_ROOT = "/models"
DOCKER_CONFIG_NAME = "models.docker.config"
#: the most imputations one `multiple_imputation` call may draw (bounds the memory a request can ask for).
MAX_DRAWS = 1000
#: the most rows (draws x rows) one `multiple_imputation` call may return.
MAX_DRAWN_ROWS = 500_000
#: the most values (draws x rows x values per row) one `multiple_imputation` call may return:
#: 25 million float32 = 100 MB of output (plus the same again while it is unscaled and copied out).
#: The row bound alone let a request draw ~1.9 GB on a 30-column table and ~50 GB on MNIST (784).
MAX_DRAWN_VALUES = 25_000_000
#: the most Monte-Carlo samples per row one `log_likelihood` call may ask for, and samples x rows per call
#: (each sample is a decoder evaluation: the bound is on compute, the output being one value per row).
MAX_LIKELIHOOD_SAMPLES = 100_000
MAX_LIKELIHOOD_DRAWS = 20_000_000
#: model names export accepts: a folder name, a REST path segment and a config string that need no escaping.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
#: signatures that take complete rows only (their warm-up requests have no missing value).
COMPLETE_ROW_SIGNATURES = ("log_prob",)
#: warm-up requests written per signature, with these many rows each.
WARMUP_ROWS = (1, 8)


class _ImputerModule(tf.Module):
    """The graph TF Serving runs: scale, impute (or classify) in scaled space, unscale, keep observed entries.

    `impute_scaled(scaled, mask)`, `draw_scaled(scaled, mask, n)` (None if not generative) and
    `proba_scaled(scaled, mask)` (classifiers) are closures over the model, so only its variables are
    tracked here: saving a tracked Keras model would also trace its `call` with Keras's own default
    signature, which does not fit (x, mask). They take the model's layout [rows, *model_shape]; the
    module reshapes requests [rows, *input_shape] to it and back (images to a table-only model).
    """

    def __init__(self, variables, functions, data_min, data_range, constant_columns, model_shape):
        super().__init__(name="keraszoo_imputer")
        self.model_variables = list(variables)
        self._functions = functions
        self._model_shape = list(model_shape)
        # float64, as ZooImputer.transform scales: a float32 scaling can land one ulp away and send a
        # value to the other side of a MissForest split. Per column (tables) or channel (images): the last axis.
        self.data_min = tf.constant(data_min, tf.float64)
        self.data_range = tf.constant(data_range, tf.float64)
        self.constant_columns = tf.constant(constant_columns, tf.bool)

    def _checked(self, x, mask):
        # Checked in the graph, so TF Serving itself answers INVALID_ARGUMENT with these messages.
        checks = [
            tf.debugging.Assert(
                tf.reduce_all((mask == 0.0) | (mask == 1.0)), ["mask must hold only 0 (missing) and 1 (observed)"]
            ),
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(x) | (mask == 0.0)),
                ["x holds inf (or NaN at an observed entry): mark missing values with NaN (or 0 in mask)"],
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(x)

    def _scaled(self, x, mask):
        x64 = tf.cast(x, tf.float64)
        scaled = tf.cast(tf.where(mask > 0, (x64 - self.data_min) / self.data_range, tf.zeros_like(x64)), tf.float32)
        model_shape = tf.concat([tf.shape(x)[:1], self._model_shape], axis=0)
        return tf.reshape(scaled, model_shape), tf.reshape(mask, model_shape)

    def _unscaled(self, x, mask, imputed):
        imputed = tf.cast(tf.reshape(imputed, tf.shape(x)), tf.float64) * self.data_range + self.data_min
        imputed = tf.where(self.constant_columns, tf.broadcast_to(self.data_min, tf.shape(imputed)), imputed)
        return keep_observed(x, mask, tf.cast(imputed, tf.float32))

    def impute_with_mask(self, x, mask):
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        return {"imputed": self._unscaled(x, mask, self._functions["impute"](scaled, model_mask))}

    def serving_default(self, x):
        return self.impute_with_mask(x, _observed(x))

    def multiple_imputation(self, x, n):
        in_range = tf.logical_and(n >= 1, n <= MAX_DRAWS)
        total = tf.cast(n, tf.int64) * tf.cast(tf.shape(x)[0], tf.int64)
        values = total * tf.reduce_prod(tf.cast(tf.shape(x)[1:], tf.int64))  # n x rows x values per row
        checks = [
            tf.debugging.Assert(in_range, [f"n must be in [1, {MAX_DRAWS}]"]),
            tf.debugging.Assert(total <= MAX_DRAWN_ROWS, [f"n x rows must be at most {MAX_DRAWN_ROWS}: send fewer rows or draws"]),
            tf.debugging.Assert(
                values <= MAX_DRAWN_VALUES,
                [f"n x rows x values per row must be at most {MAX_DRAWN_VALUES}: send fewer rows or draws"],
            ),
        ]
        n = _after(checks, n)
        mask = _observed(x)
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        draws = self._functions["sample"](scaled, model_mask, n)
        unscale = lambda draw: self._unscaled(x, mask, draw)  # noqa: E731
        return {"imputations": tf.map_fn(unscale, draws, fn_output_signature=tf.float32)}

    def log_likelihood(self, x, samples):
        in_range = tf.logical_and(samples >= 1, samples <= MAX_LIKELIHOOD_SAMPLES)
        draws = tf.cast(samples, tf.int64) * tf.cast(tf.shape(x)[0], tf.int64)
        checks = [
            tf.debugging.Assert(in_range, [f"samples must be in [1, {MAX_LIKELIHOOD_SAMPLES}]"]),
            tf.debugging.Assert(draws <= MAX_LIKELIHOOD_DRAWS, [f"samples x rows must be at most {MAX_LIKELIHOOD_DRAWS}: send fewer rows or samples"]),
        ]
        samples = _after(checks, samples)
        mask = _observed(x)
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        scaled_log_p = self._functions["log_likelihood"](scaled, model_mask, samples)
        # p_raw(x°) = p_scaled(x°) / Π range over the observed entries (x_scaled = (x − min) / range)
        return {"log_likelihood": tf.cast(tf.cast(scaled_log_p, tf.float64) - self._log_jacobian(mask), tf.float32)}

    def log_prob(self, x):
        complete = tf.reduce_all(tf.math.is_finite(x))
        x = _after([tf.debugging.Assert(complete, ["log_prob takes complete rows (no NaN or inf in x): use log_likelihood for rows with missing entries"])], x)
        mask = tf.ones_like(x)
        scaled, _ = self._scaled(x, mask)
        scaled_log_p = self._functions["log_prob"](scaled)
        return {"log_prob": tf.cast(tf.cast(scaled_log_p, tf.float64) - self._log_jacobian(mask), tf.float32)}

    def _log_jacobian(self, mask):
        """Σ log(range) over each row's entries that `mask` marks: p_raw(x°) = p_scaled(x°) / Π range."""
        log_range = tf.where(self.constant_columns, tf.zeros_like(self.data_range), tf.math.log(self.data_range))
        return tf.reduce_sum(tf.reshape(tf.cast(mask, tf.float64) * log_range, [tf.shape(mask)[0], -1]), axis=1)

    def predict_with_mask(self, x, mask):
        x = self._checked(x, mask)
        scaled, model_mask = self._scaled(x, mask)
        return {"probabilities": self._functions["proba"](scaled, model_mask)}

    def predict(self, x):
        return self.predict_with_mask(x, _observed(x))


def _after(checks, value):
    """`value`, computed only once the in-graph `checks` (tf.debugging.Assert ops) have passed."""
    with tf.control_dependencies(checks):
        return tf.identity(value)


def _observed(x):
    return tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)


def _model_functions(model, model_shape):
    """(variables, {"impute"/"sample"/"proba": graph function on scaled [rows, *model_shape]}) of a fitted model.

    Deep models run their graph hooks on at most `rows_per_chunk` rows at a time (`chunked_rows`), so
    a large request is imputed in bounded memory. Each hook is the model's own batch-free tf.function
    (`DeepImputer.build`), called from both branches of the chunking and from every signature: it is
    traced once (or not at all, when the model already ran it), and the SavedModel holds one copy.
    """
    if isinstance(model, DeepImputer):
        functions = {}
        if model.task == "classify":
            functions["proba"] = lambda s, m: chunked_rows(model._proba_fn, [s, m], model.rows_per_chunk())
        else:
            functions["impute"] = lambda s, m: chunked_rows(model._impute_fn, [s, m], model.rows_per_chunk())
            if model.generative:

                def sample(s, m, n):
                    chunk = IMPUTE_MEMORY_VALUES // tf.maximum(tf.cast(model.values_per_row(n), tf.int64), 1)
                    return chunked_rows(lambda a, b: model._sample_fn(a, b, n), [s, m], tf.cast(chunk, tf.int32), axis=1)

                functions["sample"] = sample
            if model.density:
                functions["log_likelihood"] = lambda s, m, k: chunked_rows(
                    lambda a, b: model._log_likelihood_fn(a, b, k), [s, m], model.rows_per_chunk()
                )
            if model.exact_density:
                functions["log_prob"] = lambda s: chunked_rows(model._log_prob_fn, [s], model.rows_per_chunk())
        return model.variables, functions
    if model.exportable():
        rows = tf.TensorSpec([None, *model_shape], tf.float32)
        return model.export_variables(), {"impute": tf.function(model.tf_impute, input_signature=[rows, rows])}
    return None, None


def export(imputer, base_path, name, version=None):
    """Write a fitted `keraszoo.sklearn.ZooImputer` (or `ZooClassifier`) as a SavedModel; returns its directory.

    `version=None` (default) takes the next free version number (see `next_version`). Inputs are
    [None, *example shape] as fitted: [None, D] for tables, [None, H, W, C] for images.
    """
    if not hasattr(imputer, "model_"):
        raise ValueError("export needs a fitted ZooImputer: call fit first")
    scaler = imputer.scaler_
    input_shape = tuple(getattr(imputer, "input_shape_", (scaler.n_features,)))
    model_shape = tuple(getattr(imputer, "model_input_shape_", input_shape))
    variables, functions = _model_functions(imputer.model_, model_shape)
    if functions is None:
        raise NotImplementedError(
            f"model {imputer.name!r} has no TensorFlow imputation yet, so it cannot be exported as a SavedModel"
        )
    module = _ImputerModule(
        variables,
        functions,
        scaler.data_min_.astype(np.float64),
        scaler.data_range_.astype(np.float64),
        imputer.constant_columns_,
        model_shape,
    )
    x_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="x")
    mask_spec = tf.TensorSpec([None, *input_shape], tf.float32, name="mask")
    if "proba" in functions:
        signatures = {
            "serving_default": tf.function(module.predict, input_signature=[x_spec]),
            "predict": tf.function(module.predict, input_signature=[x_spec]),
            "predict_with_mask": tf.function(module.predict_with_mask, input_signature=[x_spec, mask_spec]),
        }
    else:
        signatures = {
            "serving_default": tf.function(module.serving_default, input_signature=[x_spec]),
            "impute_with_mask": tf.function(module.impute_with_mask, input_signature=[x_spec, mask_spec]),
        }
        if "sample" in functions:
            signatures["multiple_imputation"] = tf.function(
                module.multiple_imputation, input_signature=[x_spec, tf.TensorSpec([], tf.int32, name="n")]
            )
        if "log_likelihood" in functions:
            signatures["log_likelihood"] = tf.function(
                module.log_likelihood, input_signature=[x_spec, tf.TensorSpec([], tf.int32, name="samples")]
            )
        if "log_prob" in functions:
            signatures["log_prob"] = tf.function(module.log_prob, input_signature=[x_spec])
    return save_version(
        module,
        signatures,
        base_path,
        name,
        version,
        lambda staging: write_warmup_requests(staging, name, signatures, scaler.data_min_, scaler.data_range_, input_shape),
    )


def save_version(module, signatures, base_path, name, version=None, finish=None):
    """Save `module` with `signatures` as version `version` (None: the next free one) of model `name`
    under `base_path`, atomically, and rewrite the config files; returns the version's directory.

    `finish(staging_dir)` adds files (the warm-up requests) before the version appears. Every exporter
    (`export`, `keraszoo.tabular`'s) goes through here.
    """
    check_model_name(name)
    version = next_version(base_path, name) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    path = os.path.join(base_path, name, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists: TF Serving versions are immutable, export a new version number")
    # Written under a hidden name, then renamed: a server polling base_path never sees half a model.
    staging = os.path.join(base_path, name, f".{version}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    tf.saved_model.save(module, staging, signatures=signatures)
    if finish is not None:
        finish(staging)
    os.rename(staging, path)
    write_models_config(base_path)
    write_models_config(base_path, serving_root=DOCKER_MODELS_ROOT, filename=DOCKER_CONFIG_NAME)
    return path


def check_model_name(name):
    """ValueError unless `name` is a safe model name (see MODEL_NAME_PATTERN)."""
    if not (isinstance(name, str) and MODEL_NAME_PATTERN.fullmatch(name)):
        raise ValueError(
            f"model name must be a plain directory name of letters, digits, '_', '-' and '.' (not starting with "
            f"'.' or '-', at most 200 characters), as TF Serving's REST paths and config files take it; got {name!r}"
        )


def write_warmup_requests(saved_model_dir, name, signatures, data_min, data_range, input_shape, seed=0):
    """Write `assets.extra/tf_serving_warmup_requests`: TF Serving's warm-up file; returns its path.

    A TFRecord of `PredictionLog` protos (each a `predict_log` holding a PredictRequest), one per
    signature and size in WARMUP_ROWS: rows inside the fitted range, about one value in five missing
    (NaN in `x`, 0 in `mask`; none for `log_prob`, which takes complete rows); `n` = 2 draws, `samples` = 2. Far below TF Serving's limit of 1,000 records.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from serving.tensors import to_tensor_proto

    rng = np.random.default_rng(seed)
    low = np.broadcast_to(np.asarray(data_min, np.float64), input_shape)
    span = np.broadcast_to(np.asarray(data_range, np.float64), input_shape)
    folder = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tf_serving_warmup_requests")
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, function in sorted(signatures.items()):
            keys = {spec.name for spec in function.input_signature}
            if not keys <= {"x", "mask", "n", "samples"} or "x" not in keys:
                continue  # inputs this writer cannot fill: no warm-up for that signature rather than a failing one
            for rows in WARMUP_ROWS:
                x = (low + rng.random((rows, *input_shape)) * span).astype(np.float32)
                mask = (rng.random(x.shape) >= 0.2).astype(np.float32)
                if signature_name in COMPLETE_ROW_SIGNATURES:
                    mask = np.ones_like(mask)
                request = predict_pb2.PredictRequest()
                request.model_spec.name = name
                request.model_spec.signature_name = signature_name
                if "mask" in keys:
                    request.inputs["x"].CopyFrom(to_tensor_proto(x * mask))
                    request.inputs["mask"].CopyFrom(to_tensor_proto(mask))
                else:
                    request.inputs["x"].CopyFrom(to_tensor_proto(np.where(mask > 0, x, np.float32(np.nan))))
                for scalar in ("n", "samples"):
                    if scalar in keys:
                        request.inputs[scalar].CopyFrom(to_tensor_proto(np.int32(2)))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
    return path


def _versions(folder):
    """Version numbers of the folders in `folder` (ASCII digits only: "²" passes `isdigit` but not `int`)."""
    from serving.servables import version_number

    names = os.listdir(folder) if os.path.isdir(folder) else []
    return [v for v in map(version_number, names) if v is not None]


def next_version(base_path, name):
    """One more than the highest version exported as `name` under `base_path` (1 for a new model)."""
    return max(_versions(os.path.join(base_path, name)), default=0) + 1


def write_models_config(base_path, serving_root=None, filename="models.config"):
    """Write `<base_path>/models.config` (TF Serving's text format) listing every exported model there.

    A model is a folder holding at least one numeric version folder with a `saved_model.pb`; base
    paths are absolute, as `tensorflow_model_server --model_config_file` needs. Each entry asks for
    every version to be served (`model_version_policy { all {} }`; TF Serving's own default is the
    latest only), so a client's `model_spec.version` can pick an older one; requests without a
    version get the latest. `serving_root` replaces `base_path` in the entries (for a server that
    sees the folder elsewhere, e.g. `/models` inside the TF Serving container). Returns the file path.

    The text is written by protobuf's own text format (every string escaped, whatever a folder is
    called) into a temporary file beside the config, then moved over it with `os.replace`: a server
    or reader sees the old file or the new one, never half of one.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from serving.servables import version_number

    base_path = os.path.abspath(base_path)
    root = base_path if serving_root is None else serving_root
    names = sorted(
        name
        for name in os.listdir(base_path)
        if os.path.isdir(os.path.join(base_path, name))
        and any(
            version_number(v) is not None and os.path.exists(os.path.join(base_path, name, v, "saved_model.pb"))
            for v in os.listdir(os.path.join(base_path, name))
        )
    )
    config = model_server_config_pb2.ModelServerConfig()
    for name in names:
        entry = config.model_config_list.config.add(
            name=name, base_path=f"{root.rstrip('/')}/{name}", model_platform="tensorflow"
        )
        entry.model_version_policy.all.SetInParent()
    config_path = os.path.join(base_path, filename)
    fd, temporary = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=base_path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text_format.MessageToString(config))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the config is read by the serving container
        os.replace(temporary, config_path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return config_path
