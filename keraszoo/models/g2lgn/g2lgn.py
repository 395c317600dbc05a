"""G2LGN: A Global to Local Guiding Network for missing data imputation (Wang, Chai & Li; g2lgn.md).

No public code exists, and the paper (which also calls the model "GAGIN") leaves much open. Each
choice below quotes the sentence it interprets; `../shared/notes/reference-implementations.md`
(section G2LGN) lists the ambiguities.

**Mask.** Eq. 1 feeds "(1 − M) ⊙ Z" and eq. 8 compares "M ⊙ X̃" with "M ⊙ G_g(…)", so M = 1 means
observed; eq. 2, "X̂ = M ⊙ X̄ + (1 − M) ⊙ X̃", would then put generated values at observed entries.
We read eq. 2 as a typo: X̂ = M ⊙ X̃ + (1 − M) ⊙ X̄ (the zoo's convention, 1 = observed, as GAIN).

**GIN** (section 2.1). "we take the missing data X̃, the missing mask M, and a noise variable Z as input":
G_g sees [X̃, M, (1 − M) ⊙ Z] (three stacked copies of the example; zeros at X̃'s missing entries),
Z ~ U(0, `noise_scale`) "the same as the input data" in dimension (section 3.1); `noise_scale` = 0.01
is GAIN's reference code's value (the paper gives none). Single imputation feeds Z's mean, so it is
deterministic and row-independent; `sample_imputations` draws Z.

**D_g sees a hint, not M.** "The missing mask M and X̂ are combined to feed in D_g": taken literally D
reads the answer off M (GAIN's degenerate case). We give D_g GAIN's hint H = B ⊙ M with B ~
Bernoulli(`hint_rate`) (`hint_variant="code"`), or the GAIN paper's one withheld coordinate per row
(`hint_variant="paper"`), as `keraszoo.models.gain.GAIN` does.

**Two discriminator readings** (eqs. 3, 7, 10 against section 2.3), `discriminator`:
* "separate" (default): eq. 3, "the i-th component of D_g^i corresponds to the probability that the
  i-th component of X̂ was observed", and eq. 7 taken as written: D_g judges GIN's completion X̂ entry
  by entry, D_l LIN's completed region entry by entry, each against its own part of the mask, and eq. 10
  sums the two adversarial losses;
* "fused": section 2.3, "the outputs of the global and the local discriminators are concatenated
  together into a single vector, which is then processed by a single fully-connected layer … sigmoid":
  both judge the final completion, D_l's logits are put back at the region's positions (zeros
  elsewhere) and, with a 0/1 indicator of the region, concatenated after D_g's; one fully connected
  layer (`fusion`) maps that vector to one logit per entry (eq. 3's per-component probability). The
  layer starts as D_g's logits passed through (`fusion_init="pass_through"`; "xavier" for a random
  start).
Measured (letter / credit, 20% MCAR, seed 0, whole-row region): fused 0.1254 / 0.1744 at 10,000 steps,
separate 0.1197 / 0.1359 at 5,000 — hence the default. The scalar reading of section 2.3 (Iizuka et
al.'s "real rather than imputed" for a whole example) has no real class with incomplete data (no example
is wholly observed), so it is not offered.

**IGM** (section 2.2, eqs. 4-6).
* f_search: "dividing the whole GIN results into few partitions and search candidate local region".
  Images: square patches of side `patch_size` on a half-overlapping grid (`regions`), the local region
  a patch around the densest missing area. Tables: `partitions` contiguous column blocks, default **1**
  (the whole row): with 4 blocks LIN sees a block of columns without the rest of the row and imputed
  worse than GIN alone (letter: GIN 0.1398, final 0.1467; in the region GIN 0.1361, LIN 0.1496; seed 0,
  5,000 steps), while the whole row made LIN a second, refining stage (letter 0.1197 against 0.148 with
  4 blocks, credit 0.1359 against 0.1694, separate discriminators). On tables the search is therefore
  trivial by default, and "w/o f_search" equals the full model unless `partitions` > 1. The selection
  rule is not given: we take, per example, the candidate with the most missing entries ("a small area
  centered at the missing focused regions", section 1); x_cdd is that region of X̂.
* f_FC: "fully-connected layers with activation relu": one hidden layer (`guide_units`, default the
  region's size) and an output of the region's size × `guide_channels` (ReLU too).
* E and C: "E(·) represents expanding the spatial dimension of ε to that of M": the output is reshaped to
  the region's spatial shape (E) and concatenated with the region's mask on the channel axis (C) — for
  tables, [ε, M_local] as one vector. That is x̂_cdd, the input of LIN's generator (eq. 7).

**LIN** (section 2.3, eq. 7). G_l(x̂_cdd) gives the region's values; D_l judges the region: eq. 7
writes D_l(X̂, M), but the text says LIN "focuses on a small region around the inadequate imputation
area", so D_l sees the completed region and its hint (as Iizuka et al.'s local discriminator sees the
patch). "local imputed results are concatenated to global imputed results": the region's missing
entries take G_l's values, all other missing entries keep G_g's (see `discriminator` for what D_g and
D_l judge).

**Losses** (eqs. 8-11). d = mean squared error over observed entries (GAIN's). L_obs^g (eq. 8) on G_g's
output, L_obs^l ("Similarly") on G_l's output over the region's observed entries. L_adv (eq. 10) is
−log D on missing entries (GAIN's generator loss), D's loss the cross-entropy of eq. 3 against M. Eq. 11 sums the two unweighted; we weight L_obs by `alpha` (default 100, GAIN's value: the paper
builds on GAIN and gives no weight; `alpha=1` is eq. 11 as printed). G_g, f_FC and G_l are trained
together on eq. 11 (one optimizer, `g_optimizer`); D_g, D_l and the fusion layer on the discriminator
loss (`d_optimizer`); D is updated first, then G against the updated D, on the same batch and noise.

**Initialisation** (section 3.1): "initialized by Xavier [30]": Glorot & Bengio's normalised (uniform)
initialisation, `initializer="xavier"`. `initializer="gain"` is GAIN's reference code's He normal
(what that code calls "xavier").

**Networks.** Tables: fully connected (section 3.1: "the same FC architecture that only
fully-connected layers for both the generators and the discriminators"); `hidden_units` (default
[D, D], as GAIN) for G_g and D_g, and two hidden layers of the region's input size for G_l and D_l.
Images: convolutional (`networks`), the local region a patch around the densest missing area. Give a
flattened image as a table row to run the paper's FC-only MNIST protocol.

**Ablations** (Table 2, section 3.3), each a parameter:
* `use_lin=False`, "w/o LIN": "we get rid of the complete LIN and then directly obtain the results of
  IGM and GIN concatenated together as the final outputs" — no G_l and no D_l; f_FC's output (one
  channel, sigmoid) is the region's values;
* `guide_input="noise"`, "w/o X̂": "we first replace the input with random noise" — f_search selects the
  region from U(0, 1) noise instead of X̂ (its mean, 0.5, for single imputation);
* `use_search=False`, "w/o f_search" (the text's "IGM is only equipped with f_FC"): the region is the
  whole example (the tables' default already is: give `partitions` > 1 to compare);
* `use_fc=False`, "w/o f_FC": f_FC is replaced by one linear projection of the same output size (the
  paper: "by replacing with the fully connected layers"; the table names this row w/o f_FC);
* both of the last two: "w/o f_search + w/o f_FC".

**Beyond the paper: `extra_mask_rate` = 0.2 by default.** Each step hides that fraction of the observed
entries from the networks (they are treated as missing: generated, judged by the discriminators) while
eq. 8's and eq. 9's observation losses still score them, as the zoo's GAIN option does; so the
generators are trained on entries they had to impute, not only on the ones they were shown. The paper
has no such step: `extra_mask_rate=0` is the paper as printed. Measured (20% MCAR, seeds 0 and 1,
10,000 steps, whole-row region): spam 0.0485 / 0.0509, letter 0.1047 / 0.1050, credit 0.1233 / 0.1230,
against 0.0529 / 0.1208 / 0.1563 (5 seeds) without it; on credit the paper's setting got worse with
more steps (seed 0: 0.1348 at 2,000 steps, 0.1377 at 5,000, 0.1581 at 10,000) and the hidden entries
stop that. `benchmarks/results/g2lgn_uci_mcar20.md` has both settings on 5 seeds.
"""
import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.models.g2lgn import networks, regions
from keraszoo.models.gain.gain import bce_from_logits, hint_mask
from keraszoo.models.layers import gain_reference_init
from keraszoo.registry import register_model

