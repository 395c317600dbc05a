"""GAIN: Generative Adversarial Imputation Nets (Yoon, Jordon & van der Schaar, ICML 2018).

The baseline that g2lgn.md compares against (its ref. [18], Table 1) and the template for every
deep model in the zoo: copy this module to add one.
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.models.layers import gain_reference_init, mlp
from keraszoo.registry import register_model

@register_model("gain")
class GAIN(DeepImputer):
    """GAIN imputer.

    Generator G and discriminator D are both 2d -> d -> d -> d MLPs (ReLU, sigmoid output), initialised
    as the reference code does (`gain_reference_init`: what it calls Xavier init is He's normal);
    `hidden_units` overrides the two hidden widths (None = d, as in the paper).

    * G sees the data with uniform noise U(0, `noise_scale`) at missing entries, concatenated with
      the mask, and proposes a value for every entry (g2lgn.md eq. 2 for its global net has the same
      form: X_hat = M * X + (1 - M) * G(X, M, Z)).
    * D sees the completed data with a hint H and predicts, entry by entry, the probability that
      the entry was observed (g2lgn.md eq. 3).
    * G's loss is the adversarial term on missing entries plus `alpha` times the reconstruction
      MSE of observed entries (g2lgn.md eq. 8 and 11, with d = mean squared error).

    Choices where the GAIN paper and its reference code differ (written down here, as they matter):

    * `hint_variant="code"` (default): the reference code's hint H = B * M with B ~ Bernoulli(hint_rate)
      entry by entry, and both losses average over all entries. `hint_variant="paper"`: the GAIN
      paper's hint mechanism (its section 4): B has exactly one 0 per row, at a coordinate chosen
      uniformly, H = B * M + 0.5 (1 - B), and D's and G's adversarial losses are taken on that one
      coordinate only (the paper's sums over i with b_i = 0). `hint_rate` is not used by it.
    * Beyond the paper, `extra_mask_rate` > 0 hides that fraction of the observed entries of each
      batch from G and D (they are treated as missing) while G's reconstruction loss still covers
      every observed entry, so G learns to predict entries it cannot see, not only to copy its input.
      Off by default (0.0 is GAIN as published); 0.2 improved RMSE on spam, letter and credit here
      (0.0528 -> 0.0507, 0.1287 -> 0.1155, 0.1345 -> 0.1254; benchmarks/results/uci_mcar20_gain_extra_mask.md).
    * D's losses are computed from its logits (stable log-sigmoid) rather than log(D + 1e-8).
    * D is updated first, then G on the same batch and noise against the updated D (as the reference
      code's session order does).
    * `impute` feeds the noise's mean (noise_scale / 2) so a single imputation is deterministic and a
      row's result does not depend on the other rows in its batch; `sample_imputations` draws noise.
    """

    generative = True
    example_kinds = ("table",)  # images are flattened to rows, as g2lgn.md runs GAIN on MNIST
    optimizer_networks = {"g_optimizer": "generator", "d_optimizer": "discriminator"}
    default_learning_rates = {"g_optimizer": 1e-3, "d_optimizer": 1e-3}

    def __init__(
        self, hint_rate=0.9, alpha=100.0, hidden_units=None, noise_scale=0.01, hint_variant="code", extra_mask_rate=0.0, seed=0, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        if not 0.0 <= hint_rate <= 1.0:
            raise ValueError(f"hint_rate must be in [0, 1], got {hint_rate}")
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        if hint_variant not in ("code", "paper"):
            raise ValueError(f"hint_variant must be 'code' or 'paper', got {hint_variant!r}")
        if not 0.0 <= extra_mask_rate < 1.0:
            raise ValueError(f"extra_mask_rate must be in [0, 1), got {extra_mask_rate}")
        if hidden_units is not None and (len(hidden_units) == 0 or min(hidden_units) < 1):
            raise ValueError(f"hidden_units must be a non-empty list of positive widths, got {hidden_units}")
        self.hint_rate = float(hint_rate)
        self.alpha = float(alpha)
        self.hidden_units = None if hidden_units is None else [int(u) for u in hidden_units]
        self.noise_scale = float(noise_scale)
        self.hint_variant = hint_variant
        self.extra_mask_rate = float(extra_mask_rate)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.mse_tracker = keras.metrics.Mean(name="mse_observed")

    def build_networks(self, example_shape):
        (n_features,) = example_shape
        hidden = self.hidden_units or [n_features, n_features]
        self.generator = mlp(
            2 * n_features, hidden, n_features, "sigmoid", seed=self.seed * 1000, name="generator", initializer=gain_reference_init
        )
        # D outputs logits: its log-probabilities are computed stably from them (see train_step).
        self.discriminator = mlp(
            2 * n_features, hidden, n_features, None, seed=self.seed * 1000 + 500, name="discriminator", initializer=gain_reference_init
        )

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """`g_optimizer` trains the generator, `d_optimizer` the discriminator (Adam(1e-3) each if None)."""
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.mse_tracker]

    def noise_like(self, x, deterministic):
        if deterministic:
            return tf.fill(tf.shape(x), 0.5 * self.noise_scale)
        return self.random_uniform(tf.shape(x), 0.0, self.noise_scale)

    def generate(self, x, mask, noise, training=False):
        """G's value for every entry: G(X~, M) with X~ = M * X + (1 - M) * Z (noise at missing entries)."""
        x_noisy = mask * x + (1.0 - mask) * noise
        return self.generator(tf.concat([x_noisy, mask], axis=1), training=training)

    def impute_batch(self, x, mask):
        return self.generate(x, mask, self.noise_like(x, deterministic=True))

    def sample_batch(self, x, mask, n):
        return tf.map_fn(
            lambda _: self.generate(x, mask, self.noise_like(x, deterministic=False)), tf.range(n), fn_output_signature=x.dtype
        )

    def hint_mask(self, mask):
        """B of the hint mechanism (1 = D is told whether the entry was observed), see `hint_variant`."""
        return hint_mask(mask, self.hint_rate, self.hint_variant, self.random_uniform)

    def train_step(self, data):
        x, observed = data
        x = tf.where(observed > 0, x, tf.zeros_like(x))
        # With extra_mask_rate > 0, hide some observed entries from G and D: G must reconstruct them.
        mask = observed
        if self.extra_mask_rate > 0:
            keep = self.random_uniform(tf.shape(observed)) >= self.extra_mask_rate
            mask = observed * tf.cast(keep, observed.dtype)
        noise = self.noise_like(x, deterministic=False)
        b = self.hint_mask(mask)
        if self.hint_variant == "code":
            hint, weight = b * mask, tf.ones_like(mask)
        else:
            hint, weight = b * mask + 0.5 * (1.0 - b), 1.0 - b
        # Denominators over the GLOBAL batch: each replica's loss is its share of the global-batch loss,
        # and the replicas' gradients are summed (see base.global_sum); with one replica, plain means.
        counts = global_sum(tf.stack([tf.reduce_sum(weight), tf.reduce_sum(observed)]))
        weight_sum, observed_sum = tf.unstack(tf.maximum(counts, 1.0))

        with tf.GradientTape() as g_tape:
            completed = self.generate(x, mask, noise, training=True)
            x_hat = mask * x + (1.0 - mask) * completed

            # Discriminator step on G's current output (G gets no gradient from it).
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                d_logits = self.discriminator(tf.concat([tf.stop_gradient(x_hat), hint], axis=1), training=True)
                d_loss = tf.reduce_sum(weight * bce_from_logits(mask, d_logits)) / weight_sum
            d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))

            # Generator step against the updated discriminator: -log D(x_hat) on missing entries.
            d_logits = self.discriminator(tf.concat([x_hat, hint], axis=1), training=True)
            g_adv = tf.reduce_sum(weight * (1.0 - mask) * tf.math.softplus(-d_logits)) / weight_sum
            mse = tf.reduce_sum(tf.square(observed * (x - completed))) / observed_sum
            g_loss = g_adv + self.alpha * mse
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))

        d_loss, g_loss, mse = tf.unstack(global_sum(tf.stack([d_loss, g_loss, mse])))  # global-batch values
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.mse_tracker.update_state(mse)
        return {m.name: m.result() for m in self.metrics}

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {"hint_rate": 0.8, "alpha": 10.0, "hidden_units": [6, 4], "noise_scale": 0.05, "hint_variant": "paper", "extra_mask_rate": 0.1, "seed": 3}
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hint_rate": self.hint_rate,
                "alpha": self.alpha,
                "hidden_units": self.hidden_units,
                "noise_scale": self.noise_scale,
                "hint_variant": self.hint_variant,
                "extra_mask_rate": self.extra_mask_rate,
            }
        )
        return config


