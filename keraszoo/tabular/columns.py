"""Column kinds of a mixed-type table, their fitted statistics, and the checks every frame goes through.

A column is one of three kinds:

* ``numeric``: any numeric dtype (int, float, pandas' nullable Int64/Float64). Imputed by regression.
* ``categorical``: bool, pandas ``category``, or strings with few distinct values. Imputed by a softmax
  classifier over its most frequent values.
* ``text``: strings with many distinct values (names, descriptions). An input only, as in Datawig:
  free text is never imputed.

Kinds are chosen from dtypes and can be overridden per column (``column_kinds={"zip": "categorical"}``).
Datawig calls a string column categorical when < 5% of 100 sampled values are unique
(reference-implementations.md, A2), which makes a 5-row frame's every string column text and a
column with 6 frequent values among 100 samples text too. Our choice: a string column is categorical
when its distinct observed values number at most `max(2, CATEGORICAL_MAX_SHARE x observed)` and at most
`CATEGORICAL_MAX_DISTINCT`; otherwise it is text.

Missing cells: NaN / None / pd.NA, and the empty string in string columns (a string column cannot hold
"" as a real value: it reads as missing).
"""
import dataclasses
import numbers

import numpy as np
import pandas as pd

KINDS = ("numeric", "categorical", "text")
#: a string column is categorical when distinct values <= this share of its observed cells (or 2)...
CATEGORICAL_MAX_SHARE = 0.2
#: ... and at most this many distinct values; more is text.
CATEGORICAL_MAX_DISTINCT = 1000


@dataclasses.dataclass
class ColumnSpec:
    """A column's kind and the statistics fitted on the training frame (JSON-serialisable)."""

    name: str
    kind: str
    #: the pandas dtype of the training column, as `str(dtype)` (restored by `complete`).
    dtype: str
    #: numeric: mean and standard deviation of the observed values; whether every value is a whole number.
    mean: float = 0.0
    std: float = 1.0
    integer: bool = False
    #: numeric: quantile edges of the observed values for the piecewise-linear encoding (empty: none).
    edges: list = dataclasses.field(default_factory=list)
    #: categorical: observed values, most frequent first (ties by value), at most `max_categories`.
    vocabulary: list = dataclasses.field(default_factory=list)
    #: categorical: the type of the original values ("str", "bool", "int", "float") to turn labels back.
    value_type: str = "str"

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def _is_missing_string(value):
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or value == ""


def missing_cells(series):
    """Boolean array: True where a cell of `series` is missing (NaN, None, pd.NA, or "" in a string column)."""
    missing = np.array(series.isna(), dtype=bool)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        values = series.to_numpy(dtype=object)
        missing |= np.fromiter((isinstance(v, str) and v == "" for v in values), bool, len(values))
    return missing


def _value_type(value):
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    return type(value).__name__


def check_single_type(series):
    """The one Python type of a column's observed values; ValueError naming the column when it mixes types."""
    observed = series[~missing_cells(series)]
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return "bool" if pd.api.types.is_bool_dtype(series.dtype) else "float"
    values = observed.to_numpy(dtype=object)
    kinds = {_value_type(v) for v in values}
    # ints and floats together are numbers (a CSV column read as object); anything else mixed is an error
    if kinds <= {"int", "float"} and kinds:
        return "float" if "float" in kinds else "int"
    if len(kinds) > 1:
        examples = {}
        for v in values:
            examples.setdefault(_value_type(v), v)
        shown = ", ".join(f"{k} (e.g. {examples[k]!r})" for k in sorted(kinds))
        raise ValueError(f"column {series.name!r} mixes value types: {shown}; convert it to one type first")
    return kinds.pop() if kinds else "str"


def infer_kind(series):
    """"numeric", "categorical" or "text" for a pandas Series (see the module docstring); ValueError for
    dtypes the imputer cannot use (dates, complex numbers, mixed types)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_complex_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise ValueError(f"column {series.name!r} has dtype {dtype}, which the tabular imputer does not take; convert it to numbers or strings")
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    value_type = check_single_type(series)
    if value_type in ("int", "float"):
        return "numeric"
    if value_type == "bool":
        return "categorical"
    if value_type != "str":
        raise ValueError(f"column {series.name!r} holds {value_type} values, which the tabular imputer does not take")
    observed = series[~missing_cells(series)]
    distinct = observed.nunique()
    if distinct <= max(2, CATEGORICAL_MAX_SHARE * len(observed)) and distinct <= CATEGORICAL_MAX_DISTINCT:
        return "categorical"
    return "text"


def check_frame(df, columns, where):
    """ValueError naming the problem when `df` is not a non-empty DataFrame holding every name in `columns`."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where} takes a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError(f"{where}: the frame is empty (0 rows)")
    if df.columns.duplicated().any():
        duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(f"{where}: the frame has duplicated column names: {', '.join(duplicated)}")
    unknown = [c for c in columns if c not in df.columns]
    if unknown:
        raise ValueError(f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; the frame has {', '.join(map(repr, df.columns))}")


def fit_spec(series, kind=None, max_categories=1000, numeric_bins=0):
    """The `ColumnSpec` of a training column: its kind (inferred unless given) and statistics
    (`numeric_bins` > 0: that many quantile bins of a numeric column's observed values, fewer where
    quantiles coincide).

    ValueError naming the column when it has no observed value.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"column {series.name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    kind = kind or infer_kind(series)
    missing = missing_cells(series)
    if missing.all():
        raise ValueError(f"column {series.name!r} has no observed value: nothing to learn from or about it")
    observed = series[~missing]
    spec = ColumnSpec(name=str(series.name), kind=kind, dtype=str(series.dtype))
    if kind == "numeric":
        try:
            values = pd.to_numeric(observed).to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"column {series.name!r} is set numeric but holds values that are not numbers") from None
        if not np.isfinite(values).all():
            raise ValueError(f"column {series.name!r} holds infinite values")
        spec.mean = float(values.mean())
        std = float(values.std())
        spec.std = std if std > 0 else 1.0
        spec.integer = bool(np.all(values == np.round(values)))
        if numeric_bins > 0:
            edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, int(numeric_bins) + 1)))
            spec.edges = [float(e) for e in edges] if len(edges) > 1 else []
    elif kind == "categorical":
        check_single_type(series)
        values = observed.to_numpy(dtype=object)
        spec.value_type = _value_type(values[0])
        counts = pd.Series([str(v) for v in values]).value_counts()
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        spec.vocabulary = [value for value, _ in ordered[:max_categories]]
    else:
        check_single_type(series)
    return spec


def column_values(series, spec):
    """A column as the network takes it: float32 with NaN for numeric columns, str with "" where missing else."""
    missing = missing_cells(series)
    if spec.kind == "numeric":
        values = np.full(len(series), np.nan, np.float32)
        if (~missing).any():
            try:
                values[~missing] = pd.to_numeric(series[~missing]).to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"column {spec.name!r} is numeric but holds values that are not numbers") from None
        return values
    out = np.empty(len(series), dtype=object)
    out[:] = ""
    observed = series.to_numpy(dtype=object)[~missing]
    out[~missing] = [str(v) for v in observed]
    return out


def restore_value(label, spec):
    """A categorical column's label string back to its original value type."""
    if spec.value_type == "bool":
        return label == "True"
    if spec.value_type == "int":
        return int(label)
    if spec.value_type == "float":
        return float(label)
    return label
