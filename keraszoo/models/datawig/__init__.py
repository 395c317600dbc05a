"""Datawig-style per-column imputation of numeric tables (the contract's face of `keraszoo.tabular`)."""
from keraszoo.models.datawig.datawig import DatawigImputer, PerColumnMLP  # noqa: F401
