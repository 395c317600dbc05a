"""Real data sets for the imputation benchmarks: ``load_dataset(name, data_dir=None)``.

Names (``list_datasets()``):

* from files -- ``spam``, ``letter``, ``credit``, ``wine``, ``adult`` (CSV) and ``mnist`` (npz);
* bundled with scikit-learn, no download -- ``breast`` (load_breast_cancer), ``digits``
  (load_digits, also as 8x8 images) and ``wine_sklearn`` (load_wine).

Where file-based data comes from, in order:

0. mnist only: TensorFlow Datasets' prepared ``mnist`` when it is on disk
   (``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``, holding ``mnist/<version>/dataset_info.json``),
   read with tensorflow-datasets. Only its presence is checked otherwise, so nothing imports TensorFlow
   or waits on TFDS downloads when it is absent. TFDS stores MNIST shuffled: the images and labels are
   the same, in TFDS's fixed order rather than LeCun's;
1. ``data_dir`` if given, else the environment variable ``KERASZOO_DATA_DIR``: a directory holding
   ``spam.csv``, ``letter.csv``, ``credit.csv``, ``wine.csv``, ``adult.csv``, ``mnist.npz``;
2. the cache, ``KERASZOO_CACHE_DIR`` or ``~/.cache/keraszoo``, where earlier downloads were put;
3. a download from the data set's original address (UCI Machine Learning Repository; MNIST from the
   CVDF mirror of LeCun's files that tensorflow-datasets uses, then the keras copy as a fallback),
   converted to the same file layout, checked and written to the cache.

Downloading is skipped -- and a :class:`DatasetNotFoundError` naming ``KERASZOO_DATA_DIR`` and the file
expected raised at once -- when ``KERASZOO_OFFLINE=1``, when ``download=False``, or when the host cannot
be reached within 0.9 seconds (a TCP connection to the host, or to the HTTPS proxy when one is
configured, tried before any download, so an offline machine never waits on network retries).

Checksums (``checksums.json`` next to this module):

* a converted download is checked against the SHA-256 of the project's reference copy of the file;
  a mismatch raises :class:`DatasetChecksumError` and nothing is cached (``verify=False`` accepts it
  with a warning). Raw downloads are also checked where a trusted sum is known (the MNIST files: the
  sums tensorflow-datasets and keras ship). The raw UCI files have no recorded sum: they are verified
  through their converted CSV only.
* files found in a data directory or the cache are checked too, but a mismatch only WARNS
  (:class:`DatasetChecksumWarning`): users may keep their own, equally valid copies.

The returned :class:`Dataset` keeps column names and dtypes; see its docstring.
"""
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR_ENV = "KERASZOO_DATA_DIR"
CACHE_DIR_ENV = "KERASZOO_CACHE_DIR"
OFFLINE_ENV = "KERASZOO_OFFLINE"
TFDS_DATA_DIR_ENV = "TFDS_DATA_DIR"  # tensorflow-datasets' own variable; default ~/tensorflow_datasets
CONNECT_TIMEOUT_S = 0.9  # the reachability check before any download: offline fails within a second
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation during a download

_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
_MNIST_IDX = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_MNIST_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


class DatasetNotFoundError(FileNotFoundError):
    """The data set is neither in a data directory nor in the cache, and cannot be downloaded."""


class DatasetChecksumError(ValueError):
    """A downloaded (and converted) file does not have the expected SHA-256."""


class DatasetChecksumWarning(UserWarning):
    """A local data file differs from the project's reference copy (it is still used)."""


