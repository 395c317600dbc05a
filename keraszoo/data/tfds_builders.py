"""TensorFlow Datasets builders for keraszoo's tabular data sets: ``keraszoo_spam``, ``keraszoo_letter``,
``keraszoo_credit``, ``keraszoo_wine`` and ``keraszoo_adult``.

Importing this module imports TensorFlow Datasets and REGISTERS the builders, so import it before
``tfds.load`` (``keraszoo.data`` itself never imports it, to keep TensorFlow out of plain imports)::

    import tensorflow_datasets as tfds
    import keraszoo.data.tfds_builders  # noqa: F401  (registers keraszoo_*)
    from keraszoo.data.tfds_builders import prepare

    prepare("spam", data_dir="~/tensorflow_datasets", manual_dir="../shared/data")   # once
    ds = tfds.load("keraszoo_spam", data_dir="~/tensorflow_datasets", download=False, split="train")

Where the rows come from when a builder is prepared:

1. the manual directory (``DownloadConfig(manual_dir=...)``, default ``<data_dir>/downloads/manual``) if
   it holds the data set's file under keraszoo's name (``spam.csv``, ...) -- typically the same folder
   as ``KERASZOO_DATA_DIR``;
2. otherwise :func:`keraszoo.data.load_dataset` -- ``$KERASZOO_DATA_DIR``, keraszoo's cache, then a
   download from the original UCI address, checked against ``checksums.json`` and converted by
   :mod:`keraszoo.data.datasets`. Offline (``KERASZOO_OFFLINE=1``, or the host unreachable) this fails
   within about a second with a :class:`~keraszoo.data.DatasetNotFoundError` naming ``KERASZOO_DATA_DIR``.

Each builder has one split, ``"train"``, holding all rows IN THE FILE'S ORDER (shuffling is disabled,
so row ``i`` of ``tfds.load(...)`` is row ``i`` of ``load_dataset(name)``). Features are one flat
``FeaturesDict`` keyed by the file's column names: float columns as float32 scalars, integer columns
as int64 scalars, string columns (adult's categorical columns, letter's and adult's labels, wine's
``colour``) as :class:`tfds.features.Text`. The label column is part of the dict and
``as_supervised=True`` yields ``(dict of feature columns, label)``. TFDS lists the features sorted by
name; :func:`columns` (and ``builder.info.metadata["columns"]``) give the file's column order.
Adult's missing categorical entries (``NaN`` in ``load_dataset``, ``"?"`` in the UCI file) are stored
as :data:`MISSING_CATEGORY`, because a tf.data string tensor cannot hold a missing value.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from keraszoo.data import datasets as _datasets
from keraszoo.data.datasets import DATA_DIR_ENV, DatasetNotFoundError, dataset_info, load_dataset

__all__ = ["BUILDERS", "MISSING_CATEGORY", "builder_name", "columns", "prepare"]

VERSION = "1.0.0"
RELEASE_NOTES = {"1.0.0": "Initial release: all rows of keraszoo's CSV file as one 'train' split, file order."}
MISSING_CATEGORY = "?"  # the UCI files' own marker for a missing categorical value (adult)
NAME_PREFIX = "keraszoo_"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Put keraszoo's copy of the data set in the manual directory under keraszoo's file name (spam.csv,
letter.csv, credit.csv, wine.csv or adult.csv), for example by passing the directory that
{DATA_DIR_ENV} points to: `keraszoo.data.tfds_builders.prepare(name, data_dir, manual_dir=os.environ["{DATA_DIR_ENV}"])`
or `tfds.download.DownloadConfig(manual_dir=...)`. Without the file there, the builder reads
${DATA_DIR_ENV}, then keraszoo's cache, then downloads and converts the original UCI file (internet needed).
"""

_UCI_CITATION = """\
@misc{uci_ml_repository,
  author = {Dua, Dheeru and Graff, Casey},
  title = {{UCI} Machine Learning Repository},
  year = {2017},
  url = {http://archive.ics.uci.edu/ml},
  institution = {University of California, Irvine, School of Information and Computer Sciences}
}"""

