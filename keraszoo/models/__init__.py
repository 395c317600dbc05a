"""All models of the zoo. Importing this package registers each one by name.

Every sub-package (a model family's folder) is imported here, so adding a family is adding its folder:
its `@register_model` classes are then known to training, serving, the benchmarks and the tests.
"""
import importlib
import pkgutil

# the classical baselines first, then the families in alphabetical order (the registry's listing order)
_FAMILIES = sorted((m.name for m in pkgutil.iter_modules(__path__) if m.ispkg), key=lambda name: (name != "classical", name))
for _family in _FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
