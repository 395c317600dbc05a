"""The MisConv classifier (misconv-supplement.md section 1.2): a CNN whose first convolution is `MisConv`,
reading the density of the missing pixels that a frozen DMFA predicts.

Architecture, MNIST and SVHN (section 1.2): [conv32, down, [conv64] x 2, lin20, lin10], conv_n a
convolution-ReLU-BatchNorm sequence, down a stride-2 convolution (we give it the same ReLU and
BatchNorm), lin a dense layer (ReLU inside). The first conv32 is MisConv: its output is the expected
ReLU over the DMFA mixture (then BatchNorm). Kernels 3x3 with "same" padding (the authors' first layer,
reference-implementations.md A1.3; the supplement gives no size).

Training. The supplement trains DMFA first and then the classifier with DMFA frozen. Here one
`fit_arrays` (or `training.train`) does both, in order: the first `dmfa_steps` steps train only the DMFA
(its own loss, `DMFA.training_loss`, on the incomplete training images), the rest train only the
classifier on the frozen DMFA's outputs (no gradient reaches the DMFA). Each phase is its own Keras
`fit` (`fit_rounds`); a bare `model.fit` trains the phase the model is in when it starts (`phase()`). The
DMFA phase learns from the masks `fit` is given; the supplement's Table 1 trains the DMFA on square
holes whatever the task (its section 2): train one `misconv` on square-holed images for its DMFA steps
and copy `model.dmfa`'s weights into models with `dmfa_steps=0`, as `training.misconv_mnist.train_dmfa`
does. Defaults: the classifier's batch 24 and learning rate 1e-3 (section 1.2);
the DMFA's learning rate is its own default (4e-5), `dmfa_steps` 25,000 (its 20 MNIST epochs at 48),
and `default_iterations` adds the classifier's 10 MNIST epochs at 24 (25,000 steps).
"""
import keras
import tensorflow as tf

from keraszoo.models.base import largest_divisor_at_most, merge_histories
from keraszoo.models.dmfa import DMFA
from keraszoo.models.layers import torch_default_init
from keraszoo.models.misconv.classifier import SectionClassifier, section_body
from keraszoo.models.misconv.layers import MisConv
from keraszoo.registry import register_model


@keras.saving.register_keras_serializable(package="keraszoo")
class CompleteWithMixtureMean(keras.layers.Layer):
    """The image with each missing pixel replaced by the mixture's mean, sum_i p_i m_i."""

    def call(self, x, observed, means, weights):
        return tf.where(observed > 0, x, tf.einsum("bk,bkhwc->bhwc", weights, means))