# Column schemas, in file order: _info() must describe the features before any file is read.
# "float" -> float32, "int" -> int64, "text" -> tfds Text (utf-8 strings).
_WINE_FLOATS = [
    "fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides", "free sulfur dioxide",
    "total sulfur dioxide", "density", "pH", "sulphates", "alcohol",
]
_ADULT_KINDS = {
    "age": "int", "workclass": "text", "fnlwgt": "int", "education": "text", "education_num": "int",
    "marital_status": "text", "occupation": "text", "relationship": "text", "race": "text", "sex": "text",
    "capital_gain": "int", "capital_loss": "int", "hours_per_week": "int", "native_country": "text",
    "class": "text",
}
_CREDIT_INTS = (
    ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0"] + [f"PAY_{i}" for i in range(2, 7)]
    + [f"BILL_AMT{i}" for i in range(1, 7)] + [f"PAY_AMT{i}" for i in range(1, 7)]
)
_SCHEMAS = {
    # x56, x57 are capital-run lengths: integers in the file
    "spam": [(f"x{i}", "float") for i in range(1, 56)] + [("x56", "int"), ("x57", "int"), ("spam", "int")],
    "letter": [(c, "int") for c in _datasets._LETTER_COLUMNS[1:]] + [("lettr", "text")],
    "credit": [(c, "int") for c in _CREDIT_INTS] + [("default_payment_next_month", "int")],
    "wine": [(c, "float") for c in _WINE_FLOATS] + [("quality", "int"), ("colour", "text")],
    "adult": [(c, _ADULT_KINDS[c]) for c in _datasets._ADULT_COLUMNS],
}
_HOMEPAGES = {
    "spam": "https://archive.ics.uci.edu/dataset/94/spambase",
    "letter": "https://archive.ics.uci.edu/dataset/59/letter+recognition",
    "credit": "https://archive.ics.uci.edu/dataset/350/default+of+credit+card+clients",
    "wine": "https://archive.ics.uci.edu/dataset/186/wine+quality",
    "adult": "https://archive.ics.uci.edu/dataset/2/adult",
}


def builder_name(name):
    """TFDS name of keraszoo data set ``name``: ``"spam"`` (or ``"keraszoo_spam"``) -> ``"keraszoo_spam"``."""
    short = name[len(NAME_PREFIX):] if name.startswith(NAME_PREFIX) else name
    if short not in _SCHEMAS:
        raise ValueError(f"no TFDS builder for {name!r}; tabular data sets: {', '.join(_SCHEMAS)}")
    return NAME_PREFIX + short


def columns(name):
    """Column names of ``keraszoo_<name>`` in the file's order (TFDS's FeaturesDict lists them sorted)."""
    return [c for c, _ in _SCHEMAS[builder_name(name)[len(NAME_PREFIX):]]]


def _feature(kind):
    if kind == "float":
        return tfds.features.Scalar(dtype=np.float32)
    if kind == "int":
        return tfds.features.Scalar(dtype=np.int64)
    return tfds.features.Text()


class _KeraszooTableBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """One keraszoo CSV file as a TFDS data set; subclasses only set ``dataset`` (see :func:`_make_builder`)."""

    dataset = None  # keraszoo's name: "spam", "letter", ...
    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = RELEASE_NOTES
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    def _info(self):
        info = dataset_info(self.dataset)
        schema = _SCHEMAS[self.dataset]
        label = info["label"]
        extras = set(_datasets._FILE_SPECS[self.dataset].extras)
        feature_columns = [c for c, _ in schema if c != label and c not in extras]
        description = (
            f"{info['description']}.\n\nkeraszoo's copy ({info['filename']}), one row per example, columns as "
            f"in the file; label column {label!r}."
        )
        if any(kind == "text" and c != label and c not in extras for c, kind in schema):
            description += f" Missing categorical values are the string {MISSING_CATEGORY!r}."
        return tfds.core.DatasetInfo(
            builder=self,
            description=description,
            features=tfds.features.FeaturesDict({c: _feature(kind) for c, kind in schema}),
            supervised_keys=({c: c for c in feature_columns}, label),
            disable_shuffling=True,  # keep the file's row order, the same as load_dataset's
            homepage=_HOMEPAGES[self.dataset],
            citation=_UCI_CITATION,
            license="CC BY 4.0",
            # FeaturesDict sorts its keys; the file's column order is kept here (metadata.json)
            metadata=tfds.core.MetadataDict(
                columns=[c for c, _ in schema], label=label, missing_category=MISSING_CATEGORY,
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self._load_table(dl_manager))}

    def _load_table(self, dl_manager):
        """keraszoo's Dataset, from the manual directory if the file is there, else via load_dataset."""
        filename = dataset_info(self.dataset)["filename"]
        manual_dir = _manual_dir_or_none(dl_manager)
        if manual_dir is not None and (manual_dir / filename).is_file():
            return load_dataset(self.dataset, data_dir=manual_dir, download=False)
        try:
            return load_dataset(self.dataset)  # $KERASZOO_DATA_DIR, cache, then download + checksum + convert
        except DatasetNotFoundError as err:
            if manual_dir is not None:
                manual = f"{filename} is not in the manual directory {manual_dir}"
            else:
                manual = f"the manual directory is missing or empty, so {filename} is not there"
            raise DatasetNotFoundError(f"{self.name}: {manual}; and without it: {err}") from err

    def _generate_examples(self, table):
        frame = _as_file_table(table)
        schema = _SCHEMAS[self.dataset]
        expected = [c for c, _ in schema]
        if list(frame.columns) != expected:
            raise ValueError(
                f"{table.source}: columns {list(frame.columns)} differ from {self.name}'s schema {expected}"
            )
        column_values = [_column_values(frame[c], kind, c, table.source) for c, kind in schema]
        for index, row in enumerate(zip(*column_values)):
            yield index, dict(zip(expected, row))