def hint_mask(mask, hint_rate, hint_variant, random_uniform):
    """GAIN's B for a batch of any example shape (1 = D is told whether the entry was observed).

    "code": B ~ Bernoulli(`hint_rate`) entry by entry (the reference code); "paper": exactly one entry
    of each example withheld, chosen uniformly (the GAIN paper's section 4). `random_uniform(shape)`
    draws U(0, 1) (a model's replica-aware `random_uniform`).
    """
    if hint_variant == "code":
        return tf.cast(random_uniform(tf.shape(mask)) < hint_rate, mask.dtype)
    flat = tf.reshape(mask, [tf.shape(mask)[0], -1])
    n_entries = tf.shape(flat)[1]
    withheld = tf.cast(tf.floor(random_uniform(tf.shape(flat)[:1]) * tf.cast(n_entries, mask.dtype)), tf.int32)
    b = 1.0 - tf.one_hot(tf.minimum(withheld, n_entries - 1), n_entries, dtype=mask.dtype)
    return tf.reshape(b, tf.shape(mask))


def bce_from_logits(observed, logits):
    """-[m log D + (1 - m) log(1 - D)] with D = sigmoid(logits), computed stably.

    GAIN's reference code takes log(D + 1e-8) of a sigmoid output; on CPU that formulation produced
    NaN weights in some runs here (spam seed 1, letter seed 0 at 10k steps), so the zoo uses
    log D = -softplus(-z) and log(1 - D) = -softplus(z): the same loss, finite for any logit.
    """
    return observed * tf.math.softplus(-logits) + (1.0 - observed) * tf.math.softplus(logits)
