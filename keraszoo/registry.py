"""Models registered by name, so `get_model("gain")` and the CLI need no per-model code.

Every parameter a user passes must be one the model's constructor takes: an unknown
one is an error that lists the valid ones (never silently ignored).
"""
import inspect

_REGISTRY = {}


def register_model(name):
    """Class decorator: make `cls` available as `get_model(name)`.

    Keras models are also registered for `keras.saving` under the package "keraszoo",
    so a saved `.keras` file loads back without `custom_objects`.
    """

    def decorator(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].__name__}")
        import keras

        if issubclass(cls, keras.Model):
            cls = keras.saving.register_keras_serializable(package="keraszoo", name=cls.__name__)(cls)
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _ensure_models_imported():
    import keraszoo.models  # noqa: F401  (importing registers every model)


def list_models(kind=None, task=None):
    """Sorted registered model names; `kind` ("deep" or "classical") and `task` ("impute" or "classify") filter."""
    _ensure_models_imported()
    if kind not in (None, "deep", "classical"):
        raise ValueError(f"kind must be 'deep', 'classical' or None, got {kind!r}")
    if task not in (None, "impute", "classify"):
        raise ValueError(f"task must be 'impute', 'classify' or None, got {task!r}")
    names = sorted(_REGISTRY)
    if kind is not None:
        names = [n for n in names if is_deep(n) == (kind == "deep")]
    if task is not None:
        names = [n for n in names if model_task(n) == task]
    return names


def unregister_model(name):
    """Remove `name` from the registry (for models registered by a test for its own duration)."""
    _REGISTRY.pop(name, None)


def model_task(name_or_cls):
    """"impute" or "classify": what the model does (its class attribute `task`)."""
    cls = get_model_class(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    return getattr(cls, "task", "impute")


def get_model_class(name):
    _ensure_models_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}") from None


def is_deep(name_or_cls):
    import keras

    cls = get_model_class(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    return issubclass(cls, keras.Model)


def model_parameters(name):
    """The constructor parameters of model `name` with their defaults (None if required)."""
    cls = get_model_class(name)
    sig = inspect.signature(cls.__init__)
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def get_model(name, **params):
    """A new, untrained model `name` built with `params`; unknown parameters are an error."""
    cls = get_model_class(name)
    valid = model_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} has no parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(sorted(valid)) or '(none)'}"
        )
    return cls(**params)
