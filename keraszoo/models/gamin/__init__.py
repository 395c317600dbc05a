"""GAMIN (Yoon & Sull, CVPR 2020), reconstructed from its abstract: see the model's docstring."""
from keraszoo.models.gamin.gamin import GAMIN  # noqa: F401