def _manual_dir_or_none(dl_manager):
    """The manual directory as a Path, or None when not configured, missing or empty (tfds asserts then)."""
    try:
        return Path(os.fspath(dl_manager.manual_dir))
    except AssertionError:
        return None


def _as_file_table(table):
    """The Dataset's columns back in the file's layout: features, label, extras (their order in every file)."""
    parts = [table.features, table.labels.to_frame()]
    if table.extras is not None:
        parts.append(table.extras)
    return pd.concat(parts, axis=1)


def _column_values(series, kind, column, source):
    """A column as a list of python values of the feature's type; refuses values that would change."""
    if kind == "text":
        return series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str).tolist()
    if not pd.api.types.is_numeric_dtype(series) or series.isna().any():
        raise ValueError(f"{source}: column {column!r} must be numeric without missing values for {kind}")
    if kind == "int":
        if not pd.api.types.is_integer_dtype(series):
            raise ValueError(f"{source}: column {column!r} must hold integers, found {series.dtype}")
        return series.to_numpy(dtype=np.int64).tolist()
    return series.to_numpy(dtype=np.float32).tolist()


def _make_builder(dataset):
    """A registered builder class named ``keraszoo_<dataset>`` (registration happens at class creation)."""
    class_name = "Keraszoo" + dataset.capitalize()
    return type(class_name, (_KeraszooTableBuilder,), {
        "__module__": __name__,
        "__doc__": f"TFDS builder for keraszoo's {dataset!r} data set ({dataset_info(dataset)['filename']}).",
        "name": builder_name(dataset),
        "dataset": dataset,
    })


BUILDERS = {builder_name(dataset): _make_builder(dataset) for dataset in _SCHEMAS}
"""TFDS name -> builder class, for every tabular keraszoo data set."""


def prepare(name, data_dir, manual_dir=None):
    """Build ``keraszoo_<name>`` into ``data_dir`` so ``tfds.load(..., data_dir=data_dir, download=False)`` works.

    ``name`` is keraszoo's name (``"spam"``) or the TFDS one (``"keraszoo_spam"``). ``manual_dir`` is a
    folder holding keraszoo's file (``spam.csv``, ...), e.g. the one ``KERASZOO_DATA_DIR`` points to; without
    it, or without the file there, :func:`keraszoo.data.load_dataset` finds or downloads the data (see the
    module docstring). Does nothing when the data set is already prepared. Never contacts TFDS's GCS
    bucket. Returns the builder (``builder.as_dataset(split="train")`` reads it).
    """
    builder = BUILDERS[builder_name(name)](data_dir=os.fspath(Path(data_dir).expanduser()))
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(Path(manual_dir).expanduser()),
        try_download_gcs=False,  # keraszoo_* are not on GCS; the lookup would only wait on the network
    )
    builder.download_and_prepare(download_config=config)
    return builder
