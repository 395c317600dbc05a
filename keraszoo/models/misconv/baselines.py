"""The classifiers MisConv is compared with in misconv-supplement.md Table 1 that need no density model:
section 1.2's network with a different first layer (reference-implementations.md A1.3, "Baselines as
implemented"):

* `misconv_zero` ("zero"): a plain convolution of the image with missing pixels set to 0;
* `misconv_mask` ("mask"): the same on the image and its mask as extra channels;
* `misconv_pc` ("PC"): a partial convolution (Liu et al. 2018, `PartialConv2D`) of the image.

Each first layer is followed by ReLU (inside the partial convolution's case, after it) and BatchNorm,
then the body all of them share (`classifier.section_body`). Ground truth ("GT") is `misconv_zero` trained
and tested on complete images; k-NN and WAE imputation feed `misconv_zero` with the imputed images;
"DMFA mean" is `misconv` with ``first_layer="dmfa_mean"``.
"""
import keras

from keraszoo.models.layers import torch_default_init
from keraszoo.models.misconv.classifier import SectionClassifier, section_body
from keraszoo.models.misconv.layers import PartialConv2D
from keraszoo.registry import register_model


class FirstLayerClassifier(SectionClassifier):
    """Section 1.2's classifier with the first layer `first_layer` names (set by each registered subclass)."""

    optimizer_networks = {"classifier_optimizer": ("first", "body")}
    default_learning_rates = {"classifier_optimizer": 1e-3}
    default_iterations = 25_000  # 10 epochs of MNIST at batch 24 (section 1.2)
    first_layer = None

    def build_networks(self, example_shape):
        height, width, channels = example_shape
        x = keras.Input((height, width, channels), name="x")
        observed = keras.Input((height, width, channels), name="observed")
        init = torch_default_init(self.seed * 100)
        if self.first_layer == "partial_conv":
            features = keras.layers.ReLU()(PartialConv2D(self.first_filters, 3, kernel_initializer=init, name="partial_conv")(x, observed))
        else:
            image = keras.layers.Concatenate()([x, observed]) if self.first_layer == "mask" else x
            features = keras.layers.Conv2D(self.first_filters, 3, padding="same", activation="relu", kernel_initializer=init, name="conv")(image)
        self.first = keras.Model([x, observed], keras.layers.BatchNormalization()(features), name="first")
        self.body = section_body(example_shape, self.first_filters, self.filters, self.latent, self.n_classes, self.seed)

    def logits(self, x, mask, training=False):
        return self.body(self.first([x * mask, mask], training=training), training=training)

    def values_per_row(self, draws=1):
        height, width, channels = self.example_shape
        return height * width * (2 * channels + 2 * self.first_filters + self.filters) * draws

    def train_step(self, data):
        x, mask, y = data
        weights = self.first.trainable_variables + self.body.trainable_variables
        values = self.cross_entropy_step(self.classifier_optimizer, weights, lambda: self.logits(x, mask, training=True), y)
        return self.record(self.trackers, values)

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import labelled_image_example

        return labelled_image_example({"first_filters": 4, "filters": 6, "latent": 8, "seed": 1})


@register_model("misconv_zero")
class ZeroFirstClassifier(FirstLayerClassifier):
    """Table 1's "zero": a plain first convolution of the image with missing pixels at 0."""

    first_layer = "zero"


@register_model("misconv_mask")
class MaskFirstClassifier(FirstLayerClassifier):
    """Table 1's "mask": the image and its mask as channels of the first convolution."""

    first_layer = "mask"


@register_model("misconv_pc")
class PartialConvClassifier(FirstLayerClassifier):
    """Table 1's "PC": a partial convolution first (Liu et al. 2018)."""

    first_layer = "partial_conv"
