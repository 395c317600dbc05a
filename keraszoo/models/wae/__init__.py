"""WAE (misconv-supplement.md section 1.3): a Wasserstein autoencoder imputing images, MisConv's WAE baseline."""
from keraszoo.models.wae.wae import WAE  # noqa: F401
