"""MisGAN: learning from incomplete data with generative adversarial networks (Li, Jiang & Marlin, ICLR 2019).

One of G2LGN's GAN baselines (g2lgn.md Fig. 5). Built from the paper's objective and its reference code
(steveli/misgan, `misgan_impute.py`; see `../shared/notes/reference-implementations.md`, section 2).
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.models.misgan import networks
from keraszoo.registry import register_model

MASK_TRANSFORMS = ("sigmoid", "hardsigmoid", "fusion")


@register_model("misgan")
class MisGAN(DeepImputer):
    """MisGAN-impute: a data generator, a mask generator and an imputer, each with a WGAN-GP critic.

    * Mask generator G_m(z_m) and its critic D_m: real masks against generated ones.
    * Data generator G_x(z) and its critic D_x, which sees *masked* data f_τ(x, m) = m ⊙ x + (1 − m) ⊙ τ:
      real masked data against f_τ(G_x(z), G_m(z_m)), so G_x learns complete data from incomplete
      examples (`tau` = 0, the reference's MNIST value).
    * Imputer G_i: the "comp" imputer of the reference code, G_i(m ⊙ x + (1 − m) ⊙ ω) with ω ~ U(0, 1),
      whose missing entries complete x (observed ones are pasted back); its critic D_i takes G_x's
      samples as real and the completions as fake (the reference code's order).
    * WGAN-GP (λ = `gradient_penalty` = 10, one interpolation coefficient per example), Adam(β = 0.5,
      0.9), learning rates 1e-4 for the generators and their critics and 2e-4 for the imputer and its
      critic, as the reference code.
    * Losses: mask generator −D_m(G_m) − `alpha` D_x(f_τ(G_x, G_m)) (α = 0.1 in `misgan_impute.py`),
      data generator −D_x(f_τ(G_x, G_m)), imputer −D_i(completion) + `gamma` × the MSE of its output on
      observed entries (γ = 0 in the reference, off).

    Choices (the paper and its code do not settle them, or the zoo needs them):

    * `beta`: the reference code adds β × the imputer's loss to the data generator's loss, but that loss
      is computed from the imputer's output only, so no gradient reaches G_x: the code trains as if β =
      0. Here `beta` weights the one term of the joint objective that involves G_x through D_i (G_x
      minimises β D_i(G_x(z)), pulling its samples toward what the imputer critic calls completions);
      default 0.0, the reference code's behaviour.
    * `critic_steps` = 5 critic updates per generator update run inside one `train_step` on the same
      real batch with fresh noise (keras-io's WGAN-GP example); the reference draws a new batch for each
      critic update. An epoch therefore counts generator updates.
    * The mask and data generators are updated from one draw of (z, z_m) (the reference redraws both
      between the two updates).
    * Architectures: the reference has images only (MNIST, CelebA). Images [H, W, C] use its MNIST
      convolutional generators and critics (`networks.image_generator`, `image_critic`; `filters` = 64
      is its width), made to fit any size; tables use its fully connected variants with 784 replaced by
      the number of columns D (generators latent -> 256 -> 512 -> D, critics D -> 512 -> 256 -> 128 -> 1).
      The imputer is fully connected for both, D -> D -> D -> D -> D (`imputer_units`), as the
      reference's MNIST imputer.
    * The mask generator's output is `mask_transform`: "sigmoid" (sigmoid(logit / `temperature`),
      temperature 0.66, the reference's default), "hardsigmoid" (the logit clipped to [0, 1]) or
      "fusion" (the sigmoid stretched to [−0.1, 1.1] and clipped).
    * Single imputation (`impute`) feeds ω its mean 0.5, so it is deterministic and does not depend on
      the other rows of its batch; `sample_imputations` draws ω.
    """

    generative = True
    example_kinds = ("table", "image")
    optimizer_networks = {
        "data_generator_optimizer": "data_generator",
        "mask_generator_optimizer": "mask_generator",
        "imputer_optimizer": "imputer",
        "data_critic_optimizer": "data_critic",
        "mask_critic_optimizer": "mask_critic",
        "imputer_critic_optimizer": "imputer_critic",
    }
    default_learning_rates = {
        "data_generator_optimizer": 1e-4,
        "mask_generator_optimizer": 1e-4,
        "imputer_optimizer": 2e-4,
        "data_critic_optimizer": 1e-4,
        "mask_critic_optimizer": 1e-4,
        "imputer_critic_optimizer": 2e-4,
    }

    def __init__(
        self,
        latent_dim=128,
        critic_steps=5,
        gradient_penalty=10.0,
        alpha=0.1,
        beta=0.0,
        gamma=0.0,
        tau=0.0,
        mask_transform="sigmoid",
        temperature=0.66,
        generator_units=(256, 512),
        critic_units=(512, 256, 128),
        imputer_units=None,
        filters=64,
        seed=0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("latent_dim", latent_dim), ("critic_steps", critic_steps), ("filters", filters)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("gradient_penalty", gradient_penalty), ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value!r}")
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau (the fill value of masked data, on the [0, 1] scale) must be in [0, 1], got {tau}")
        if mask_transform not in MASK_TRANSFORMS:
            raise ValueError(f"mask_transform must be one of {', '.join(MASK_TRANSFORMS)}, got {mask_transform!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.generator_units = _units(generator_units, "generator_units")
        self.critic_units = _units(critic_units, "critic_units")
        self.imputer_units = None if imputer_units is None else _units(imputer_units, "imputer_units")
        self.latent_dim, self.critic_steps, self.filters = int(latent_dim), int(critic_steps), int(filters)
        self.gradient_penalty, self.alpha, self.beta, self.gamma = float(gradient_penalty), float(alpha), float(beta), float(gamma)
        self.tau, self.mask_transform, self.temperature = float(tau), mask_transform, float(temperature)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "data_critic_loss", "mask_critic_loss", "imputer_critic_loss", "data_generator_loss", "mask_generator_loss",
                "imputer_loss", "mse_observed",
            )
        }

    def build_networks(self, example_shape):
        seed = self.seed * 1000
        if len(example_shape) == 3:
            make_generator = lambda s, name: networks.image_generator(self.latent_dim, example_shape, self.filters, s, name)  # noqa: E731
            make_critic = lambda s, name: networks.image_critic(example_shape, self.filters, s, name)  # noqa: E731
        else:
            (n_features,) = example_shape
            make_generator = lambda s, name: networks.table_generator(self.latent_dim, n_features, self.generator_units, s, name)  # noqa: E731
            make_critic = lambda s, name: networks.table_critic(n_features, self.critic_units, s, name)  # noqa: E731
        self.data_generator = make_generator(seed, "data_generator")
        self.mask_generator = make_generator(seed + 100, "mask_generator")
        self.data_critic = make_critic(seed + 200, "data_critic")
        self.mask_critic = make_critic(seed + 300, "mask_critic")
        self.imputer_critic = make_critic(seed + 400, "imputer_critic")
        hidden = self.imputer_units or [self.n_features] * 3
        self.imputer = networks.imputer_network(example_shape, hidden, seed + 500)

    def compile(
        self, data_generator_optimizer=None, mask_generator_optimizer=None, imputer_optimizer=None,
        data_critic_optimizer=None, mask_critic_optimizer=None, imputer_critic_optimizer=None, **kwargs,
    ):
        """One optimizer per network (Adam(β = 0.5, 0.9) at the reference's rates where None)."""
        super().compile(
            data_generator_optimizer=data_generator_optimizer, mask_generator_optimizer=mask_generator_optimizer,
            imputer_optimizer=imputer_optimizer, data_critic_optimizer=data_critic_optimizer,
            mask_critic_optimizer=mask_critic_optimizer, imputer_critic_optimizer=imputer_critic_optimizer, **kwargs,
        )

    def make_optimizer(self, name, learning_rate):
        return keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- the generative model -------------------------------------------------------------------
    def masks_from_logits(self, logits):
        if self.mask_transform == "sigmoid":
            return tf.sigmoid(logits / self.temperature)
        if self.mask_transform == "hardsigmoid":
            return tf.clip_by_value(logits, 0.0, 1.0)
        return tf.clip_by_value(1.2 * tf.sigmoid(logits / self.temperature) - 0.1, 0.0, 1.0)

    def generate(self, n, training=False):
        """(data, masks): `n` complete examples from G_x and `n` masks from G_m (MisGAN's generative model)."""
        z = self.random_normal((n, self.latent_dim))
        z_mask = self.random_normal((n, self.latent_dim))
        data = tf.sigmoid(self.data_generator(z, training=training))
        masks = self.masks_from_logits(self.mask_generator(z_mask, training=training))
        return data, masks

    def masked(self, x, mask):
        """f_τ(x, m) = m ⊙ x + (1 − m) ⊙ τ: what D_x sees of real and generated data."""
        return mask * x + (1.0 - mask) * self.tau

    # --- imputation -----------------------------------------------------------------------------
    def complete(self, x, mask, noise, training=False):
        """The imputer's completion: its output at missing entries, x at observed ones."""
        output = self.imputer(mask * x + (1.0 - mask) * noise, training=training)
        return mask * x + (1.0 - mask) * output, output

    def impute_batch(self, x, mask):
        return self.complete(x, mask, tf.fill(tf.shape(x), 0.5))[1]

    def sample_batch(self, x, mask, n):
        return tf.map_fn(
            lambda _: self.complete(x, mask, self.random_uniform(tf.shape(x)))[1], tf.range(n), fn_output_signature=x.dtype
        )

    # --- training -------------------------------------------------------------------------------
    def critic_update(self, critic, optimizer, real, fake, n_global):
        """One WGAN-GP step: minimise E[D(fake)] − E[D(real)] + λ E[(‖∇D(x_ε)‖ − 1)²], x_ε = ε real + (1 − ε) fake."""
        rows = tf.shape(real)[0]
        epsilon = self.random_uniform(tf.concat([[rows], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0))
        interpolates = epsilon * real + (1.0 - epsilon) * fake
        with tf.GradientTape() as tape:
            with tf.GradientTape() as penalty_tape:
                penalty_tape.watch(interpolates)
                scores = critic(tf.concat([real, fake, interpolates], axis=0), training=True)[:, 0]
                real_scores, fake_scores, interpolate_scores = tf.split(scores, 3)
                interpolate_total = tf.reduce_sum(interpolate_scores)
            slopes = penalty_tape.gradient(interpolate_total, interpolates)
            norms = tf.sqrt(tf.reduce_sum(tf.reshape(tf.square(slopes), [rows, -1]), axis=1) + 1e-12)
            loss = tf.reduce_sum(fake_scores - real_scores + self.gradient_penalty * tf.square(norms - 1.0)) / n_global
        grads = tape.gradient(loss, critic.trainable_variables)
        optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        return loss

    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        rows = tf.shape(x)[0]
        n_global, observed_global = tf.unstack(
            tf.maximum(global_sum(tf.stack([tf.cast(rows, x.dtype), tf.reduce_sum(mask)])), 1.0)
        )
        masked_real = self.masked(x, mask)

        # Critic steps: each critic against fresh generator samples and imputations (generators fixed).
        for _ in range(self.critic_steps):
            fake_data, fake_masks = self.generate(rows, training=True)
            completed, _ = self.complete(x, mask, self.random_uniform(tf.shape(x)), training=True)
            data_critic_loss = self.critic_update(
                self.data_critic, self.data_critic_optimizer, masked_real, self.masked(fake_data, fake_masks), n_global
            )
            mask_critic_loss = self.critic_update(self.mask_critic, self.mask_critic_optimizer, mask, fake_masks, n_global)
            imputer_critic_loss = self.critic_update(
                self.imputer_critic, self.imputer_critic_optimizer, fake_data, completed, n_global
            )

        # Generator step against the updated critics.
        with tf.GradientTape(persistent=True) as tape:
            fake_data, fake_masks = self.generate(rows, training=True)
            data_score = tf.reduce_sum(self.data_critic(self.masked(fake_data, fake_masks), training=True)) / n_global
            mask_score = tf.reduce_sum(self.mask_critic(fake_masks, training=True)) / n_global
            mask_generator_loss = -mask_score - self.alpha * data_score
            data_generator_loss = -data_score
            if self.beta > 0:
                data_generator_loss += self.beta * tf.reduce_sum(self.imputer_critic(fake_data, training=True)) / n_global
            completed, output = self.complete(x, mask, self.random_uniform(tf.shape(x)), training=True)
            mse = tf.reduce_sum(mask * tf.square(output - x)) / observed_global
            imputer_loss = -tf.reduce_sum(self.imputer_critic(completed, training=True)) / n_global + self.gamma * mse
        self.apply_losses(
            tape,
            [
                (mask_generator_loss, self.mask_generator, self.mask_generator_optimizer),
                (data_generator_loss, self.data_generator, self.data_generator_optimizer),
                (imputer_loss, self.imputer, self.imputer_optimizer),
            ],
        )
        del tape
        return self.record(
            self.trackers,
            dict(
                data_critic_loss=data_critic_loss, mask_critic_loss=mask_critic_loss, imputer_critic_loss=imputer_critic_loss,
                data_generator_loss=data_generator_loss, mask_generator_loss=mask_generator_loss, imputer_loss=imputer_loss,
                mse_observed=mse,
            ),
        )

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {
            "latent_dim": 8, "critic_steps": 2, "gradient_penalty": 5.0, "alpha": 0.2, "beta": 0.1, "gamma": 1.0,
            "mask_transform": "fusion", "generator_units": [8], "critic_units": [8, 4], "imputer_units": [6], "seed": 3,
        }
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim, "critic_steps": self.critic_steps, "gradient_penalty": self.gradient_penalty,
                "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "tau": self.tau,
                "mask_transform": self.mask_transform, "temperature": self.temperature,
                "generator_units": self.generator_units, "critic_units": self.critic_units,
                "imputer_units": self.imputer_units, "filters": self.filters,
            }
        )
        return config


def _units(units, name):
    units = [int(u) for u in units] if units is not None else []
    if not units or min(units) < 1:
        raise ValueError(f"{name} must be a non-empty list of positive widths, got {units}")
    return units
