"""EMFlow (Ma & Ghosh): imputation in the latent space of a normalizing flow by online EM.

`../shared/papers/emflow.md`; what it leaves open and where it contradicts itself:
`../shared/notes/reference-implementations.md` section 7 (and section 6, MCFlow, whose flow it shares).
"""
import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import global_sum, positive_int
from keraszoo.models.emflow import flow, online_em
from keraszoo.models.emflow.flow_imputer import FlowImputer
from keraszoo.registry import register_model


@register_model("emflow")
class EMFlow(FlowImputer):
    """EMFlow: a RealNVP flow f (latent -> data) with a Gaussian base N(mu, Sigma) whose mean and
    covariance are fitted by online EM on the embeddings z = f^-1(x) of the current imputation.

    **Model** (eqs. 2-3): p_X(x) = N(f^-1(x); mu, Sigma) |det d f^-1(x) / dx|. The flow is
    `keraszoo.models.emflow.flow`'s RealNVP (six affine coupling layers, `coupling_pairs` = 3; eqs.
    24-25), hidden widths `hidden_units` (None: three layers as wide as the data, MCFlow's). mu and Sigma
    are not trained by gradients (eq. 3's phi): they are non-trainable weights set by EM.

    **Training step** (Algorithm 1, one mini-batch B of the current imputation x-hat, whose missing
    entries are filled):

    1. L1 (eq. 10): -log p_X(x-hat) averaged over the batch; one Adam step on the flow. The paper writes
       eq. 10 without the log and with 1/n; eq. 13 and the text ("optimizing the negative
       log-likelihood") mean the log-likelihood over the batch, which we use (as the notes resolve).
    2. EM (eqs. 11-12, 18, 21, 23, 7): z = f^-1(x-hat) with the updated flow; its entries where x is
       missing are replaced by their conditional mean given the observed ones under the current
       (mu, Sigma) (eq. 12); the batch's expected sufficient statistics include the conditional
       covariance of the missing block (eq. 21; eq. 7's "batch covariance of z-hat" omits it, and the
       notes resolve for eq. 21); then mu, Sigma <- rho_t (batch) + (1 - rho_t) (old), rho_t =
       `step_scale` t^-`step_power` (eq. 9; 0.99 and 0.8 as in Sec. 4), t counting mini-batches.
    3. L2 (eqs. 13-14): x-tilde = f(z-hat); loss -log p_X(x-tilde) + `alpha` sum over OBSERVED entries of
       (x-tilde - x-hat)^2, averaged over the batch; one Adam step on the flow. Eq. 14 weighs by
       (1 - m_ij) with m = 1 missing (the paper's mask convention): the observed entries, as its text
       says. Since z-hat is fixed, log p_X(x-tilde) = log N(z-hat; mu, Sigma) - log|det df/dz (z-hat)|, so
       no inverse pass is needed.

    Algorithm 1 updates psi twice per batch "via gradient descent" without naming the optimizer (Adam
    assumed). The two updates get one Adam each (`flow_optimizer`, `l2_optimizer`): one Adam shared by both
    mixes the two losses in its second moments, where L2's alpha-weighted gradients dominate and L1's steps
    shrink to nothing. Measured on breast cancer (20% MCAR, 1,000 steps in 3 rounds, default flow): RMSE
    0.145 with one shared Adam, 0.061 with two (0.049 after 300 steps: longer training still costs).

    The base is initialised to the sample mean and covariance of the first batch's embeddings (Sec. 3.5)
    before that batch's L1 step. `beta` > 0 uses eq. 15's robust Sigma + beta Diag(Sigma) wherever Sigma is
    used (conditioning and likelihood); the stored Sigma is eq. 7's, so the inflation does not compound.
    `beta_schedule` gives beta per round, its last value repeated: the paper's MAR setting is
    (1e-2, 1e-2, 1e-3, 1e-3, 0.0) ("beta = 1e-2 for the first two iterations, 1e-3 for the next two,
    and 0 for the remaining ones"); the default (0.0,) is its MCAR setting. `super_batches` > 1 is the
    super-batch of Sec. 3.5: the EM statistics are those of the last `super_batches` mini-batches (the
    paper's S_super = 3000 rows for images is about 12 batches of 256), kept as per-batch sums.

    **Rounds** (Algorithm 2, Sec. 3.5; `FlowImputer.fit_rounds`, which also covers the initial fills
    (Sec. 4.1-4.2), imputing new rows and the density): a round (the paper's "iteration") is one
    training phase, Algorithm 1, then one re-imputation phase, Algorithm 2. Algorithm 1 loops "for t = 1
    to T_epoch" over mini-batches: we read T_epoch as the batches of one pass over the training rows, so
    by default (`rounds=None`) the training steps are cut into rounds of one pass each (at Keras-epoch
    granularity, a round being at least one Keras epoch); `rounds=R` cuts them into R equal rounds
    instead. This reading is measured, not only read: on credit (20% MCAR, fold 0, 5,000 steps) with
    five rounds of ~10 passes, the held-out RMSE rose within the first round from 0.1227 to 0.1406 as
    the flow trained (mean imputation: 0.1369), and within the second from 0.1213 to 0.1270 by its
    sixth epoch; with one-pass rounds it ended at 0.1218 and stayed within 0.1209-0.1227 from the fourth
    round on, as the text's "converges within three iterations for most UCI datasets" describes. After
    each round but the last the missing entries of the whole training table are re-imputed by Algorithm
    2 and, with `reinitialise` (the paper's default), the flow's weights (freshly drawn), its optimizer's
    moments and the base are re-initialised. Algorithm 2's last line, as printed, keeps x-hat's MISSING
    entries and overwrites the observed ones (x-tilde * o + x-hat * m); its text says the opposite ("the
    missing parts of the current imputation are replaced with those of the reconstructed data vectors"),
    which we follow. t restarts with the base each round (the paper does not say; a re-initialised base
    is a new online EM).

    The flow starts as the identity (zero-initialised coupling outputs, `flow.coupling_network`), so
    before training EMFlow imputes as Gaussian EM in data space would.
    """

    # Two Adams on the same flow: one per update of Algorithm 1 (see the class docstring)
    optimizer_networks = {"flow_optimizer": "coupling_networks", "l2_optimizer": "coupling_networks"}
    default_learning_rates = {"flow_optimizer": 1e-4, "l2_optimizer": 1e-4}  # Sec. 4.1: lr 1e-4, batch 256 (Adam assumed)
    default_batch_size = 256
    default_iterations = 5000

    def __init__(
        self,
        coupling_pairs=3,
        hidden_units=None,
        alpha=1e6,
        step_scale=0.99,
        step_power=0.8,
        rounds=None,
        beta_schedule=(0.0,),
        super_batches=1,
        reinitialise=True,
        imputation_passes=3,
        proposal_scale=1.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(coupling_pairs=coupling_pairs, hidden_units=hidden_units, imputation_passes=imputation_passes,
                         proposal_scale=proposal_scale, seed=seed, **kwargs)
        self.alpha = _non_negative(alpha, "alpha")
        self.step_scale = float(step_scale)
        self.step_power = float(step_power)
        if not 0.0 < self.step_scale < 1.0:
            raise ValueError(f"step_scale (eq. 9's C) must be in (0, 1) so that every rho_t is, got {step_scale!r}")
        if not 0.5 < self.step_power <= 1.0:
            raise ValueError(f"step_power (eq. 9's gamma) must be in (0.5, 1] (eq. 8's conditions), got {step_power!r}")
        self.rounds = None if rounds is None else positive_int(rounds, "rounds")
        if isinstance(beta_schedule, (int, float)):
            beta_schedule = (beta_schedule,)
        if isinstance(beta_schedule, (str, bytes)) or len(beta_schedule) == 0:
            raise ValueError(f"beta_schedule must be a non-empty list of beta per round, got {beta_schedule!r}")
        self.beta_schedule = [_non_negative(b, "beta_schedule") for b in beta_schedule]
        self.super_batches = positive_int(super_batches, "super_batches")
        self.reinitialise = bool(reinitialise)
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.l2_tracker = keras.metrics.Mean(name="l2_loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="mse_observed")
        self.rho_tracker = keras.metrics.Mean(name="rho")

    # --- networks and EM state --------------------------------------------------------------------
    def build_networks(self, example_shape):
        super().build_networks(example_shape)
        p, state = self.n_features, self.state_options()
        self.base_mean = self.add_weight(name="base_mean", shape=(p,), initializer="zeros", **state)
        self.base_covariance = self.add_weight(name="base_covariance", shape=(p, p), initializer="identity", **state)
        self.base_ready = self.add_weight(name="base_ready", shape=(), initializer="zeros", **state)
        self.em_step = self.add_weight(name="em_step", shape=(), initializer="zeros", **state)
        self.beta = self.add_weight(name="beta", shape=(), initializer="zeros", **state)
        slots = self.super_batches
        self.super_first = self.add_weight(name="super_first", shape=(slots, p), initializer="zeros", **state)
        self.super_second = self.add_weight(name="super_second", shape=(slots, p, p), initializer="zeros", **state)
        self.super_count = self.add_weight(name="super_count", shape=(slots,), initializer="zeros", **state)

    def compile(self, flow_optimizer=None, l2_optimizer=None, **kwargs):
        """`flow_optimizer` takes the flow's L1 steps and `l2_optimizer` its L2 steps (Adam(1e-4) each if
        None); the base is fitted by EM, not by them."""
        super().compile(flow_optimizer=flow_optimizer, l2_optimizer=l2_optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.nll_tracker, self.l2_tracker, self.reconstruction_tracker, self.rho_tracker]

    def covariance(self):
        """Sigma as used (eq. 15 with the round's beta, plus a small ridge)."""
        return online_em.regularised(self.base_covariance, self.beta)

    def base_log_prob(self, z):
        return flow.gaussian_log_prob(z, self.base_mean, tf.linalg.cholesky(self.covariance()))

    def latent_imputation(self, z, observed):
        """Eq. 12: the conditional mean of z's missing entries under the current (mu, Sigma)."""
        return online_em.conditional_gaussian(z, observed, self.base_mean, self.covariance(), with_covariance=False)[0]

    # --- training ------------------------------------------------------------------------------------
    def initialise_base(self, x_hat):
        """Sec. 3.5: mu, Sigma <- the sample mean and covariance of the first batch's embeddings."""
        z = self.bijector().inverse(x_hat)
        first, second = online_em.batch_statistics(z, None)
        count = global_sum(tf.cast(tf.shape(z)[0], z.dtype))
        mean, covariance = online_em.moments(global_sum(first), global_sum(second), count)
        self.base_mean.assign(mean)
        self.base_covariance.assign(covariance)
        self.base_ready.assign(1.0)
        return tf.constant(0.0)

    def em_update(self, z, observed):
        """Eqs. 12, 18, 21, 23, 7 on one batch of embeddings; returns (z-hat, rho_t)."""
        z_hat, conditional = online_em.conditional_gaussian(z, observed, self.base_mean, self.covariance())
        first, second = online_em.batch_statistics(z_hat, conditional)
        count = tf.cast(tf.shape(z)[0], z.dtype)
        totals = global_sum(tf.concat([first[None], second, tf.fill([1, self.n_features], count)], axis=0))
        # the super-batch (Sec. 3.5): a ring of per-batch sums, the oldest replaced
        slot = tf.cast(tf.math.floormod(self.em_step, float(self.super_batches)), tf.int32)
        self.super_first.assign(tf.tensor_scatter_nd_update(self.super_first, [[slot]], totals[:1]))
        self.super_second.assign(tf.tensor_scatter_nd_update(self.super_second, [[slot]], totals[1:-1][None]))
        self.super_count.assign(tf.tensor_scatter_nd_update(self.super_count, [[slot]], totals[-1, :1]))
        mean, covariance = online_em.moments(
            tf.reduce_sum(self.super_first, axis=0), tf.reduce_sum(self.super_second, axis=0), tf.reduce_sum(self.super_count)
        )
        self.em_step.assign_add(1.0)
        rho = online_em.step_size(self.em_step, self.step_scale, self.step_power)
        self.base_mean.assign(online_em.moving_average(self.base_mean, mean, rho))
        self.base_covariance.assign(online_em.moving_average(self.base_covariance, covariance, rho))
        return z_hat, rho

    def train_step(self, data):
        x, mask = data[0], data[1]
        x_hat, observed = self.unpack(x, mask)
        n_rows = self.global_count(x_hat)
        variables = self.coupling_networks.trainable_variables
        # A fresh bijector per phase: TFP caches a bijector's results by input tensor, and each phase
        # must see the weights the previous phase's step left.
        tf.cond(self.base_ready > 0, lambda: tf.constant(0.0), lambda: self.initialise_base(x_hat))

        # L1 (eq. 10): the flow's negative log-likelihood of the current imputation
        with tf.GradientTape() as tape:
            nll = -tf.reduce_sum(self.log_prob_rows(x_hat, self.bijector())) / n_rows
        self.flow_optimizer.apply_gradients(zip(tape.gradient(nll, variables), variables))

        # online EM in latent space with the updated flow (eqs. 11-12, 7)
        z_hat, rho = self.em_update(tf.stop_gradient(self.bijector().inverse(x_hat)), observed)
        z_hat = tf.stop_gradient(z_hat)

        # L2 (eqs. 13-14): likelihood of f(z-hat) and alpha x the error on observed entries
        bijector = self.bijector()
        with tf.GradientTape() as tape:
            x_tilde = bijector.forward(z_hat)
            log_p = self.log_prob_of_forward(z_hat, bijector)
            squared = tf.reduce_sum(observed * tf.square(x_tilde - x_hat), axis=1)
            l2 = tf.reduce_sum(-log_p + self.alpha * squared) / n_rows
        self.l2_optimizer.apply_gradients(zip(tape.gradient(l2, variables), variables))

        mse = tf.reduce_sum(squared) / tf.maximum(self.global_count(observed, entries=True), 1.0)
        logs = self.record({"nll": self.nll_tracker, "l2_loss": self.l2_tracker, "mse_observed": self.reconstruction_tracker},
                           {"nll": nll, "l2_loss": l2, "mse_observed": mse})
        self.rho_tracker.update_state(rho)
        return {**logs, "rho": self.rho_tracker.result()}

    def round_bounds(self, epochs, steps_per_epoch, steps_per_pass):
        # rounds=None: one pass over the rows per round (Algorithm 1's T_epoch; see the class docstring)
        rounds = round(epochs * steps_per_epoch / steps_per_pass) if self.rounds is None else self.rounds
        rounds = max(1, min(rounds, epochs))
        return np.linspace(0, epochs, rounds + 1).round().astype(int)

    def start_round(self, index):
        """The round's beta; after the first round, with `reinitialise`, a fresh flow (weights, optimizer)
        and a fresh base (cleared, with the online EM's step count and super-batch)."""
        self.beta.assign(self.beta_schedule[min(index, len(self.beta_schedule) - 1)])
        if index == 0 or not self.reinitialise:
            return
        self.reset_flow(index)
        for variable in (self.base_ready, self.em_step, self.super_first, self.super_second, self.super_count):
            variable.assign(tf.zeros_like(variable))

    def values_per_row(self, draws=1):
        # the batched Cholesky holds a p x p matrix per row (two, with the conditional covariance)
        return (3 * self.n_features + 8) * self.n_features * draws

    # --- contract ----------------------------------------------------------------------------------
    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {
            "coupling_pairs": 2, "hidden_units": [8, 8], "alpha": 1e3, "step_power": 0.7, "rounds": 2,
            "beta_schedule": [1e-2, 0.0], "super_batches": 2, "imputation_passes": 2, "proposal_scale": 0.4, "seed": 1,
        }
        example["fit"] = {"iterations": 20, "batch_size": 16}
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "step_scale": self.step_scale,
                "step_power": self.step_power,
                "rounds": self.rounds,
                "beta_schedule": list(self.beta_schedule),
                "super_batches": self.super_batches,
                "reinitialise": self.reinitialise,
            }
        )
        return config


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)
