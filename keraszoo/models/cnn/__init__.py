"""A convolutional classifier of (incomplete) images: MIWAE's downstream classifier (miwae.md Table 1)."""
from keraszoo.models.cnn.cnn import ConvClassifier  # noqa: F401
