"""keraszoo: missing-data imputation models for TensorFlow/Keras.

Mask convention everywhere: 1 = observed, 0 = missing.

    >>> import keraszoo
    >>> keraszoo.list_models()
    >>> imputer = keraszoo.sklearn.ZooImputer("gain")  # scikit-learn transformer, NaN = missing
"""
__version__ = "0.1.0"

from keraszoo.registry import get_model, list_models, model_parameters  # noqa: F401,E402


def __getattr__(name):
    # Heavy submodules (TensorFlow, the data loaders) load on first use, so `import keraszoo` stays light.
    import importlib

    if name in ("contract", "data", "metrics", "models", "sklearn", "testing", "validation"):
        return importlib.import_module(f"keraszoo.{name}")
    if name == "load_dataset":
        from keraszoo.data import load_dataset

        return load_dataset
    raise AttributeError(f"module 'keraszoo' has no attribute {name!r}")
