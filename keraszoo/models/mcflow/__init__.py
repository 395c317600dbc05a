"""MCFlow (Richardson et al. 2020): a RealNVP flow and a latent network predicting the likeliest embedding."""
from keraszoo.models.mcflow.mcflow import MCFlow  # noqa: F401
