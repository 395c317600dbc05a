"""EMFlow (Ma & Ghosh): imputation in the latent space of a normalizing flow by online EM.

`../shared/papers/emflow.md`; what it leaves open and where it contradicts itself:
`../shared/notes/reference-implementations.md` section 7 (and section 6, MCFlow, whose flow it shares).
"""
import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum, merge_histories, positive_int
from keraszoo.models.emflow import fills, flow, online_em
from keraszoo.registry import register_model


@register_model("emflow")
class EMFlow(DeepImputer):
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

    The base is initialised to the sample mean and covariance of the first batch's embeddings (Sec. 3.5)
    before that batch's L1 step. `beta` > 0 uses eq. 15's robust Sigma + beta Diag(Sigma) wherever Sigma is
    used (conditioning and likelihood); the stored Sigma is eq. 7's, so the inflation does not compound.
    `beta_schedule` gives beta per round, its last value repeated: the paper's MAR setting is
    (1e-2, 1e-2, 1e-3, 1e-3, 0.0) ("beta = 1e-2 for the first two iterations, 1e-3 for the next two,
    and 0 for the remaining ones"); the default (0.0,) is its MCAR setting. `super_batches` > 1 is the
    super-batch of Sec. 3.5: the EM statistics are those of the last `super_batches` mini-batches (the
    paper's S_super = 3000 rows for images is about 12 batches of 256), kept as per-batch sums.

    **Rounds** (Algorithm 2, Sec. 3.5; `fit_rounds`): the training table starts from a random fill
    (tables: each missing entry drawn from its column's observed values; images: one of the nearest
    observed pixels, `fills`). Training runs `rounds` rounds (fewer if there are fewer Keras epochs, a
    round being at least one); after each but the last, the missing entries of the whole training table
    are re-imputed by Algorithm 2 and, with `reinitialise` (the paper's default), the flow's weights
    (freshly drawn), its optimizer's moments and the base are re-initialised. Algorithm 2's last line,
    as printed, keeps x-hat's MISSING entries and overwrites the observed ones (x-tilde * o + x-hat * m);
    its text says the opposite ("the missing parts of the current imputation are replaced with those
    of the reconstructed data vectors"), which we follow. t restarts with the base each round (the
    paper does not say; a re-initialised base is a new online EM). The re-imputed values are clipped to
    [0, 1], the scaled data's range (MCFlow's code clamps too). Rounds are the paper's "iterations";
    their number and epochs per round are not stated ("converges within three iterations for most UCI
    datasets"): `rounds` = 5 by default, with the Keras epochs shared out equally.

    **Imputing new rows** (`impute`): the paper imputes its test fold by passing it through every
    round's re-imputation with that round's model; a trained model has only its last round. A new row
    starts from a deterministic fill (each column's training median, Sec. 3.4's "median imputation";
    images: the mean of the nearest observed pixels) and goes through `imputation_passes` passes of
    Algorithm 2 with the trained flow and base.

    **Density** (`log_likelihood`): log p_X of the row, exact (change of variables) for a complete
    row. For a row with missing entries, log p(x°) = log of the integral over x^m is estimated by
    importance sampling with `samples` draws from a Gaussian proposal centred on the row's imputation,
    scale `proposal_scale` times each column's training standard deviation (a lower bound on average,
    tightening as `samples` grows). The default 1.0 keeps the proposal wider than the conditional
    spread it stands in for (heavy-tailed weights otherwise: at 0.5 the estimate fell 0.06 nats short of
    a Gaussian's exact marginal with 4,000 draws, in the test).

    Direct `model.fit` on ``(x, mask)`` batches (not through `fit_arrays` or `training.train`) trains a
    single round, each batch's missing entries filled by the batch's observed column means.
    """

    example_kinds = ("table", "image")
    density = True
    optimizer_networks = {"flow_optimizer": "coupling_layers"}
    default_learning_rates = {"flow_optimizer": 1e-4}  # Sec. 4.1: lr 1e-4, batch 256 (Adam assumed)
    default_batch_size = 256
    default_iterations = 5000
    min_steps_per_epoch = 50  # a round is at least one Keras epoch: small tables still get several rounds

    def __init__(
        self,
        coupling_pairs=3,
        hidden_units=None,
        alpha=1e6,
        step_scale=0.99,
        step_power=0.8,
        rounds=5,
        beta_schedule=(0.0,),
        super_batches=1,
        reinitialise=True,
        imputation_passes=3,
        proposal_scale=1.0,
        seed=0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.coupling_pairs = positive_int(coupling_pairs, "coupling_pairs")
        if hidden_units is not None:
            if isinstance(hidden_units, (str, bytes)) or not hasattr(hidden_units, "__len__") or len(hidden_units) == 0:
                raise ValueError(f"hidden_units must be None or a non-empty list of positive widths, got {hidden_units!r}")
            hidden_units = [positive_int(u, "hidden_units") for u in hidden_units]
        self.hidden_units = hidden_units
        self.alpha = _non_negative(alpha, "alpha")
        self.step_scale = float(step_scale)
        self.step_power = float(step_power)
        if not 0.0 < self.step_scale < 1.0:
            raise ValueError(f"step_scale (eq. 9's C) must be in (0, 1) so that every rho_t is, got {step_scale!r}")
        if not 0.5 < self.step_power <= 1.0:
            raise ValueError(f"step_power (eq. 9's gamma) must be in (0.5, 1] (eq. 8's conditions), got {step_power!r}")
        self.rounds = positive_int(rounds, "rounds")
        if isinstance(beta_schedule, (int, float)):
            beta_schedule = (beta_schedule,)
        if isinstance(beta_schedule, (str, bytes)) or len(beta_schedule) == 0:
            raise ValueError(f"beta_schedule must be a non-empty list of beta per round, got {beta_schedule!r}")
        self.beta_schedule = [_non_negative(b, "beta_schedule") for b in beta_schedule]
        self.super_batches = positive_int(super_batches, "super_batches")
        self.reinitialise = bool(reinitialise)
        self.imputation_passes = positive_int(imputation_passes, "imputation_passes")
        self.proposal_scale = float(proposal_scale)
        if not self.proposal_scale > 0:
            raise ValueError(f"proposal_scale must be positive, got {proposal_scale!r}")
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.l2_tracker = keras.metrics.Mean(name="l2_loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="mse_observed")
        self.rho_tracker = keras.metrics.Mean(name="rho")

    # --- networks and EM state --------------------------------------------------------------------
    def build_networks(self, example_shape):
        p = self.n_features
        if p < 2:
            raise ValueError("EMFlow needs at least 2 features: a coupling layer conditions half of them on the other half")
        hidden = self.hidden_units or [p, p, p]
        pairs = flow.coupling_networks(p, self.coupling_pairs, hidden, self.seed * 1000)
        self.coupling_layers = [net for pair in pairs for net in pair]
        self.permutations = flow.split_permutations(p, self.coupling_pairs, self.seed)
        state = dict(trainable=False, aggregation="only_first_replica")
        self.base_mean = self.add_weight(name="base_mean", shape=(p,), initializer="zeros", **state)
        self.base_covariance = self.add_weight(name="base_covariance", shape=(p, p), initializer="identity", **state)
        self.base_ready = self.add_weight(name="base_ready", shape=(), initializer="zeros", **state)
        self.em_step = self.add_weight(name="em_step", shape=(), initializer="zeros", **state)
        self.beta = self.add_weight(name="beta", shape=(), initializer="zeros", **state)
        self.fill_values = self.add_weight(name="fill_values", shape=example_shape, initializer="zeros", **state)
        self.feature_scale = self.add_weight(name="feature_scale", shape=(p,), initializer="ones", **state)
        slots = self.super_batches
        self.super_first = self.add_weight(name="super_first", shape=(slots, p), initializer="zeros", **state)
        self.super_second = self.add_weight(name="super_second", shape=(slots, p, p), initializer="zeros", **state)
        self.super_count = self.add_weight(name="super_count", shape=(slots,), initializer="zeros", **state)

    def build(self, input_shape):
        super().build(input_shape)
        # One trace for every batch size: a graph traced for a static batch size gave imputations 1 ulp
        # away from the shape-free graph's (grappler rewrites the batched linear algebra differently), so
        # a reloaded model, traced afresh, differed from the model it was saved from.
        spec = tf.TensorSpec((None,) + tuple(self.example_shape), tf.float32)
        object.__setattr__(self, "_impute_fn", tf.function(self._impute_graph, input_signature=[spec, spec]))

    def compile(self, flow_optimizer=None, **kwargs):
        """`flow_optimizer` trains the flow (Adam(1e-4) if None); the base is fitted by EM, not by it."""
        super().compile(flow_optimizer=flow_optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.nll_tracker, self.l2_tracker, self.reconstruction_tracker, self.rho_tracker]

    def bijector(self):
        """f (forward: latent -> data) on flattened rows; rebuilt per call from the tracked networks."""
        pairs = list(zip(self.coupling_layers[0::2], self.coupling_layers[1::2]))
        return flow.realnvp(pairs, self.permutations)

    def flat(self, x):
        return tf.reshape(x, [-1, self.n_features])

    def covariance(self):
        """Sigma as used (eq. 15 with the round's beta, plus a small ridge)."""
        return online_em.regularised(self.base_covariance, self.beta)

    def log_prob_rows(self, rows, bijector=None):
        """log p_X of complete flattened rows [B, p] (eq. 2)."""
        bijector = bijector or self.bijector()
        z = bijector.inverse(rows)
        chol = tf.linalg.cholesky(self.covariance())
        return flow.gaussian_log_prob(z, self.base_mean, chol) + bijector.inverse_log_det_jacobian(rows, event_ndims=1)

    # --- training ------------------------------------------------------------------------------------
    def unpack(self, x, mask):
        """(x-hat [B, p], observed [B, p]): `fit_rounds` packs the current imputation and the mask along the
        last axis (the contract's datasets zero missing entries); plain ``(x, mask)`` batches are filled
        with the batch's observed column means."""
        channels = self.example_shape[-1]
        if x.shape[-1] == 2 * channels:
            return self.flat(x[..., :channels]), self.flat(x[..., channels:])
        x, observed = self.flat(x), self.flat(mask)
        sums = global_sum(tf.stack([tf.reduce_sum(x * observed, axis=0), tf.reduce_sum(observed, axis=0)]))
        means = sums[0] / tf.maximum(sums[1], 1.0)
        return tf.where(observed > 0, x, means[None]), observed

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
        n_rows = global_sum(tf.cast(tf.shape(x_hat)[0], x_hat.dtype))
        variables = [v for net in self.coupling_layers for v in net.trainable_variables]
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
        chol = tf.linalg.cholesky(self.covariance())
        bijector = self.bijector()
        with tf.GradientTape() as tape:
            x_tilde = bijector.forward(z_hat)
            log_p = flow.gaussian_log_prob(z_hat, self.base_mean, chol) - bijector.forward_log_det_jacobian(z_hat, event_ndims=1)
            squared = tf.reduce_sum(observed * tf.square(x_tilde - x_hat), axis=1)
            l2 = tf.reduce_sum(-log_p + self.alpha * squared) / n_rows
        self.flow_optimizer.apply_gradients(zip(tape.gradient(l2, variables), variables))

        n_observed = global_sum(tf.reduce_sum(observed))
        mse = tf.reduce_sum(squared) / tf.maximum(n_observed, 1.0)
        logs = self.record({"nll": self.nll_tracker, "l2_loss": self.l2_tracker, "mse_observed": self.reconstruction_tracker},
                           {"nll": nll, "l2_loss": l2, "mse_observed": mse})
        self.rho_tracker.update_state(rho)
        return {**logs, "rho": self.rho_tracker.result()}

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, callbacks=None, verbose=0):
        """Algorithm 2's rounds: train on the current imputation, re-impute the training table, re-initialise
        (see the class docstring). Every round is a `fit` with the same callbacks, epochs numbered on."""
        x = np.asarray(x, dtype=np.float32)
        mask = np.asarray(mask, dtype=np.float32)
        self.set_fill_statistics(x, mask)
        rng = np.random.default_rng(self.seed)
        if len(self.example_shape) == 3:
            x_hat = fills.nearest_observed_fill(np.where(mask > 0, x, 0.0), mask, rng)
        else:
            x_hat = fills.random_observed_fill(np.where(mask > 0, x, 0.0), mask, rng)
        rounds = max(1, min(self.rounds, int(epochs)))
        bounds = np.linspace(0, int(epochs), rounds + 1).round().astype(int)
        histories = []
        for r in range(rounds):
            if r > 0:
                x_hat = self.reimpute(x_hat, mask)
                self.start_round(r, fresh=self.reinitialise)
            else:
                self.start_round(0, fresh=False)
            packed = np.concatenate([x_hat, mask], axis=-1)
            histories.append(
                self.fit(make_dataset(packed, np.ones_like(packed)), initial_epoch=int(bounds[r]), epochs=int(bounds[r + 1]),
                         steps_per_epoch=int(steps_per_epoch), shuffle=False, verbose=verbose, callbacks=callbacks)
            )
            if self.stop_training:
                break
        return merge_histories(histories)

    def set_fill_statistics(self, x, mask):
        """Each column's observed median (the deterministic start of `impute`) and standard deviation (the
        importance-sampling proposal's scale), from the training table."""
        flat_x, flat_m = x.reshape(len(x), -1), mask.reshape(len(mask), -1)
        observed = np.where(flat_m > 0, flat_x, np.nan)
        observed[:, flat_m.sum(axis=0) == 0] = 0.0  # a column never observed: median 0, spread the floor
        medians, stds = np.nanmedian(observed, axis=0), np.nanstd(observed, axis=0)
        self.fill_values.assign(medians.reshape(self.example_shape).astype(np.float32))
        self.feature_scale.assign(np.maximum(stds, 1e-3).astype(np.float32))

    def start_round(self, index, fresh):
        """Set the round's beta; with `fresh`, redraw the flow's weights, zero its optimizer's moments and
        step count, and clear the base and the online EM's step count and super-batch."""
        self.beta.assign(self.beta_schedule[min(index, len(self.beta_schedule) - 1)])
        if not fresh:
            return
        hidden = self.hidden_units or [self.n_features] * 3
        pairs = flow.coupling_networks(self.n_features, self.coupling_pairs, hidden, self.seed * 1000 + 7919 * index)
        for network, new in zip(self.coupling_layers, [net for pair in pairs for net in pair]):
            network.set_weights(new.get_weights())
        for variable in self.flow_optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(tf.zeros_like(variable))
        for variable in (self.base_ready, self.em_step, self.super_first, self.super_second, self.super_count):
            variable.assign(tf.zeros_like(variable))

    # --- Algorithm 2 and imputation ------------------------------------------------------------------
    def reimpute_once(self, x_hat, observed, bijector=None):
        """One pass of Algorithm 2 on flattened rows: z = f^-1(x-hat), eq. 12, x-tilde = f(z-hat); the missing
        entries of x-hat take x-tilde's, clipped to [0, 1]."""
        bijector = bijector or self.bijector()
        z_hat, _ = online_em.conditional_gaussian(bijector.inverse(x_hat), observed, self.base_mean, self.covariance(), with_covariance=False)
        return tf.where(observed > 0, x_hat, tf.clip_by_value(bijector.forward(z_hat), 0.0, 1.0))

    def reimpute(self, x_hat, mask):
        """Algorithm 2 over the whole training table (NumPy in and out), a bounded chunk of rows at a time."""
        function = getattr(self, "_reimpute_fn", None)
        if function is None:
            function = tf.function(lambda a, m: tf.reshape(self.reimpute_once(self.flat(a), self.flat(m)), tf.shape(a)), reduce_retracing=True)
            object.__setattr__(self, "_reimpute_fn", function)
        chunk = self.rows_per_chunk()
        return np.concatenate([function(tf.constant(x_hat[i : i + chunk]), tf.constant(mask[i : i + chunk])).numpy() for i in range(0, len(x_hat), chunk)])

    def start_fill(self, x, mask):
        """The deterministic start of `impute` (see `fills`): column medians, or the nearest observed pixels."""
        if len(self.example_shape) == 3:
            return fills.ring_mean_fill(x, mask, self.fill_values)
        return tf.where(mask > 0, x, self.fill_values[None])

    def impute_batch(self, x, mask):
        bijector = self.bijector()
        x_hat, observed = self.flat(self.start_fill(x, mask)), self.flat(mask)
        for _ in range(self.imputation_passes):
            x_hat = self.reimpute_once(x_hat, observed, bijector)
        return tf.reshape(x_hat, tf.shape(x))

    def values_per_row(self, draws=1):
        # the batched Cholesky holds a p x p matrix per row (two, with the conditional covariance)
        return (3 * self.n_features + 8) * self.n_features * draws

    def log_likelihood_batch(self, x, mask, samples):
        """log p_X(x) of complete rows; importance-sampled log p(x°) of incomplete ones (class docstring)."""
        bijector = self.bijector()
        observed = self.flat(mask)
        center = self.flat(self.impute_batch(x, mask))
        scale = self.proposal_scale * self.feature_scale
        missing = 1.0 - observed
        draws = center[None] + missing[None] * scale * self.random_normal(tf.concat([[samples], tf.shape(center)], axis=0))
        rows = tf.reshape(draws, [-1, self.n_features])
        log_p = tf.reshape(self.log_prob_rows(rows, bijector), [samples, -1])
        standard = (draws - center[None]) / scale
        log_q = tf.reduce_sum(missing[None] * (-0.5 * tf.square(standard) - tf.math.log(scale) - 0.5 * np.log(2.0 * np.pi)), axis=2)
        return tf.reduce_logsumexp(log_p - log_q, axis=0) - tf.math.log(tf.cast(samples, x.dtype))

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
                "coupling_pairs": self.coupling_pairs,
                "hidden_units": self.hidden_units,
                "alpha": self.alpha,
                "step_scale": self.step_scale,
                "step_power": self.step_power,
                "rounds": self.rounds,
                "beta_schedule": list(self.beta_schedule),
                "super_batches": self.super_batches,
                "reinitialise": self.reinitialise,
                "imputation_passes": self.imputation_passes,
                "proposal_scale": self.proposal_scale,
            }
        )
        return config


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)
