"""MisConv (misconv-supplement.md): CNNs on incomplete images through an expected-ReLU first convolution."""
from keraszoo.models.misconv.layers import MisConv, expected_relu  # noqa: F401
from keraszoo.models.misconv.misconv import MisConvClassifier  # noqa: F401
