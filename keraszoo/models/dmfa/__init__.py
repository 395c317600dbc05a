"""DMFA (misconv-supplement.md section 1.1): a CNN predicting a Gaussian density of an image's missing pixels."""
from keraszoo.models.dmfa.dmfa import DMFA  # noqa: F401
from keraszoo.models.dmfa.likelihood import component_log_density, mixture_log_density  # noqa: F401
