"""GAIN (Yoon et al., 2018)."""
from keraszoo.models.gain.gain import GAIN  # noqa: F401
