"""Data set loading: real files (when KERASZOO_DATA_DIR is set), sklearn sets, fast offline failure, and the
download-and-convert path with the network replaced by files built from the local copies."""
import gzip
import hashlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keraszoo.data import datasets as ds
from keraszoo.data import (
    Dataset,
    DatasetChecksumError,
    DatasetChecksumWarning,
    DatasetNotFoundError,
    dataset_info,
    list_datasets,
    load_dataset,
)

# read once at import: some fixtures below point KERASZOO_DATA_DIR elsewhere
SHARED_DIR = os.environ.get("KERASZOO_DATA_DIR")
ALL = ["spam", "letter", "credit", "wine", "adult", "mnist", "breast", "digits", "wine_sklearn"]


def _shared_file(filename):
    """Path of `filename` in $KERASZOO_DATA_DIR, or skip the test."""
    root = SHARED_DIR
    if not root:
        pytest.skip("KERASZOO_DATA_DIR is not set (e.g. KERASZOO_DATA_DIR=../shared/data)")
    path = Path(root) / filename
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    return path


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data dir, an empty cache, and a network that fails the test if it is touched."""
    monkeypatch.setenv("KERASZOO_DATA_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("KERASZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no-tfds"))  # a prepared TFDS mnist on this machine must not answer
    monkeypatch.delenv("KERASZOO_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("the test must not reach the network")

    monkeypatch.setattr(ds, "_fetch", no_network)
    monkeypatch.setattr(ds.socket, "create_connection", no_network)
    return tmp_path


# ------------------------------------------------------------------------------------ names, errors
def test_names_and_unknown_name():
    assert list_datasets() == ALL
    with pytest.raises(ValueError, match="valid names: spam, letter, credit, wine, adult, mnist, breast"):
        load_dataset("spambase")
    info = dataset_info("wine")
    assert info["filename"] == "wine.csv" and all(u.startswith("https://archive.ics.uci.edu/") for u in info["urls"])


def test_offline_env_fails_fast_with_helpful_message(isolated, monkeypatch):
    monkeypatch.setenv("KERASZOO_OFFLINE", "1")
    for name, filename in (("spam", "spam.csv"), ("mnist", "mnist.npz")):
        start = time.perf_counter()
        with pytest.raises(DatasetNotFoundError) as info:
            load_dataset(name)
        assert time.perf_counter() - start < 1.0
        message = str(info.value)
        assert "KERASZOO_DATA_DIR" in message and filename in message and "KERASZOO_OFFLINE" in message
        assert isinstance(info.value, FileNotFoundError)


def test_unreachable_host_fails_fast(isolated, monkeypatch):
    monkeypatch.setattr(ds, "_host_reachable", lambda host, port=443, timeout=2.0: False)
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError, match="KERASZOO_DATA_DIR") as info:
        load_dataset("letter", data_dir=isolated / "nowhere")
    assert time.perf_counter() - start < 1.0
    assert "archive.ics.uci.edu" in str(info.value) and "letter.csv" in str(info.value)


def test_download_false_fails_without_network(isolated):
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_dataset("adult", download=False)


def test_reachability_check_has_a_hard_deadline(monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):  # like DNS resolution on a machine without network
        release.wait(30)
        raise OSError("gave up")

    monkeypatch.setattr(ds.socket, "create_connection", hang)
    start = time.perf_counter()
    try:
        assert ds._host_reachable("archive.ics.uci.edu", 443, timeout=0.3) is False
        assert time.perf_counter() - start < 1.0
    finally:
        release.set()

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError()

    monkeypatch.setattr(ds.socket, "create_connection", refuse)
    assert ds._host_reachable("example.invalid", 443, timeout=0.3) is False


def test_reachability_check_goes_to_the_proxy_when_one_is_set(monkeypatch):
    for var in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert ds._first_hop("https://archive.ics.uci.edu/ml/x.data") == ("archive.ics.uci.edu", 443)
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert ds._first_hop("https://archive.ics.uci.edu/ml/x.data") == ("proxy.example", 3128)


# --------------------------------------------------------------------------------------- sklearn
@pytest.mark.parametrize("name,shape", [("breast", (569, 30)), ("digits", (1797, 64)), ("wine_sklearn", (178, 13))])
def test_sklearn_datasets_always_load(isolated, name, shape):
    data = load_dataset(name)
    assert isinstance(data, Dataset) and data.features.shape == shape
    assert len(data.labels) == shape[0] and data.categorical == []
    assert data.numeric_array().dtype == np.float64 and data.numeric_array().shape == shape
    assert data.source.startswith("sklearn.datasets.")
    if name == "digits":
        assert data.images.shape == (1797, 8, 8) and data.images.dtype == np.uint8
        assert np.array_equal(data.images.reshape(1797, 64), data.numeric_array())


# ----------------------------------------------------------------------------- real shared files
@pytest.mark.parametrize(
    "name,filename,shape,label",
    [
        ("spam", "spam.csv", (4601, 57), "spam"),
        ("letter", "letter.csv", (20000, 16), "lettr"),
        ("credit", "credit.csv", (30000, 23), "default_payment_next_month"),
        ("wine", "wine.csv", (6497, 11), "quality"),
    ],
)
def test_tabular_files(name, filename, shape, label):
    path = _shared_file(filename)
    data = load_dataset(name, data_dir=path.parent)
    assert data.features.shape == shape and data.labels.name == label and len(data.labels) == shape[0]
    assert all(pd.api.types.is_numeric_dtype(t) for t in data.features.dtypes)
    assert data.categorical == [] and data.source == str(path)
    arr = data.numeric_array()
    assert arr.dtype == np.float64 and arr.shape == shape and np.isfinite(arr).all()
    if name == "wine":
        assert data.extras["colour"].value_counts().to_dict() == {"white": 4898, "red": 1599}
        assert set(data.labels.unique()) <= set(range(3, 10))
    if name == "letter":
        assert set(data.labels.unique()) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if name == "spam":
        assert set(data.labels.unique()) == {0, 1}


def test_env_var_is_used(monkeypatch, tmp_path):
    path = _shared_file("letter.csv")
    monkeypatch.setenv("KERASZOO_DATA_DIR", str(path.parent))
    monkeypatch.setenv("KERASZOO_CACHE_DIR", str(tmp_path))
    assert load_dataset("letter").source == str(path)


def test_adult_mixed_types():
    path = _shared_file("adult.csv")
    data = load_dataset("adult", data_dir=path.parent)
    assert data.features.shape == (32561, 14)
    assert data.categorical == [
        "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex", "native_country",
    ]
    numeric = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    assert data.numeric_columns == numeric
    assert data.numeric_array().shape == (32561, 6)
    assert data.features["workclass"].isna().sum() > 0  # "?" in the file reads as missing
    assert not (data.features[data.categorical] == "?").any().any()
    assert set(data.labels.unique()) == {"<=50K", ">50K"}


def test_mnist():
    path = _shared_file("mnist.npz")
    data = load_dataset("mnist", data_dir=path.parent)
    assert data.features is None and data.has_test_split
    assert data.images.shape == (60000, 28, 28) and data.images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28) and data.test_images.dtype == np.uint8
    assert len(data.labels) == 60000 and len(data.test_labels) == 10000
    assert set(np.unique(data.labels)) == set(range(10))
    assert data.numeric_array().shape == (60000, 784)


def test_modified_local_copy_only_warns(tmp_path):
    path = _shared_file("spam.csv")
    lines = path.read_text().splitlines(keepends=True)
    (tmp_path / "spam.csv").write_text("".join(lines[:101]))
    with pytest.warns(DatasetChecksumWarning, match="differs"):
        data = load_dataset("spam", data_dir=tmp_path)
    assert data.features.shape == (100, 57)


# ------------------------------------------------ download + convert, with files built from the shared copies
def _raw_uci_files(name):
    """Files in the raw UCI formats (no header, ';'-separated wine, ', '-separated adult...)."""
    frame = pd.read_csv(_shared_file(f"{name}.csv"), keep_default_na=False) if name == "adult" else None
    if name == "spam":
        text = _shared_file("spam.csv").read_text()
        return {"spambase.data": text.split("\n", 1)[1]}
    if name == "letter":
        frame = pd.read_csv(_shared_file("letter.csv"))
        frame = frame[["lettr"] + [c for c in frame.columns if c != "lettr"]]
        return {"letter-recognition.data": frame.to_csv(index=False, header=False)}
    if name == "wine":
        frame = pd.read_csv(_shared_file("wine.csv"))
        out = {}
        for colour in ("red", "white"):
            part = frame[frame["colour"] == colour].drop(columns="colour")
            header = ";".join(f'"{c}"' for c in part.columns) + "\n"
            out[f"winequality-{colour}.csv"] = header + part.to_csv(sep=";", index=False, header=False)
        return out
    if name == "adult":
        body = frame.to_csv(index=False, header=False).replace(",", ", ")
        return {"adult.data": body + "\n"}
    raise AssertionError(name)


def _fake_network(monkeypatch, files):
    """Make `_fetch` serve `files` (name -> text/bytes) and the hosts reachable."""
    served = []

    def fetch(url, dest):
        name = ds.urllib.parse.unquote(url.rsplit("/", 1)[-1])
        content = files[name]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content if isinstance(content, bytes) else content.encode())
        served.append(url)

    monkeypatch.setattr(ds, "_fetch", fetch)
    monkeypatch.setattr(ds, "_host_reachable", lambda host, port=443, timeout=2.0: True)
    return served


@pytest.mark.parametrize("name", ["spam", "letter", "wine", "adult"])
def test_download_converts_to_the_reference_file(isolated, monkeypatch, name):
    served = _fake_network(monkeypatch, _raw_uci_files(name))
    data = load_dataset(name)
    cached = isolated / "cache" / f"{name}.csv"
    assert data.source == str(cached)
    assert served == list(dataset_info(name)["urls"])
    assert ds._sha256_file(cached) == ds._expected_sums()["files"][f"{name}.csv"]
    reference = load_dataset(name, data_dir=_shared_file(f"{name}.csv").parent)
    pd.testing.assert_frame_equal(data.features, reference.features)
    # a second call reads the cache without any network
    monkeypatch.setattr(ds, "_fetch", lambda *a: (_ for _ in ()).throw(AssertionError("refetched")))
    assert load_dataset(name).source == str(cached)


def test_credit_sheet_is_tidied_to_the_reference_file():
    path = _shared_file("credit.csv")
    reference = pd.read_csv(path)
    # what pandas.read_excel(header=1, index_col=0) gives for UCI's .xls: ID index, spaced label, floats
    sheet = reference.rename(columns={"default_payment_next_month": "default payment next month"}).astype(float)
    sheet.index = pd.Index(range(1, len(sheet) + 1), name="ID")
    tidy = ds._tidy_credit(sheet)
    assert hashlib.sha256(ds._to_csv_bytes(tidy)).hexdigest() == ds._expected_sums()["files"]["credit.csv"]


def test_credit_without_xlrd_says_so(monkeypatch, tmp_path):
    def no_xlrd(*args, **kwargs):
        raise ImportError("Missing optional dependency 'xlrd'.")

    monkeypatch.setattr(ds.pd, "read_excel", no_xlrd)
    with pytest.raises(ImportError, match="pip install xlrd"):
        ds._convert_credit(tmp_path / "default of credit card clients.xls")


def test_checksum_mismatch_on_download(isolated, monkeypatch):
    files = _raw_uci_files("letter")
    files["letter-recognition.data"] = files["letter-recognition.data"].replace("T,", "U,", 1)
    _fake_network(monkeypatch, files)
    with pytest.raises(DatasetChecksumError, match="verify=False"):
        load_dataset("letter")
    assert not (isolated / "cache" / "letter.csv").exists()
    with pytest.warns(DatasetChecksumWarning):
        data = load_dataset("letter", verify=False)
    assert data.labels.iloc[0] == "U"


def _idx_gz(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return gzip.compress(header + array.tobytes(), compresslevel=0)


@pytest.mark.slow
def test_mnist_download_from_idx_files(isolated, monkeypatch):
    with np.load(_shared_file("mnist.npz")) as f:
        arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    files = {
        "train-images-idx3-ubyte.gz": _idx_gz(arrays["x_train"]),
        "train-labels-idx1-ubyte.gz": _idx_gz(arrays["y_train"]),
        "t10k-images-idx3-ubyte.gz": _idx_gz(arrays["x_test"]),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(arrays["y_test"]),
    }
    sums = ds._expected_sums()
    # our gzip bytes differ from the originals: accept them by their own sums for this test
    sums["raw"].update({ds._MNIST_IDX + k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    monkeypatch.setattr(ds, "_expected_sums", lambda: sums)
    _fake_network(monkeypatch, files)
    data = load_dataset("mnist")
    cached = isolated / "cache" / "mnist.npz"
    assert data.source == str(cached)
    assert ds._sha256_file(cached) == sums["files"]["mnist.npz"]
    assert np.array_equal(data.test_images, arrays["x_test"])


def test_idx_reader_rejects_garbage(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(ValueError, match="IDX"):
        ds._read_idx(bad)