# --------------------------------------------------------------------------------------------------
# the Dataset record
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(repr=False)
class Dataset:
    """A loaded data set.

    * ``name`` -- as passed to :func:`load_dataset`.
    * ``features`` -- ``pandas.DataFrame`` with the original column names and dtypes (numeric columns
      int64/float64, categorical ones strings with NaN where the source has "?"); ``None`` for mnist.
    * ``labels`` -- ``pandas.Series`` (the target column, named as in the file) or ``None``.
    * ``categorical`` -- names of the non-numeric feature columns (only adult has any).
    * ``source`` -- the file read, or ``"sklearn.datasets.load_..."``.
    * ``images`` -- image data sets only: uint8 ``[N, H, W]`` (mnist: the 60000 TRAINING images;
      digits: the 1797 8x8 images, values 0..16). ``None`` otherwise.
    * ``test_images``, ``test_labels`` -- mnist only: its standard 10000-image test split (uint8
      ``[10000, 28, 28]`` and a Series); ``None`` for data sets that have no official split.
    * ``extras`` -- other columns of the file that are neither features nor the label (wine:
      ``colour``, red/white), or ``None``.
    """

    name: str
    features: pd.DataFrame | None
    labels: pd.Series | None
    categorical: list
    source: str
    images: np.ndarray | None = None
    test_images: np.ndarray | None = None
    test_labels: pd.Series | None = None
    extras: pd.DataFrame | None = None

    @property
    def has_test_split(self):
        return self.test_images is not None

    @property
    def numeric_columns(self):
        """Names of the numeric feature columns (empty for mnist, which has no feature table)."""
        if self.features is None:
            return []
        return [c for c in self.features.columns if pd.api.types.is_numeric_dtype(self.features[c])]

    def numeric_array(self):
        """Float64 numpy array of the numeric features, for GAIN-style benchmarks.

        Tabular data sets: the numeric columns in their order ``[rows, len(numeric_columns)]``; for
        adult that leaves out the 8 categorical columns (6 numeric columns remain). mnist: the 60000
        training images flattened to ``[60000, 784]`` with raw pixel values 0..255.
        """
        if self.features is None:
            if self.images is None:
                raise ValueError(f"data set {self.name!r} has no numeric features")
            return self.images.reshape(self.images.shape[0], -1).astype(np.float64)
        return self.features[self.numeric_columns].to_numpy(dtype=np.float64)

    def __len__(self):
        if self.features is not None:
            return len(self.features)
        return 0 if self.images is None else int(self.images.shape[0])

    def __repr__(self):
        parts = [f"name={self.name!r}"]
        if self.features is not None:
            parts.append(f"features={self.features.shape[0]}x{self.features.shape[1]}")
        if self.images is not None:
            parts.append(f"images={tuple(self.images.shape)}")
        if self.test_images is not None:
            parts.append(f"test_images={tuple(self.test_images.shape)}")
        if self.labels is not None:
            parts.append(f"labels={self.labels.name!r}")
        if self.categorical:
            parts.append(f"categorical={len(self.categorical)}")
        parts.append(f"source={self.source!r}")
        return f"Dataset({', '.join(parts)})"


# --------------------------------------------------------------------------------------------------
# what each data set is
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Spec:
    filename: str
    label: str
    urls: tuple
    description: str
    extras: tuple = ()


_FILE_SPECS = {
    "spam": _Spec(
        "spam.csv", "spam", (_UCI + "spambase/spambase.data",),
        "UCI Spambase: 4601 e-mails x 57 word/char frequency features; label spam (0/1)",
    ),
    "letter": _Spec(
        "letter.csv", "lettr", (_UCI + "letter-recognition/letter-recognition.data",),
        "UCI Letter Recognition: 20000 x 16 integer features; label lettr (A-Z)",
    ),
    "credit": _Spec(
        "credit.csv", "default_payment_next_month",
        (_UCI + "00350/default%20of%20credit%20card%20clients.xls",),
        "UCI Default of Credit Card Clients (Taiwan): 30000 x 23 features; label default_payment_next_month",
    ),
    "wine": _Spec(
        "wine.csv", "quality",
        (_UCI + "wine-quality/winequality-red.csv", _UCI + "wine-quality/winequality-white.csv"),
        "UCI Wine Quality, red then white: 6497 x 11 features; label quality (3-9); extras colour",
        extras=("colour",),
    ),
    "adult": _Spec(
        "adult.csv", "class", (_UCI + "adult/adult.data",),
        "UCI Adult census income (training file): 32561 x 14 mixed features; label class (<=50K, >50K)",
    ),
    "mnist": _Spec(
        "mnist.npz", "label",
        tuple(_MNIST_IDX + f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),
        "MNIST: 60000 training + 10000 test 28x28 uint8 digit images, standard order",
    ),
}

_SKLEARN = {
    "breast": ("load_breast_cancer", "scikit-learn's Breast Cancer Wisconsin (diagnostic): 569 x 30"),
    "digits": ("load_digits", "scikit-learn's optical digits: 1797 8x8 images (values 0..16), as 64 features"),
    "wine_sklearn": ("load_wine", "scikit-learn's (UCI) wine recognition: 178 x 13, 3 cultivars"),
}

_ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "class",
]
_LETTER_COLUMNS = [
    "lettr", "x.box", "y.box", "width", "high", "onpix", "x.bar", "y.bar", "x2bar", "y2bar", "xybar",
    "x2ybr", "xy2br", "x.ege", "xegvy", "y.ege", "yegvx",
]


def list_datasets():
    """Names accepted by :func:`load_dataset`."""
    return list(_FILE_SPECS) + list(_SKLEARN)


def dataset_info(name):
    """What :func:`load_dataset` knows about ``name``: description, file name, label, download URLs."""
    _check_name(name)
    if name in _SKLEARN:
        loader, description = _SKLEARN[name]
        return {"name": name, "description": description, "source": f"sklearn.datasets.{loader}",
                "filename": None, "label": "target", "urls": []}
    spec = _FILE_SPECS[name]
    return {"name": name, "description": spec.description, "source": "file", "filename": spec.filename,
            "label": spec.label, "urls": list(spec.urls)}


def _check_name(name):
    if name not in _FILE_SPECS and name not in _SKLEARN:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------
def load_dataset(name, data_dir=None, *, download=True, verify=True):
    """Load data set ``name`` (see :func:`list_datasets`) as a :class:`Dataset`.

    ``data_dir`` (else ``$KERASZOO_DATA_DIR``) is searched first, then the cache, then -- if
    ``download`` and not ``KERASZOO_OFFLINE=1`` -- the file is downloaded from its original address.
    ``verify=False`` accepts a download whose converted file does not match the recorded checksum.
    Raises ``ValueError`` for an unknown name and :class:`DatasetNotFoundError` (a
    ``FileNotFoundError``) when the data cannot be found or fetched; the latter is fast offline.
    """
    _check_name(name)
    if name in _SKLEARN:
        return _load_sklearn(name)
    spec = _FILE_SPECS[name]
    if name == "mnist":
        prepared = _tfds_prepared_mnist_dir()
        if prepared is not None:
            from_tfds = _read_tfds_mnist(prepared)
            if from_tfds is not None:
                return from_tfds
    path = _locate(name, spec, data_dir, download=download, verify=verify)
    return _read(name, spec, path)


def _tfds_prepared_mnist_dir():
    """``<tfds data dir>/mnist/<newest version>`` if TFDS has prepared MNIST there, else None.

    Looks only at the file system (never tfds.load: with the data absent it would try to download).
    """
    root = Path(os.environ.get(TFDS_DATA_DIR_ENV) or Path.home() / "tensorflow_datasets").expanduser()
    versions = []
    for info in (root / "mnist").glob("*/dataset_info.json"):
        parts = info.parent.name.split(".")
        if len(parts) == 3 and all(p.isascii() and p.isdigit() for p in parts):  # skips tfds' "incomplete.*" folders
            versions.append((tuple(int(p) for p in parts), info.parent))
    return max(versions)[1] if versions else None


def _read_tfds_mnist(version_dir):
    """MNIST as a Dataset from TFDS' prepared files, or None (with a warning) if they cannot be read."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder_from_directory(os.fspath(version_dir))
        arrays = {}
        for split in ("train", "test"):
            images, labels = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
            # same layout and dtypes as mnist.npz: [N, 28, 28] uint8 images, uint8 labels
            arrays[split] = (np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28), np.asarray(labels, dtype=np.uint8))
    except Exception as err:  # noqa: BLE001 -- any failure here falls back to the .npz path
        warnings.warn(f"could not read TFDS' prepared MNIST in {version_dir} ({err!r}); using mnist.npz instead",
                      stacklevel=3)
        return None
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    return Dataset(
        name="mnist", features=None, labels=pd.Series(y_train, name="label"), categorical=[],
        source=f"tfds:{version_dir}", images=x_train, test_images=x_test, test_labels=pd.Series(y_test, name="label"),
    )


def _cache_dir():
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "keraszoo"


def _offline():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _locate(name, spec, data_dir, download, verify):
    searched = []
    if data_dir is not None:
        searched.append((Path(data_dir).expanduser(), "data_dir argument"))
    elif os.environ.get(DATA_DIR_ENV):
        searched.append((Path(os.environ[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}"))
    cache = _cache_dir()
    searched.append((cache, "cache"))
    for folder, _ in searched:
        candidate = folder / spec.filename
        if candidate.is_file():
            _warn_if_modified(candidate, spec.filename)
            return candidate

    where = "; ".join(f"{folder / spec.filename} ({what})" for folder, what in searched)
    hint = (
        f"Set {DATA_DIR_ENV} to a directory that holds {spec.filename} (for example "
        f"{DATA_DIR_ENV}=../shared/data) or pass data_dir=..."
    )
    if not download:
        raise DatasetNotFoundError(f"dataset {name!r}: {spec.filename} not found (looked in {where}) and download=False. {hint}")
    if _offline():
        raise DatasetNotFoundError(
            f"dataset {name!r}: {spec.filename} not found (looked in {where}) and {OFFLINE_ENV} is set, "
            f"so it is not downloaded. {hint}"
        )
    for host, port in sorted({_first_hop(u) for u in spec.urls}):
        if not _host_reachable(host, port, CONNECT_TIMEOUT_S):
            raise DatasetNotFoundError(
                f"dataset {name!r}: {spec.filename} not found (looked in {where}) and {host} cannot be reached "
                f"to download it from {spec.urls[0]} (no network?). {hint}"
            )
    try:
        return _download(name, spec, cache, verify=verify)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        if isinstance(err, DatasetNotFoundError):
            raise
        raise DatasetNotFoundError(
            f"dataset {name!r}: {spec.filename} not found (looked in {where}) and downloading it failed: {err}. {hint}"
        ) from err


def _first_hop(url):
    """(host, port) a download of ``url`` connects to first: the configured HTTPS proxy, if any."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        return proxy_parts.hostname, proxy_parts.port or 80
    return parts.hostname, parts.port or 443


