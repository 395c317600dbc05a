"""MisConv (misconv-supplement.md): CNNs on incomplete images through an expected-ReLU first convolution,
and the Table 1 baselines that change only the first layer."""
from keraszoo.models.misconv.baselines import MaskFirstClassifier, PartialConvClassifier, ZeroFirstClassifier  # noqa: F401
from keraszoo.models.misconv.layers import MisConv, PartialConv2D, expected_relu  # noqa: F401
from keraszoo.models.misconv.misconv import MisConvClassifier  # noqa: F401
