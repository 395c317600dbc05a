"""Data for keraszoo: real data sets, missingness simulators and observed-only scaling.

Mask convention: ``mask == 1`` OBSERVED, ``mask == 0`` MISSING (float32).
Importing this package does not import TensorFlow.
"""
from keraszoo.data.datasets import (
    Dataset,
    DatasetChecksumError,
    DatasetChecksumWarning,
    DatasetNotFoundError,
    dataset_info,
    list_datasets,
    load_dataset,
)
from keraszoo.data.missingness import (
    EMFLOW_TABLE4_MAR_RATES,
    MECHANISMS,
    apply_mask,
    emflow_mar_rate,
    mar_mask,
    mar_probabilities,
    mcar_mask,
    mnar_mask,
    mnar_probabilities,
    noise_mask,
    simulate,
    square_mask,
    trapezoid_mask,
)
from keraszoo.data.scaling import MinMaxScaler

__all__ = [
    "Dataset",
    "DatasetChecksumError",
    "DatasetChecksumWarning",
    "DatasetNotFoundError",
    "EMFLOW_TABLE4_MAR_RATES",
    "MECHANISMS",
    "MinMaxScaler",
    "apply_mask",
    "dataset_info",
    "emflow_mar_rate",
    "list_datasets",
    "load_dataset",
    "mar_mask",
    "mar_probabilities",
    "mcar_mask",
    "mnar_mask",
    "mnar_probabilities",
    "noise_mask",
    "simulate",
    "square_mask",
    "trapezoid_mask",
]