def _host_reachable(host, port=443, timeout=CONNECT_TIMEOUT_S):
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds IN TOTAL.

    The attempt (name resolution included, which ignores socket timeouts) runs in a daemon thread
    that is abandoned after ``timeout``, so this never blocks longer than that.
    """
    result = {}

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError:
            result["ok"] = False

    thread = threading.Thread(target=attempt, name=f"keraszoo-reach-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return result.get("ok", False)


_checked = {}


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _expected_sums():
    with open(Path(__file__).with_name("checksums.json"), encoding="utf-8") as f:
        return json.load(f)


def _warn_if_modified(path, filename):
    """Warn (never fail) when a local file differs from the reference copy. Cached per file state."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _checked:
        expected = _expected_sums()["files"].get(filename)
        _checked[key] = expected is None or _sha256_file(path) == expected
    if not _checked[key]:
        warnings.warn(
            f"{path} differs from the reference copy of {filename} (SHA-256 mismatch); using it anyway",
            DatasetChecksumWarning,
            stacklevel=4,
        )


# --------------------------------------------------------------------------------------------------
# reading the files in keraszoo's layout
# --------------------------------------------------------------------------------------------------
def _read(name, spec, path):
    if name == "mnist":
        with np.load(path, allow_pickle=False) as f:
            x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        return Dataset(
            name=name, features=None, labels=pd.Series(y_train, name="label"), categorical=[], source=str(path),
            images=x_train, test_images=x_test, test_labels=pd.Series(y_test, name="label"),
        )
    if name == "adult":
        frame = pd.read_csv(path, na_values=["?"], keep_default_na=False)
    else:
        frame = pd.read_csv(path)
    if spec.label not in frame.columns:
        raise ValueError(f"{path}: expected a label column {spec.label!r}; columns are {list(frame.columns)}")
    labels = frame[spec.label]
    extras = frame[list(spec.extras)] if spec.extras else None
    features = frame.drop(columns=[spec.label, *spec.extras])
    categorical = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    return Dataset(name=name, features=features, labels=labels, categorical=categorical, source=str(path), extras=extras)


def _load_sklearn(name):
    import sklearn.datasets

    loader, _ = _SKLEARN[name]
    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    images = None
    if name == "digits":
        images = np.asarray(bunch.images).astype(np.uint8)
    return Dataset(
        name=name, features=bunch.data, labels=bunch.target.rename("target"), categorical=[],
        source=f"sklearn.datasets.{loader}", images=images,
    )


