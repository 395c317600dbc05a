"""TFDS builders for the tabular data sets, prepared offline from KERASZOO_DATA_DIR and read back with tfds.load;
their fast failure offline; and load_dataset("mnist") reading TFDS' prepared MNIST only when it is on disk."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from keraszoo.data import DatasetNotFoundError, load_dataset  # noqa: E402
from keraszoo.data import datasets as ds  # noqa: E402
from keraszoo.data import tfds_builders as tb  # noqa: E402

# read once at import: fixtures below point KERASZOO_DATA_DIR elsewhere
SHARED_DIR = os.environ.get("KERASZOO_DATA_DIR")
# (name, rows): spam (4601 x 58) and wine (6497 x 13) whole; adult (32561 x 15, the categorical strings
# and missing values) from a copy of its first rows, since all of it takes ~15 s more on 2 cores
TESTED = [("spam", None), ("wine", None), ("adult", 3000)]


def _shared_dir_with(filename):
    """$KERASZOO_DATA_DIR as a Path if it holds `filename`, or skip the test."""
    if not SHARED_DIR:
        pytest.skip("KERASZOO_DATA_DIR is not set (e.g. KERASZOO_DATA_DIR=../shared/data)")
    if not (Path(SHARED_DIR) / filename).is_file():
        pytest.skip(f"{Path(SHARED_DIR) / filename} is not there")
    return Path(SHARED_DIR)


@pytest.fixture
def no_network(monkeypatch):
    """Offline, and a network that fails the test if anything touches it."""
    monkeypatch.setenv("KERASZOO_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("the test must not reach the network")

    monkeypatch.setattr(ds, "_fetch", refuse)
    monkeypatch.setattr(ds.socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def tfds_root(tmp_path_factory):
    """One TFDS data dir for the module, so each data set is prepared once."""
    return tmp_path_factory.mktemp("tfds")


def _file_table(name, shared):
    """load_dataset's table in the file's layout (features, label, extras), as the builders store it."""
    data = load_dataset(name, data_dir=shared, download=False)
    parts = [data.features, data.labels.to_frame()] + ([data.extras] if data.extras is not None else [])
    return pd.concat(parts, axis=1)


# ------------------------------------------------------------------------------ names and registration
def test_builders_are_registered_under_keraszoo_names():
    assert sorted(tb.BUILDERS) == sorted(f"keraszoo_{n}" for n in ("spam", "letter", "credit", "wine", "adult"))
    registered = set(tfds.list_builders(with_community_datasets=False))
    assert set(tb.BUILDERS) <= registered
    assert tb.builder_name("spam") == tb.builder_name("keraszoo_spam") == "keraszoo_spam"
    with pytest.raises(ValueError, match="tabular data sets: spam, letter"):
        tb.builder_name("mnist")
    builder_cls = tb.BUILDERS["keraszoo_wine"]
    assert str(builder_cls.VERSION) == "1.0.0" and "1.0.0" in builder_cls.RELEASE_NOTES
    assert "KERASZOO_DATA_DIR" in builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_importing_keraszoo_data_does_not_import_tensorflow():
    code = (
        "import sys, keraszoo.data\n"
        "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'keraszoo.data.tfds_builders') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# ------------------------------------------------------------------------------ prepared from the data dir
@pytest.mark.parametrize(("name", "rows"), TESTED)
@pytest.mark.filterwarnings("ignore::keraszoo.data.DatasetChecksumWarning")  # the shortened copy
def test_prepared_from_manual_dir_matches_load_dataset(name, rows, tfds_root, tmp_path, no_network):
    filename = ds.dataset_info(name)["filename"]
    shared = _shared_dir_with(filename)
    if rows is not None:  # a manual dir holding the file's header and first `rows` rows
        with open(shared / filename, encoding="utf-8") as source:
            head = [line for _, line in zip(range(rows + 1), source)]
        (tmp_path / filename).write_text("".join(head), encoding="utf-8")
        shared = tmp_path
    tb.prepare(name, tfds_root, manual_dir=shared)

    loaded = tfds.as_numpy(tfds.load(f"keraszoo_{name}", data_dir=tfds_root, download=False, split="train",
                                     batch_size=-1))
    expected = _file_table(name, shared)
    if rows is not None:
        assert len(expected) == rows
        pd.testing.assert_frame_equal(expected, _file_table(name, Path(SHARED_DIR)).head(rows))
    assert tb.columns(name) == list(expected.columns)
    assert set(loaded) == set(expected.columns)
    for column in expected.columns:
        values = loaded[column]
        assert len(values) == len(expected), column
        want = expected[column]
        if pd.api.types.is_float_dtype(want):
            assert values.dtype == np.float32
            np.testing.assert_array_equal(values, want.to_numpy(dtype=np.float32), err_msg=column)
        elif pd.api.types.is_integer_dtype(want):
            assert values.dtype == np.int64
            np.testing.assert_array_equal(values, want.to_numpy(dtype=np.int64), err_msg=column)
        else:  # strings, with load_dataset's NaN as MISSING_CATEGORY
            decoded = [v.decode("utf-8") for v in values]
            assert decoded == want.astype(object).where(want.notna(), tb.MISSING_CATEGORY).tolist(), column
    if name == "adult":  # the comparison above covered missing categories: make sure there were some
        assert (loaded["workclass"] == tb.MISSING_CATEGORY.encode()).sum() == expected["workclass"].isna().sum() > 0

    # a fresh builder reads the prepared files: row order kept, file column order and label recorded
    builder = tfds.builder(f"keraszoo_{name}", data_dir=tfds_root)
    assert builder.info.splits["train"].num_examples == len(expected)
    assert builder.info.metadata["columns"] == list(expected.columns)
    label = ds.dataset_info(name)["label"]
    features, first_label = next(iter(tfds.as_numpy(builder.as_dataset(split="train", as_supervised=True))))
    assert label not in features and len(features) == len(load_dataset(name, data_dir=shared).features.columns)
    first_expected = expected[label].iloc[0]
    assert (first_label.decode() if isinstance(first_label, bytes) else first_label) == first_expected


# ------------------------------------------------------------------------------ no manual file: download
def test_without_manual_file_downloads_through_load_dataset(tmp_path, monkeypatch):
    """No manual dir: the builder gets wine through keraszoo's download + conversion + checksum path
    (the network replaced by the raw UCI files rebuilt from the shared copy)."""
    frame = pd.read_csv(_shared_dir_with("wine.csv") / "wine.csv")
    raw_files = {}
    for colour in ("red", "white"):
        part = frame[frame["colour"] == colour].drop(columns="colour")
        header = ";".join(f'"{c}"' for c in part.columns) + "\n"
        raw_files[f"winequality-{colour}.csv"] = header + part.to_csv(sep=";", index=False, header=False)
    served = []

    def fetch(url, dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(raw_files[url.rsplit("/", 1)[-1]])
        served.append(url)

    monkeypatch.setattr(ds, "_fetch", fetch)
    monkeypatch.setattr(ds, "_host_reachable", lambda host, port=443, timeout=2.0: True)
    monkeypatch.delenv("KERASZOO_OFFLINE", raising=False)
    monkeypatch.setenv("KERASZOO_DATA_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("KERASZOO_CACHE_DIR", str(tmp_path / "cache"))

    builder = tb.prepare("keraszoo_wine", tmp_path / "tfds")
    assert served == ds.dataset_info("wine")["urls"]
    assert ds._sha256_file(tmp_path / "cache" / "wine.csv") == ds._expected_sums()["files"]["wine.csv"]
    assert builder.info.splits["train"].num_examples == len(frame)
    loaded = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1))
    np.testing.assert_array_equal(loaded["alcohol"], frame["alcohol"].to_numpy(dtype=np.float32))
    assert loaded["colour"][0] == b"red" and loaded["colour"][-1] == b"white"


# ------------------------------------------------------------------------------ no data: fail fast
def test_no_manual_file_offline_fails_fast_naming_the_data_dir(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERASZOO_DATA_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("KERASZOO_CACHE_DIR", str(tmp_path / "empty-cache"))
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "wine.csv").write_text("not spam\n")  # a manual dir without spam.csv
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        tb.prepare("spam", tmp_path / "tfds", manual_dir=manual)
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    assert "KERASZOO_DATA_DIR" in message and "spam.csv" in message and str(manual) in message
    assert not (tmp_path / "tfds" / "keraszoo_spam" / "1.0.0").exists()


# ------------------------------------------------------------------------------ mnist through TFDS
@pytest.fixture
def tfds_must_not_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tensorflow-datasets must not be asked to load MNIST here")

    monkeypatch.setattr(tfds, "load", refuse)
    monkeypatch.setattr(tfds, "builder", refuse)
    monkeypatch.setattr(tfds, "builder_from_directory", refuse)


def test_mnist_without_tfds_data_reads_the_npz(tmp_path, monkeypatch, tfds_must_not_load):
    shared = _shared_dir_with("mnist.npz")
    tfds_dir = tmp_path / "tensorflow_datasets"
    (tfds_dir / "mnist" / "incomplete.ABC123").mkdir(parents=True)  # a half-written preparation is ignored
    (tfds_dir / "mnist" / "incomplete.ABC123" / "dataset_info.json").write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    assert ds._tfds_prepared_mnist_dir() is None
    data = load_dataset("mnist", data_dir=shared)
    assert data.source == str(shared / "mnist.npz") and data.images.shape == (60000, 28, 28)


def test_mnist_with_unreadable_tfds_data_warns_and_reads_the_npz(tmp_path, monkeypatch):
    shared = _shared_dir_with("mnist.npz")
    version_dir = tmp_path / "tensorflow_datasets" / "mnist" / "3.0.1"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")  # no features.json, no records
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    assert ds._tfds_prepared_mnist_dir() == version_dir
    with pytest.warns(UserWarning, match="using mnist.npz instead"):
        data = load_dataset("mnist", data_dir=shared)
    assert data.source == str(shared / "mnist.npz")


def test_mnist_from_prepared_tfds_data(tmp_path, monkeypatch):
    """A tiny stand-in for TFDS' mnist (same features, 6 + 4 images) prepared on disk is what load_dataset reads."""
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (6, 28, 28, 1), dtype=np.uint8),
              "test": rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)}
    labels = {"train": np.arange(6) % 10, "test": np.arange(4) + 5}

    class TinyMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = "mnist"
        VERSION = tfds.core.Version("3.0.1")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self, supervised_keys=("image", "label"),
                features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(28, 28, 1)),
                                                     "label": tfds.features.ClassLabel(num_classes=10)}))

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(split) for split in ("train", "test")}

        def _generate_examples(self, split):
            for i, (image, label) in enumerate(zip(images[split], labels[split])):
                yield i, {"image": image, "label": int(label)}

    tfds_dir = tmp_path / "tensorflow_datasets"
    TinyMnist(data_dir=tfds_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    monkeypatch.setenv("KERASZOO_DATA_DIR", str(tmp_path / "no-such-dir"))
    monkeypatch.setenv("KERASZOO_OFFLINE", "1")

    data = load_dataset("mnist")
    assert data.source == f"tfds:{tfds_dir / 'mnist' / '3.0.1'}"
    assert data.images.shape == (6, 28, 28) and data.images.dtype == np.uint8
    assert data.test_images.shape == (4, 28, 28) and data.labels.dtype == np.uint8
    for got, got_labels, split in ((data.images, data.labels, "train"), (data.test_images, data.test_labels, "test")):
        # TFDS shuffles when it writes: compare image -> label pairs, not positions
        want = {images[split][i, ..., 0].tobytes(): labels[split][i] for i in range(len(labels[split]))}
        assert {got[i].tobytes(): got_labels.iloc[i] for i in range(len(got))} == want