INITIALIZERS = {"xavier": keras.initializers.GlorotUniform, "gain": gain_reference_init}


@register_model("g2lgn")
class G2LGN(DeepImputer):
    """G2LGN imputer: a global GAN imputer (GIN), an impute guider (IGM) and a local GAN refiner (LIN).

    See the module docstring for every choice made where the paper is vague, and for the ablations.
    """

    generative = True
    example_kinds = ("table", "image")
    default_learning_rates = {"g_optimizer": 1e-3, "d_optimizer": 1e-3}  # section 3.1: Adam, 1e-3

    def __init__(
        self,
        alpha=100.0,
        hint_rate=0.9,
        hint_variant="code",
        noise_scale=0.01,
        hidden_units=None,
        partitions=1,
        patch_size=14,
        guide_units=None,
        guide_channels=1,
        filters=16,
        initializer="xavier",
        use_lin=True,
        use_search=True,
        use_fc=True,
        guide_input="completed",
        extra_mask_rate=0.2,
        discriminator="separate",
        fusion_init="pass_through",
        seed=0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        if not 0.0 <= hint_rate <= 1.0:
            raise ValueError(f"hint_rate must be in [0, 1], got {hint_rate}")
        if hint_variant not in ("code", "paper"):
            raise ValueError(f"hint_variant must be 'code' or 'paper', got {hint_variant!r}")
        if noise_scale < 0:
            raise ValueError(f"noise_scale must be non-negative, got {noise_scale}")
        for name, units in (("hidden_units", hidden_units), ("guide_units", guide_units)):
            if units is not None and (len(units) == 0 or min(units) < 1):
                raise ValueError(f"{name} must be a non-empty list of positive widths, got {units}")
        for name, value in (("partitions", partitions), ("patch_size", patch_size), ("guide_channels", guide_channels), ("filters", filters)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if initializer not in INITIALIZERS:
            raise ValueError(f"initializer must be one of {sorted(INITIALIZERS)}, got {initializer!r}")
        if guide_input not in ("completed", "noise"):
            raise ValueError(f"guide_input must be 'completed' (X^, the paper) or 'noise' (the ablation), got {guide_input!r}")
        if not 0.0 <= extra_mask_rate < 1.0:
            raise ValueError(f"extra_mask_rate must be in [0, 1), got {extra_mask_rate}")
        self.alpha = float(alpha)
        self.hint_rate = float(hint_rate)
        self.hint_variant = hint_variant
        self.noise_scale = float(noise_scale)
        self.hidden_units = None if hidden_units is None else [int(u) for u in hidden_units]
        self.partitions = int(partitions)
        self.patch_size = int(patch_size)
        self.guide_units = None if guide_units is None else [int(u) for u in guide_units]
        self.guide_channels = int(guide_channels)
        self.filters = int(filters)
        self.initializer = initializer
        self.use_lin = bool(use_lin)
        self.use_search = bool(use_search)
        self.use_fc = bool(use_fc)
        self.guide_input = guide_input
        self.extra_mask_rate = float(extra_mask_rate)
        if discriminator not in ("fused", "separate"):
            raise ValueError(f"discriminator must be 'fused' (section 2.3) or 'separate' (eqs. 3, 7, 10), got {discriminator!r}")
        self.discriminator = discriminator
        if fusion_init not in ("pass_through", "xavier"):
            raise ValueError(f"fusion_init must be 'pass_through' or 'xavier', got {fusion_init!r}")
        self.fusion_init = fusion_init
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.adv_tracker = keras.metrics.Mean(name="g_adversarial")
        self.global_mse_tracker = keras.metrics.Mean(name="mse_observed")
        self.local_mse_tracker = keras.metrics.Mean(name="mse_observed_local")

    @property
    def optimizer_networks(self):
        """{optimizer: networks}: G_g, f_FC (and G_l) on eq. 11; D_g (and D_l) and the fusion layer on D's loss."""
        local = ("local_generator",) if self.use_lin else ()
        local_d = ("local_discriminator",) if self.use_lin else ()
        return {
            "g_optimizer": ("global_generator", "guide") + local,
            "d_optimizer": ("global_discriminator",) + local_d + (("fusion",) if self.discriminator == "fused" else ()),
        }

    # --- networks -------------------------------------------------------------------------------
    def build_networks(self, example_shape):
        init = INITIALIZERS[self.initializer]
        seed = self.seed * 1000
        image = len(example_shape) == 3
        if not self.use_search:
            candidates, local_shape = regions.whole_example(example_shape)
        elif image:
            candidates, local_shape = regions.image_regions(example_shape, self.patch_size)
        else:
            candidates, local_shape = regions.table_regions(example_shape[0], self.partitions)
        self.candidate_regions = tf.constant(candidates)
        self.local_shape = tuple(int(s) for s in local_shape)
        # one region that is the whole example (tables' default, "w/o f_search"): gathers and scatters are identities
        self.whole_region = candidates.shape[0] == 1 and np.array_equal(candidates[0], np.arange(int(np.prod(example_shape))))
        n, n_local = self.n_features, int(candidates.shape[1])
        # without LIN, f_FC's output is the region's values: one channel per data channel
        guide_channels = self.guide_channels if self.use_lin else (self.local_shape[-1] if image else 1)
        if image:
            self.global_generator = networks.image_generator(example_shape, self.filters, init, seed)
            self.global_discriminator = networks.image_discriminator(example_shape, self.filters, init, seed + 100, "global_discriminator")
        else:
            hidden = self.hidden_units or [n, n]
            self.global_generator = networks.table_generator(n, hidden, init, seed)
            self.global_discriminator = networks.table_discriminator(n, hidden, n, init, seed + 100, "global_discriminator")
        self.guide = networks.guide_network(
            self.local_shape, guide_channels, self.guide_units or [n_local], projection_only=not self.use_fc,
            output_activation="relu" if self.use_lin else "sigmoid", init=init, seed=seed + 200,
        )
        if self.use_lin:
            if image:
                self.local_generator = networks.image_local_generator(self.local_shape, guide_channels, self.filters, init, seed + 300)
                self.local_discriminator = networks.image_discriminator(self.local_shape, self.filters, init, seed + 400, "local_discriminator")
            else:
                local_in = n_local * (guide_channels + 1)
                self.local_generator = networks.table_local_generator(n_local, guide_channels, [local_in, local_in], init, seed + 300)
                self.local_discriminator = networks.table_discriminator(n_local, [2 * n_local, 2 * n_local], n_local, init, seed + 400, "local_discriminator")
        # D_g's logits, D_l's logits put back in place, the region indicator (section 2.3's fused vector)
        if self.discriminator == "fused":
            self.fusion = networks.fusion_network((3 if self.use_lin else 2) * n, n, init, seed + 500, pass_through=self.fusion_init == "pass_through")

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """`g_optimizer` trains G_g, f_FC and G_l; `d_optimizer` D_g, D_l and the fusion layer (Adam(1e-3) if None)."""
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.adv_tracker, self.global_mse_tracker, self.local_mse_tracker]

    # --- the forward pass -----------------------------------------------------------------------
    def noise_like(self, x, scale, deterministic):
        if deterministic:
            return tf.fill(tf.shape(x), 0.5 * scale)
        return self.random_uniform(tf.shape(x), 0.0, scale)

    def complete(self, x, mask, deterministic, training=False):
        """GIN, IGM and LIN on a batch (x zero at missing entries). A dict of the pieces train_step needs."""
        channels = -1
        z = self.noise_like(x, self.noise_scale, deterministic)
        global_values = self.global_generator(tf.concat([x, mask, (1.0 - mask) * z], axis=channels), training=training)  # eq. 1
        x_hat = mask * x + (1.0 - mask) * global_values  # eq. 2 (read with 1 = observed)

        indices = self.select(mask)  # eq. 4: f_search
        guide_source = x_hat if self.guide_input == "completed" else self.noise_like(x, 1.0, deterministic)
        x_cdd = self.gather(guide_source, indices)
        local_mask = self.gather(mask, indices)
        epsilon = self.guide(x_cdd, training=training)  # eq. 5: f_FC (and E: its output has the region's shape)
        if self.use_lin:
            x_hat_cdd = tf.concat([epsilon, local_mask], axis=channels)  # eq. 6: C(E(eps), M)
            local_values = self.local_generator(x_hat_cdd, training=training)  # eq. 7: G_l
        else:
            local_values = epsilon  # w/o LIN: IGM's output is the region's imputation
        local_x = self.gather(x, indices)
        local_completed = local_mask * local_x + (1.0 - local_mask) * local_values
        completed = self.scatter(x_hat, indices, local_completed)
        return {
            "global_values": global_values,
            "x_hat": x_hat,
            "indices": indices,
            "local_x": local_x,
            "local_mask": local_mask,
            "local_values": local_values,
            "local_completed": local_completed,
            "completed": completed,
        }

    def select(self, mask):
        """eq. 4's f_search: [batch, R] flat indices of each example's region."""
        if self.whole_region:
            return tf.tile(self.candidate_regions, [tf.shape(mask)[0], 1])
        return regions.select_regions(self.candidate_regions, mask)

    def gather(self, t, indices):
        """Each example's region of `t`, [batch, *local_shape]."""
        return t if self.whole_region else regions.gather_region(t, indices, self.local_shape)

    def scatter(self, t, indices, local):
        """`t` with each example's region replaced by `local`."""
        return local if self.whole_region else regions.scatter_region(t, indices, local)

    def discriminate(self, completed, hint, local_completed, indices, training=False):
        """Section 2.3: D_g on the whole example, D_l on the region, fused into one logit per entry."""
        batch = tf.shape(completed)[0]
        global_logits = self.global_discriminator(tf.concat([completed, hint], axis=-1), training=training)
        parts = [tf.reshape(global_logits, [batch, -1])]
        if self.use_lin:
            local_hint = self.gather(hint, indices)
            local_logits = self.local_discriminator(tf.concat([local_completed, local_hint], axis=-1), training=training)
            parts.append(tf.reshape(self.scatter(tf.zeros_like(completed), indices, local_logits), [batch, -1]))
        parts.append(tf.reshape((tf.ones_like(completed) if self.whole_region else regions.region_indicator(completed, indices)), [batch, -1]))
        fused = self.fusion(tf.concat(parts, axis=1), training=training)
        return tf.reshape(fused, tf.shape(completed))

    def values_per_row(self, draws=1):
        # images: the conv generator holds about 4 x `filters` values per pixel at its widest
        cost = 4 * self.filters if len(self.example_shape) == 3 else self.imputation_cost
        return cost * self.n_features * draws

    def impute_batch(self, x, mask):
        return self.complete(x, mask, deterministic=True)["completed"]

    def sample_batch(self, x, mask, n):
        return tf.map_fn(lambda _: self.complete(x, mask, deterministic=False)["completed"], tf.range(n), fn_output_signature=x.dtype)

    def hint_mask(self, mask):
        """B of GAIN's hint mechanism for `hint_variant` (`keraszoo.models.gain.gain.hint_mask`)."""
        return hint_mask(mask, self.hint_rate, self.hint_variant, self.random_uniform)

    # --- training -------------------------------------------------------------------------------
    def train_step(self, data):
        x, observed = data
        x = x_true = tf.where(observed > 0, x, tf.zeros_like(x))
        mask = observed
        if self.extra_mask_rate > 0:  # hide some observed entries: the losses still see them
            mask = observed * tf.cast(self.random_uniform(tf.shape(observed)) >= self.extra_mask_rate, observed.dtype)
            x = mask * x
        b = self.hint_mask(mask)
        if self.hint_variant == "code":
            hint, weight = b * mask, tf.ones_like(mask)
        else:
            hint, weight = b * mask + 0.5 * (1.0 - b), 1.0 - b
        counts = global_sum(tf.stack([tf.reduce_sum(weight), tf.reduce_sum(observed)]))
        weight_sum, observed_sum = tf.unstack(tf.maximum(counts, 1.0))
        variables = {name: found for name, _, found in self.optimizers_and_variables()}
        generator_variables, discriminator_variables = variables["g_optimizer"], variables["d_optimizer"]

        with tf.GradientTape() as g_tape:
            out = self.complete(x, mask, deterministic=False, training=True)

            # Discriminator step on the current completion, then the generators' step against the updated D.
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                d_loss, _ = self.adversarial_losses(tf.nest.map_structure(tf.stop_gradient, out), mask, hint, weight, weight_sum)
            d_grads = d_tape.gradient(d_loss, discriminator_variables)
            self.d_optimizer.apply_gradients(zip(d_grads, discriminator_variables))
            _, g_adv = self.adversarial_losses(out, mask, hint, weight, weight_sum)  # eq. 10
            global_mse = tf.reduce_sum(tf.square(observed * (x_true - out["global_values"]))) / observed_sum  # eq. 8
            local_observed = self.gather(observed, out["indices"])
            local_true = self.gather(x_true, out["indices"])
            local_count = tf.maximum(global_sum(tf.reduce_sum(local_observed)), 1.0)
            local_mse = tf.reduce_sum(tf.square(local_observed * (local_true - out["local_values"]))) / local_count  # eq. 9's L_obs^l
            g_loss = g_adv + self.alpha * (global_mse + local_mse)  # eq. 11, L_obs weighted by alpha
        g_grads = g_tape.gradient(g_loss, generator_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, generator_variables))

        values = tf.unstack(global_sum(tf.stack([d_loss, g_loss, g_adv, global_mse, local_mse])))
        for tracker, value in zip(self.metrics, values):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def adversarial_losses(self, out, mask, hint, weight, weight_sum):
        """(D's loss, the generators' adversarial loss, eq. 10) for the pieces of `complete`.

        fused: one per-entry output of both discriminators (section 2.3) on the final completion.
        separate: D_g on GIN's X^ (eq. 3) and D_l on LIN's completed region (eq. 7), each against its
        own part of the mask, summed (eq. 10); without LIN, D_g judges the final completion.
        """
        if self.discriminator == "fused":
            logits = self.discriminate(out["completed"], hint, out["local_completed"], out["indices"], training=True)
            d_loss = tf.reduce_sum(weight * bce_from_logits(mask, logits)) / weight_sum
            g_adv = tf.reduce_sum(weight * (1.0 - mask) * tf.math.softplus(-logits)) / weight_sum
            return d_loss, g_adv
        judged = out["x_hat"] if self.use_lin else out["completed"]
        logits = self.global_discriminator(tf.concat([judged, hint], axis=-1), training=True)
        d_loss = tf.reduce_sum(weight * bce_from_logits(mask, logits)) / weight_sum
        g_adv = tf.reduce_sum(weight * (1.0 - mask) * tf.math.softplus(-logits)) / weight_sum
        if self.use_lin:
            indices, local_mask = out["indices"], out["local_mask"]
            local_hint = self.gather(hint, indices)
            local_weight = self.gather(weight, indices)
            local_logits = self.local_discriminator(tf.concat([out["local_completed"], local_hint], axis=-1), training=True)
            local_weight_sum = tf.maximum(global_sum(tf.reduce_sum(local_weight)), 1.0)
            d_loss += tf.reduce_sum(local_weight * bce_from_logits(local_mask, local_logits)) / local_weight_sum
            g_adv += tf.reduce_sum(local_weight * (1.0 - local_mask) * tf.math.softplus(-local_logits)) / local_weight_sum
        return d_loss, g_adv

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {
            "alpha": 10.0, "hint_rate": 0.8, "hidden_units": [6, 4], "partitions": 2, "guide_units": [3],
            "guide_channels": 2, "initializer": "gain", "extra_mask_rate": 0.1, "seed": 3,
        }
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "hint_rate": self.hint_rate,
                "hint_variant": self.hint_variant,
                "noise_scale": self.noise_scale,
                "hidden_units": self.hidden_units,
                "partitions": self.partitions,
                "patch_size": self.patch_size,
                "guide_units": self.guide_units,
                "guide_channels": self.guide_channels,
                "filters": self.filters,
                "initializer": self.initializer,
                "use_lin": self.use_lin,
                "use_search": self.use_search,
                "use_fc": self.use_fc,
                "guide_input": self.guide_input,
                "extra_mask_rate": self.extra_mask_rate,
                "discriminator": self.discriminator,
                "fusion_init": self.fusion_init,
            }
        )
        return config