# --------------------------------------------------------------------------------------------------
# downloading and converting (needs internet; tested offline with the network replaced)
# --------------------------------------------------------------------------------------------------
def _fetch(url, dest):
    """Download ``url`` to ``dest`` (atomically: via a temporary file in the same folder)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "keraszoo"})
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fetch_raw(url, raw_dir, verify):
    """The raw file for ``url`` in ``raw_dir`` (downloaded unless already there), checked where a sum is known."""
    dest = raw_dir / urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    expected = _expected_sums()["raw"].get(url)
    if dest.is_file() and (expected is None or _sha256_file(dest) == expected):
        return dest
    _fetch(url, dest)
    if expected is not None:
        got = _sha256_file(dest)
        if got != expected:
            dest.unlink()
            message = f"{url}: SHA-256 {got} does not match the expected {expected}"
            if verify:
                raise DatasetChecksumError(message + " (pass verify=False to accept it)")
            warnings.warn(message, DatasetChecksumWarning, stacklevel=3)
    return dest


def _download(name, spec, cache, verify=True):
    raw_dir = cache / "raw"
    if name == "mnist":
        try:
            raw = [_fetch_raw(u, raw_dir, verify) for u in spec.urls]
            payload = _mnist_npz_bytes(*_mnist_from_idx(*raw))
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            warnings.warn(f"MNIST from {_MNIST_IDX} failed ({err}); trying the keras copy", stacklevel=3)
            payload = _mnist_npz_bytes(*_mnist_from_keras_npz(_fetch_raw(_MNIST_KERAS, raw_dir, verify)))
    else:
        raw = [_fetch_raw(u, raw_dir, verify) for u in spec.urls]
        payload = _to_csv_bytes(_CONVERTERS[name](*raw))
    return _store_verified(payload, cache / spec.filename, verify)


def _store_verified(payload, dest, verify):
    expected = _expected_sums()["files"].get(dest.name)
    got = hashlib.sha256(payload).hexdigest()
    if expected is not None and got != expected:
        message = (
            f"{dest.name} built from the download has SHA-256 {got}, not the expected {expected}: the source "
            "may have changed"
        )
        if verify:
            raise DatasetChecksumError(message + "; nothing was cached (pass verify=False to use it anyway)")
        warnings.warn(message + "; using it because verify=False", DatasetChecksumWarning, stacklevel=4)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
    os.replace(tmp, dest)
    return dest


def _to_csv_bytes(frame):
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _convert_spam(path):
    return pd.read_csv(path, header=None, names=[f"x{i}" for i in range(1, 58)] + ["spam"])


def _convert_letter(path):
    frame = pd.read_csv(path, header=None, names=_LETTER_COLUMNS)
    return frame[_LETTER_COLUMNS[1:] + ["lettr"]]


def _read_credit_xls(path):
    try:
        return pd.read_excel(path, header=1, index_col=0)
    except ImportError as err:
        raise ImportError(
            f"reading the UCI credit file ({path.name}, an .xls) needs the 'xlrd' package: pip install xlrd ({err})"
        ) from err


def _tidy_credit(frame):
    """UCI's sheet (second row as header, ID as index) -> keraszoo's credit.csv columns."""
    frame = frame.rename(columns=lambda c: str(c).strip().replace(" ", "_"))
    frame = frame.reset_index(drop=True)
    for col in frame.columns:
        values = frame[col].to_numpy(dtype=np.float64)
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            frame[col] = values.astype(np.int64)
    return frame


def _convert_credit(path):
    return _tidy_credit(_read_credit_xls(path))


def _convert_wine(red, white):
    parts = []
    for path, colour in ((red, "red"), (white, "white")):
        part = pd.read_csv(path, sep=";")
        part["colour"] = colour
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _convert_adult(path):
    frame = pd.read_csv(
        path, header=None, names=_ADULT_COLUMNS, skipinitialspace=True, keep_default_na=False, na_values=[],
        skip_blank_lines=True,
    )
    return frame[frame["age"].astype(str).str.len() > 0].reset_index(drop=True)


_CONVERTERS = {
    "spam": _convert_spam,
    "letter": _convert_letter,
    "credit": _convert_credit,
    "wine": _convert_wine,
    "adult": _convert_adult,
}


def _read_idx(path):
    """Numpy array from an IDX file (LeCun's MNIST format), gzip-compressed or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values for shape {dims}, found {body.size}")
    return body.reshape(dims).copy()


def _mnist_from_idx(train_images, train_labels, test_images, test_labels):
    return _read_idx(train_images), _read_idx(train_labels), _read_idx(test_images), _read_idx(test_labels)


def _mnist_from_keras_npz(path):
    with np.load(path, allow_pickle=False) as f:
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _mnist_npz_bytes(x_train, y_train, x_test, y_test):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return buffer.getvalue()
