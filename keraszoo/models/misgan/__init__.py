"""MisGAN (Li, Jiang & Marlin, ICLR 2019)."""
from keraszoo.models.misgan.misgan import MisGAN  # noqa: F401