@register_model("misconv")
class MisConvClassifier(SectionClassifier):
    """Classifies incomplete images [H, W, C] through MisConv over a DMFA density (module docstring).

    first_filters (32), filters (64: the two convolutions after the down step), latent (20): the widths
    of section 1.2; dmfa: the DMFA's constructor parameters (a dict); dmfa_steps: the steps that train
    the DMFA before the classifier trains; first_layer: "misconv", or "dmfa_mean" for the paper's
    "DMFA conditional mean fed to the plain CNN" baseline (a plain convolution of the image completed
    by the mixture's mean: MisConv without the variance).
    """

    optimizer_networks = {"dmfa_optimizer": "dmfa", "classifier_optimizer": ("first", "body")}
    default_learning_rates = {"dmfa_optimizer": 4e-5, "classifier_optimizer": 1e-3}
    default_iterations = 50_000

    def __init__(self, first_filters=32, filters=64, latent=20, dmfa=None, dmfa_steps=25_000, first_layer="misconv", n_classes=None, seed=0, **kwargs):
        super().__init__(first_filters, filters, latent, n_classes=n_classes, seed=seed, **kwargs)
        if first_layer not in ("misconv", "dmfa_mean"):
            raise ValueError(f"first_layer must be 'misconv' or 'dmfa_mean', got {first_layer!r}")
        self.first_layer = first_layer
        if isinstance(dmfa_steps, bool) or not isinstance(dmfa_steps, int) or dmfa_steps < 0:
            raise ValueError(f"dmfa_steps must be a non-negative integer, got {dmfa_steps!r}")
        self.dmfa_steps = int(dmfa_steps)
        self.dmfa_params = dict(dmfa or {})
        self.dmfa = DMFA(**{"seed": seed, **self.dmfa_params})
        self.steps_done = self.add_weight(name="steps_done", shape=(), dtype="int64", initializer="zeros", trainable=False, aggregation="only_first_replica")
        self.dmfa_trackers = {name: keras.metrics.Mean(name=name) for name in ("dmfa_loss", "dmfa_nll_per_pixel")}

    def build_networks(self, example_shape):
        height, width, channels = example_shape
        self.dmfa.build((None, height, width, channels))
        k, l = self.dmfa.n_components, self.dmfa.n_factors
        # MisConv and its BatchNorm: the first conv32 of section 1.2, on the image and the DMFA's mixture
        inputs = [
            keras.Input((height, width, channels), name="x"),
            keras.Input((height, width, channels), name="observed"),
            keras.Input((k, height, width, channels), name="means"),
            keras.Input((k, l, height, width, channels), name="factors"),
            keras.Input((k, height, width, channels), name="diagonals"),
            keras.Input((k,), name="weights"),
        ]
        if self.first_layer == "misconv":
            features = MisConv(self.first_filters, 3, kernel_initializer=torch_default_init(self.seed * 100), name="misconv")(*inputs)
        else:  # "dmfa_mean": a plain convolution of the image completed by the mixture's mean
            completed = CompleteWithMixtureMean(name="complete")(inputs[0], inputs[1], inputs[2], inputs[5])
            features = keras.layers.Conv2D(self.first_filters, 3, padding="same", activation="relu", kernel_initializer=torch_default_init(self.seed * 100), name="conv")(completed)
        self.first = keras.Model(inputs, keras.layers.BatchNormalization()(features), name="first")

        self.body = section_body(example_shape, self.first_filters, self.filters, self.latent, self.n_classes, self.seed)

    @property
    def metrics(self):
        return list(self.trackers.values()) + list(self.dmfa_trackers.values())

    def logits(self, x, mask, training=False):
        height, width, channels = self.example_shape
        means, factors, diagonals, log_weights = self.dmfa.mixture(x, mask)
        k, l = self.dmfa.n_components, self.dmfa.n_factors
        means = tf.stop_gradient(tf.reshape(means, [-1, k, height, width, channels]))  # the DMFA is frozen here
        factors = tf.stop_gradient(tf.reshape(factors, [-1, k, l, height, width, channels]))
        diagonals = tf.stop_gradient(tf.reshape(diagonals, [-1, k, height, width, channels]))
        weights = tf.stop_gradient(tf.exp(log_weights))
        features = self.first([x, mask, means, factors, diagonals, weights], training=training)
        return self.body(features, training=training)

    def values_per_row(self, draws=1):
        height, width, channels = self.example_shape
        return self.dmfa.values_per_row(draws) + height * width * (self.first_filters * (self.dmfa.n_factors + 3) + self.filters) * draws

    def phase(self):
        """"dmfa" while the DMFA has steps left to train, else "classifier" (read eagerly, between fits)."""
        return "dmfa" if int(self.steps_done.numpy()) < self.dmfa_steps else "classifier"

    def train_step(self, data):
        # The phase is fixed when the step is traced: a tf.cond around the two optimizers' updates would
        # put a cross-replica synchronisation inside control flow, which MirroredStrategy refuses.
        # `fit_rounds` runs each phase as its own `fit`, so each traces its own step.
        x, mask, y = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        if self._traced_phase == "dmfa":
            weights = self.dmfa.trainable_variables
            with tf.GradientTape() as tape:
                values = self.dmfa.training_loss(x, mask, self.dmfa_optimizer.iterations)
            self.dmfa_optimizer.apply_gradients(zip(tape.gradient(values["loss"], weights), weights))
            logs = self.record(self.dmfa_trackers, {"dmfa_loss": values["loss"], "dmfa_nll_per_pixel": values["nll_per_pixel"]})
        else:
            weights = self.first.trainable_variables + self.body.trainable_variables
            values = self.cross_entropy_step(self.classifier_optimizer, weights, lambda: self.logits(x, mask, training=True), y)
            logs = self.record(self.trackers, values)
        self.steps_done.assign_add(1)
        return logs

    def make_train_function(self, force=False):
        # called eagerly as each fit starts: fix the phase of the step about to be traced, and retrace
        # when it differs from the cached step's (a bare `fit` after the DMFA's steps ran out)
        phase = getattr(self, "_phase_of_fit", None) or self.phase()
        if phase != getattr(self, "_traced_phase", None):
            self._traced_phase, force = phase, True
            self.train_function = None
        return super().make_train_function(force)

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, batch_size=None, callbacks=None, verbose=0):
        """The planned steps, split at the end of the DMFA's `dmfa_steps`: the DMFA phase's steps as one `fit`,
        the classifier's as another (each phase traces its own step; see `train_step`). An epoch count
        that does not divide a phase's steps becomes one epoch of that phase's steps."""
        total = int(epochs) * int(steps_per_epoch)
        dmfa_left = min(total, max(0, self.dmfa_steps - int(self.steps_done.numpy())))
        limit = getattr(self, "_max_steps_per_execution", int(self.steps_per_execution))
        histories, start = [], 0
        try:
            for phase, steps in (("dmfa", dmfa_left), ("classifier", total - dmfa_left)):
                if steps == 0:
                    continue
                per_epoch = int(steps_per_epoch) if steps % int(steps_per_epoch) == 0 else steps
                self._phase_of_fit = phase
                execution = largest_divisor_at_most(per_epoch, limit)
                if execution != int(self.steps_per_execution):
                    self.steps_per_execution = execution
                    self.train_function = None
                histories.append(
                    self.fit(
                        make_dataset(x, mask, y),
                        initial_epoch=start,
                        epochs=start + steps // per_epoch,
                        steps_per_epoch=per_epoch,
                        shuffle=False,
                        verbose=verbose,
                        callbacks=callbacks,
                    )
                )
                start += steps // per_epoch
        finally:
            self._phase_of_fit = None
        return merge_histories(histories)

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import labelled_image_example

        return labelled_image_example({"first_filters": 4, "filters": 6, "latent": 8, "dmfa": {"n_factors": 2, "filters": [4, 4, 4, 4]}, "dmfa_steps": 10, "seed": 1})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dmfa": self.dmfa_params,
                "dmfa_steps": self.dmfa_steps,
                "first_layer": self.first_layer,
            }
        )
        return config
