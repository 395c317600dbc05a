"""EMFlow (Ma & Ghosh): online EM in the latent space of a RealNVP flow; its flow is shared with MCFlow."""
from keraszoo.models.emflow.emflow import EMFlow  # noqa: F401
