"""MIWAE (Mattei & Frellsen): a deep latent variable model trained on incomplete data by the missIWAE bound."""
from keraszoo.models.miwae.miwae import MIWAE  # noqa: F401
