"""`auto`: an imputer that learns, per column, how far to trust each of the zoo's imputers.

Per-column stacking (issue #17). `fit_arrays(x, mask)`:

1. For each of `rounds` seeded rounds, hide `hidden_fraction` of every column's observed entries
   (never its last observed one), fit every pool member on what is left, and impute. By default
   (``hidden_fraction=None``) the fraction hides 300 entries of the median column, at most 20% of its
   observed entries: breast cancer hides 20%, spam 8%, wine 6%, letter 1.9%, credit 1.3%. Hiding raises
   the missing rate the members see above the table's, and members degrade with it at different speeds:
   with a fixed 20% on letter (20% MCAR, so 36% missing in the validation round) k-NN looked much worse
   than MissForest (validation RMSE 0.094 against 0.055 on the first column), the weights gave it
   nothing, and `auto` tied MissForest (0.0704) while k-NN alone scored 0.0693 on the real task. Measured
   on letter, seed 0, test RMSE by fraction: 0.2: 0.0704, 0.1: 0.0670, 0.05: 0.0653, 0.02: 0.0646,
   0.01: 0.0649.
2. Per column, learn the non-negative weights summing to 1 that minimise the squared error of the
   weighted imputation on the entries hidden in all rounds, shrunk towards the weights learned on all
   columns' hidden entries together (`weights.shrunk_column_weights`): column j's error counts with
   `shrinkage` pseudo-entries that follow the pooled entries, so a column with a hundred entries leans on
   the pooled weights and one with thousands on its own. With ``shrinkage="cv"`` (the default) the
   strength is chosen by two-fold cross-validation over the hidden entries, from 0 (each column alone)
   to 1e9 (the pooled weights everywhere). A column with no hidden entry (fewer than two observed
   values) takes the pooled weights.
3. Spare the final fit of the costliest members the weights can do without (``refit_tolerance``,
   0.2% by default): in decreasing order of their usual fit cost (`refit_cost_order`: deep members
   first, then the classical ones by the fit times measured on the benchmark tables; a fixed order, not
   this fit's timings, so that a seed gives the same imputation on a loaded machine as on an idle one:
   ordering by the measured times made breast's seed 3 give three different RMSEs in three runs,
   0.04872 to 0.04880, as GAIN's and MissForest's times crossed), a member goes when the weights
   re-solved without it keep the validation RMSE over all hidden entries within (1 + refit_tolerance)
   of the full weights' and every column no worse than its best member (`spared_` names them). On
   breast cancer (seed 0, 20% MCAR; members then tried in the order of their measured times) it spared
   GAIN, MICE and KNN: the fit took 36.5 s instead of 43.4 s and the test RMSE moved from 0.04721 to
   0.04722. On spam it spared GAIN.
4. Refit on the whole table every member that some column trusts (a member with weight 0 in every
   column is dropped: `members_` holds None in its place, and `report()` still lists it). Without the
   final fit (``refit=False``; no sparing in step 3 then) the trusted members of the last validation
   round impute, fitted on the table without that round's hidden entries. That saves a fit of each
   trusted member; what it costs depends on the fraction hidden (1-8% of each column on the large
   benchmark tables, 20% on breast cancer): on breast cancer's first ten columns (20% MCAR, mask seed 7,
   pool mean, KNN, MICE, two rounds) the RMSE rose from 0.0692 to 0.0783; on credit under MAR (1.0%
   hidden, default pool, 5 seeds, `benchmarks/results/auto_reuse_mar50_credit.md`) it moved from 0.0229
   to 0.0228; on wine under MAR (4.6% hidden, 5 seeds, `auto_default_gb_mar50_wine.md`) it rose from
   0.0746 to 0.0755 (+1.2%, every seed). ``refit="auto"`` (the default) refits when a round hides more
   than 3% of each column (`REFIT_ABOVE`): breast cancer (20%), spam (8.2% MCAR, 6.5% MAR) and wine
   (5.8%, 4.6%) are refitted; letter (1.9%, 1.5%) and credit (1.2%, 1.0%), where the last round's
   members saw at least 98% of each column, are not. `refitted_` says which.

Every member's imputation of a column is clipped to the column's observed range, in the validation
rounds (the round's observed entries) as in `impute` and the export (the fitting table's): a linear
member's extrapolation otherwise decides a heavy-tailed column. On spam (seed 0, 20% MCAR) MICE
imputed 1.92 for a capital_run_length_average whose largest observed value is 1 (min-max units),
while it had won that column's validation entries by predicting their largest value best; that one
entry lost the table to MissForest.

Optional pruning (``prune_tolerance``, off by default): after the first round, and again after the
last, members go while the validation RMSE of the rest (over all hidden entries) stays within
(1 + prune_tolerance) of that of all; a member gone after the first round skips the later rounds
(`member_rounds_` says how many each ran). Measured without shrinkage on 20% MCAR, seeds 0-2
(`benchmarks/results/auto_ablation.md`): at 0.01 it saved 10-40% of a 3-round fit on breast cancer and
lowered its RMSE slightly, but on wine it raised the RMSE by 0.4-1.2% for at most 28% of the cost, so it is off.

`impute` then returns, per column, the weighted sum of the refitted members' imputations, with the
observed entries untouched. It is inductive: new rows go through the fitted members and weights, and
nothing is refitted (HyperImpute's `transform` refits on whatever it is given).

On the hidden validation entries each column's weights are never worse than its best single member:
shrunk weights that would be are moved back towards the column's own least-squares weights just far
enough (`weights.no_worse_than_best_member`). `report()` gives, per column, the weights and each
member's validation RMSE; `plot_report()` draws the weights.

Cost: a fit is `rounds` fits of every member plus, when refitted, one of each trusted member. `rounds=None` (the
default) takes as many rounds as give the median column `MIN_VALIDATION` (100) hidden entries, at most
5: one on the large benchmark tables (300 entries a column) and wine, two on breast cancer (569 rows, 91
entries a column a round). Measured on breast cancer at 20% MCAR, seeds 0-2
(`benchmarks/results/auto_ablation.md`), mean scaled RMSE with cross-validated shrinkage: 3 rounds
0.0458, 2 rounds 0.0456, 1 round 0.0462 (without shrinkage: 0.0467, 0.0469, 0.0480; EM, the best single
member: 0.0470); two rounds cost about three quarters of three.

Pool: the default is mean, KNN, MICE, MissForest, SoftImpute ("matrix"), EM, GAIN (`GAIN_MEMBER`: 2,000
training steps instead of GAIN's 10,000, which are 2,250 passes over breast cancer's rows) and, on tables of
10,000 rows or more, chained equations with gradient-boosted trees per column (`GRADIENT_BOOSTING_MEMBER`:
`iterative_select` with candidates ``["gradient_boosting"]``, 3 sweeps). A pool entry's ``min_rows``
makes it sit out fits on smaller tables (`skipped_`); that member's fit cost per MissForest's grows as
the table shrinks below the size where its trees stop early. On credit under MAR it is what HyperImpute
had and the pool lacked: with it `auto` went from 0.0229 to 0.0212 (5 seeds, below HyperImpute in every
one; `benchmarks/results/auto_gb_member_mar50_credit.md`). ``pool="deep"``
adds every other registered deep imputer of tables (G2LGN, MIWAE, not-MIWAE, EMFlow, MCFlow, MisGAN,
GAMIN, Datawig). Issue #17 asks for the deep families in the default pool once they exist; they are not,
by cost: on CPU each one's default training takes 25-190 s on the benchmark tables (MIWAE 130 s, EMFlow
185 s against MissForest's 10-40 s, `benchmarks/results/emflow_table1_mcar20.md`), so a default pool with
them would cost many times the 5x-MissForest budget, and none of them was the best single model on any
of those tables. An entry is a
registered imputer's name or ``{"name": ..., "params": {...}, "fit": {...}}`` (constructor parameters,
and a deep member's training parameters); members that take a `seed` get the model's unless given.
`iterative_select` with all its candidates (HyperImpute-style learner selection per column inside
chained equations) is an optional member: several times MissForest's fit, so not in the default pool.

Export: the SavedModel combines the members' TensorFlow imputations with the learned weights in one
graph. Members without one (MICE with ``sample_posterior=True``) are left out of the exported pool
with a warning that names them; each column's weights are then renormalised over the members kept (a
column that trusted only left-out members takes its best kept member by validation error).
"""
import math
import time
import warnings

import numpy as np
import tensorflow as tf

from keraszoo.models.auto.weights import STRENGTHS, Moments, shrunk_column_weights, simplex_weights
from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import get_model, get_model_class, is_deep, list_models, model_parameters, model_task, register_model

# Chained equations with gradient-boosted trees per column (HyperImpute's winning learner on credit under
# MAR), for tables of 10,000 rows or more only: from there scikit-learn's HistGradientBoostingRegressor
# stops early, which bounds its cost (one fit of it against MissForest's, 20% MCAR, seed 0: credit 0.71x,
# letter 1.22x; below, without early stopping: spam 2.19x, breast cancer 1.43x, too dear for the 5x budget).
GRADIENT_BOOSTING_MEMBER = {"name": "iterative_select", "params": {"candidates": ["gradient_boosting"], "max_iter": 3}, "min_rows": 10_000}
# GAIN trains 2,000 steps in the pool, not its 10,000: on breast cancer (20% MCAR, 5 seeds) GAIN alone scored
# 0.0706 at 2,000 and 0.0703 at 10,000, while its three trainings (two rounds and the refit) were most of the
# time `auto` spent above MissForest's (`benchmarks/results/auto_gain_2000_mcar20_breast.md`).
GAIN_MEMBER = {"name": "gain", "fit": {"iterations": 2000}}
DEFAULT_POOL = ("mean", "knn", "mice", "missforest", "matrix", "em", GAIN_MEMBER, GRADIENT_BOOSTING_MEMBER)
NAMED_POOLS = ("default", "deep")
MIN_VALIDATION = 100  # hidden entries the median column should get when `rounds` is None ...
MAX_ROUNDS = 5  # ... in at most this many rounds
HIDDEN_PER_ROUND = 300  # when `hidden_fraction` is None: the median column hides this many entries a round ...
MAX_HIDDEN_FRACTION = 0.2  # ... but at most this fraction of its observed entries
REFIT_TOLERANCE = 0.002  # default: a member whose loss raises the validation RMSE by at most 0.2% is not refitted
REFIT_ABOVE = 0.03  # refit="auto": refit the members when a round hides more than this fraction of each column


def named_pool(name):
    """The members of a named pool: "default" (`DEFAULT_POOL`) or "deep" (the default plus every other
    registered deep imputer of tables, read from the registry, so a new family joins it unedited)."""
    default = [entry if isinstance(entry, str) else dict(entry) for entry in DEFAULT_POOL]
    if name == "default":
        return default
    if name == "deep":
        names = {entry if isinstance(entry, str) else entry["name"] for entry in DEFAULT_POOL}
        deep = [n for n in list_models(kind="deep", task="impute") if n not in names and "table" in get_model_class(n).example_kinds]
        return default + deep
    raise ValueError(f"auto: unknown named pool {name!r} (named pools: {', '.join(NAMED_POOLS)}; or give a list of members)")


# Classical imputers from the costliest fit to the cheapest, by their fit times on the benchmark tables
# (`uci_mcar20.md`, `auto_mcar20*.md`): the order in which the final fit tries to spare members.
CLASSICAL_FIT_COST = ("iterative_select", "missforest", "mice", "knn", "matrix", "em", "median", "most_frequent", "mean", "zero")


def refit_cost_order(names, members):
    """`members` (indices, named `names`) from the costliest usual fit to the cheapest: deep members
    first (each trains a network), then classical ones not in CLASSICAL_FIT_COST (cost unknown, taken
    as costly), then CLASSICAL_FIT_COST's in its order; ties keep the pool order."""

    def rank(name):
        if is_deep(name):
            return 0
        return 1 if name not in CLASSICAL_FIT_COST else 2 + CLASSICAL_FIT_COST.index(name)

    return [members[i] for i in sorted(range(len(members)), key=lambda i: (rank(names[i]), i))]


def member_spec(entry, where="auto"):
    """A pool entry as ``{"name", "params", "fit", "min_rows"}``, checked: a registered table imputer other
    than auto. ``min_rows`` (default 0): the member joins only fits on tables of at least that many rows."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{where}: a pool entry is a model name or a dict with a 'name', got {entry!r}")
    unknown = sorted(set(entry) - {"name", "params", "fit", "min_rows"})
    if unknown:
        raise ValueError(f"{where}: pool entry {entry['name']!r} has unknown key(s) {', '.join(unknown)} (valid: name, params, fit, min_rows)")
    min_rows = entry.get("min_rows", 0)
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 0:
        raise ValueError(f"{where}: pool entry {entry['name']!r}: min_rows must be an integer >= 0, got {min_rows!r}")
    name = entry["name"]
    cls = get_model_class(name)  # unknown names: an error listing the registered ones
    if name == AutoImputer.registry_name or issubclass(cls, AutoImputer):
        raise ValueError(f"{where}: the pool cannot contain {name!r} itself")
    if model_task(name) != "impute":
        raise ValueError(f"{where}: pool member {name!r} is a classifier, not an imputer")
    if is_deep(name) and "table" not in cls.example_kinds:
        raise ValueError(f"{where}: pool member {name!r} imputes {' or '.join(cls.example_kinds)} examples, not tables")
    params, fit = dict(entry.get("params") or {}), dict(entry.get("fit") or {})
    if fit and not is_deep(name):
        raise ValueError(f"{where}: pool member {name!r} is classical and takes no training parameters, got {sorted(fit)}")
    get_model(name, **params)  # unknown constructor parameters: an error naming the valid ones
    return {"name": name, "params": params, "fit": fit, "min_rows": int(min_rows)}


@register_model("auto")
class AutoImputer(ClassicalImputer):
    """Per-column stacking over a pool of zoo imputers (see the module docstring)."""

    contract_params = {"pool": ["mean", {"name": "knn", "params": {"n_neighbors": 3}}], "rounds": 2, "hidden_fraction": 0.3, "seed": 1}

    def __init__(self, pool=DEFAULT_POOL, rounds=None, hidden_fraction=None, shrinkage="cv", prune_tolerance=None, refit_tolerance=REFIT_TOLERANCE, refit="auto", seed=0):
        super().__init__()
        if isinstance(pool, str):
            self.pool, entries = pool, named_pool(pool)
        elif isinstance(pool, dict) or not hasattr(pool, "__iter__"):
            raise ValueError(f"auto: pool must be a list of model names or member dicts, or a named pool ({', '.join(NAMED_POOLS)}), got {pool!r}")
        else:
            self.pool = entries = [entry if isinstance(entry, str) else dict(entry) for entry in pool]
        self.members_spec_ = [member_spec(entry) for entry in entries]
        if not self.members_spec_:
            raise ValueError("auto: the pool is empty")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1):
            raise ValueError(f"auto: rounds must be a positive integer or None (enough for {MIN_VALIDATION} hidden entries a column), got {rounds!r}")
        if hidden_fraction is not None and (isinstance(hidden_fraction, bool) or not isinstance(hidden_fraction, (int, float)) or not 0 < hidden_fraction < 1):
            raise ValueError(f"auto: hidden_fraction must be in (0, 1) or None ({HIDDEN_PER_ROUND} entries of the median column a round, at most {MAX_HIDDEN_FRACTION:g}), got {hidden_fraction!r}")
        if shrinkage != "cv" and (isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float)) or not 0 <= shrinkage < float("inf")):
            raise ValueError(f"auto: shrinkage must be 'cv' (chosen by cross-validation) or a number of pseudo-entries >= 0, got {shrinkage!r}")
        if prune_tolerance is not None and (isinstance(prune_tolerance, bool) or not isinstance(prune_tolerance, (int, float)) or not 0 <= prune_tolerance < 1):
            raise ValueError(f"auto: prune_tolerance must be in [0, 1) or None (never prune), got {prune_tolerance!r}")
        if refit_tolerance is not None and (isinstance(refit_tolerance, bool) or not isinstance(refit_tolerance, (int, float)) or not 0 <= refit_tolerance < 1):
            raise ValueError(f"auto: refit_tolerance must be in [0, 1) or None (refit every trusted member), got {refit_tolerance!r}")
        if not (isinstance(refit, (bool, np.bool_)) or (isinstance(refit, str) and refit == "auto")):
            raise ValueError(f"auto: refit must be True (refit the trusted members on the whole table), False (keep the last validation round's) or 'auto' (refit when a round hides more than {REFIT_ABOVE:.0%} of each column), got {refit!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"auto: seed must be an integer, got {seed!r}")
        self.rounds = None if rounds is None else int(rounds)
        self.hidden_fraction = None if hidden_fraction is None else float(hidden_fraction)
        self.seed = int(seed)
        self.shrinkage = shrinkage if shrinkage == "cv" else float(shrinkage)
        self.prune_tolerance = None if prune_tolerance is None else float(prune_tolerance)
        self.refit_tolerance = None if refit_tolerance is None else float(refit_tolerance)
        self.refit = refit if isinstance(refit, str) else bool(refit)
        names = [spec["name"] for spec in self.members_spec_]
        # unique labels for the report: "knn", "knn#2", ...
        self.labels = [name if names[:i].count(name) == 0 else f"{name}#{names[:i].count(name) + 1}" for i, name in enumerate(names)]

    def get_config(self):
        return {"pool": self.pool, "rounds": self.rounds, "hidden_fraction": self.hidden_fraction, "shrinkage": self.shrinkage, "prune_tolerance": self.prune_tolerance, "refit_tolerance": self.refit_tolerance, "refit": getattr(self, "refit", True), "seed": self.seed}  # (models saved before `refit` existed refitted)

    # --- fitting --------------------------------------------------------------------------------
    def _new_member(self, spec):
        params = dict(spec["params"])
        if "seed" in model_parameters(spec["name"]) and "seed" not in params:
            params["seed"] = self.seed
        return get_model(spec["name"], **params)

    def _fit_member(self, spec, x, mask):
        member = self._new_member(spec)
        if is_deep(spec["name"]):
            member.fit_arrays(x.astype(np.float32), mask.astype(np.float32), **{"seed": self.seed, **spec["fit"]})
        else:
            member.fit_arrays(x, mask)
        return member

    @staticmethod
    def _member_imputation(member, x, mask):
        if isinstance(member, ClassicalImputer):
            return np.asarray(member.impute(x, mask), dtype=np.float64)
        return np.asarray(member.impute(x.astype(np.float32), mask.astype(np.float32)), dtype=np.float64)

    def _hide(self, mask, rng):
        """0/1 entries to hide this round: `hidden_fraction_` of each column's observed entries (at
        least one where the column has two or more, never all of them)."""
        hidden = np.zeros_like(mask)
        for j in range(mask.shape[1]):
            observed = np.flatnonzero(mask[:, j] == 1)
            count = min(observed.size - 1, max(1, int(round(self.hidden_fraction_ * observed.size))))
            if count > 0:
                hidden[rng.choice(observed, size=count, replace=False), j] = 1.0
        return hidden

    @staticmethod
    def _observed_range(x, mask):
        """Per column, the smallest and largest observed value (-inf, inf where none is observed)."""
        observed = mask == 1
        low = np.where(observed, x, np.inf).min(axis=0)
        high = np.where(observed, x, -np.inf).max(axis=0)
        none = ~observed.any(axis=0)
        return np.where(none, -np.inf, low), np.where(none, np.inf, high)

    def _fit(self, x, mask):
        rng = np.random.default_rng(self.seed)
        n_members, d = len(self.members_spec_), x.shape[1]
        # per column: [hidden entries, members] blocks, one per round (NaN for members pruned before it)
        predictions = [[] for _ in range(d)]
        targets = [[] for _ in range(d)]
        median_observed = float(np.median(mask.sum(axis=0)))
        # Hiding entries raises the missing rate the members see in the validation rounds above the
        # table's, and members differ in how they degrade with it (k-NN on letter: 0.070 at 20% MCAR,
        # 0.138 at 40%, `g2lgn_letter_missing_rates.md`), so the fraction is kept as small as enough
        # validation entries allow.
        self.hidden_fraction_ = self.hidden_fraction if self.hidden_fraction is not None else min(MAX_HIDDEN_FRACTION, HIDDEN_PER_ROUND / max(median_observed, 1.0))
        per_round = self.hidden_fraction_ * median_observed
        self.rounds_ = self.rounds or int(min(MAX_ROUNDS, max(1, math.ceil(MIN_VALIDATION / max(per_round, 1.0)))))
        refit = getattr(self, "refit", True)
        self.refitted_ = bool(self.hidden_fraction_ > REFIT_ABOVE) if refit == "auto" else bool(refit)
        # members whose `min_rows` the table does not reach sit this fit out (weight 0, never fitted)
        active = [m for m, spec in enumerate(self.members_spec_) if x.shape[0] >= spec.get("min_rows", 0)]
        self.skipped_ = [self.labels[m] for m in range(n_members) if m not in active]
        if not active:
            raise ValueError(f"auto.fit: every pool member needs more rows than the table's {x.shape[0]} (min_rows)")
        self.spared_ = []
        self.member_rounds_ = np.zeros(n_members, dtype=np.int64)  # validation rounds each member ran
        self.member_seconds_ = np.zeros(n_members)  # their fit-and-impute time over those rounds
        for round_ in range(self.rounds_):
            hidden = self._hide(mask, rng)
            kept = mask * (1.0 - hidden)
            shown = np.where(kept == 1, x, 0.0)
            low, high = self._observed_range(x, kept)
            imputations, round_members = {}, {}
            for m in active:
                start = time.perf_counter()
                member = self._fit_member(self.members_spec_[m], shown, kept)
                if not self.refitted_:  # kept to impute; with a refit, let it go (a deep member holds a network)
                    round_members[m] = member
                imputations[m] = np.clip(self._member_imputation(member, shown, kept), low, high)
                self.member_seconds_[m] += time.perf_counter() - start
            self.member_rounds_[active] += 1
            for j in range(d):
                rows = np.flatnonzero(hidden[:, j] == 1)
                if rows.size:
                    block = np.full((rows.size, n_members), np.nan)
                    for m, imputed in imputations.items():
                        block[:, m] = imputed[rows, j]
                    predictions[j].append(block)
                    targets[j].append(x[rows, j])
            if round_ == 0 and self.rounds_ > 1:
                # members that add nothing on the first round's entries skip the later rounds
                active = self._prune(self._hidden_entries(predictions, targets), active)
        hidden_entries = self._hidden_entries(predictions, targets)
        if not hidden_entries:
            raise ValueError("auto.fit: no column has two observed values, so nothing can be held out to learn the weights")
        active = self._prune(hidden_entries, active)
        self.validation_rmse_ = np.full((d, n_members), np.nan)
        self.validated_entries_ = np.zeros(d, dtype=np.int64)
        for j, (p, t) in hidden_entries.items():
            ran = np.isfinite(p)  # a pruned member's RMSE is over the rounds it ran
            self.validation_rmse_[j] = [np.sqrt(((p[ran[:, m], m] - t[ran[:, m]]) ** 2).mean()) if ran[:, m].any() else np.nan for m in range(n_members)]
            self.validated_entries_[j] = t.size
        strengths = STRENGTHS if self.shrinkage == "cv" else (self.shrinkage,)
        self.weights_, self.shrinkage_ = self._solve_weights(hidden_entries, active, strengths)
        if self.refitted_ and self.refit_tolerance is not None:  # (without a refit there is nothing to spare)
            self.weights_ = self._spare_refits(hidden_entries, active, self.weights_, self.shrinkage_)
        self.validation_entries_ = hidden_entries  # (for diagnostics; not saved)
        self.auto_rmse_ = np.full(d, np.nan)
        for j, (p, t) in hidden_entries.items():
            used = np.flatnonzero(self.weights_[j])
            self.auto_rmse_[j] = np.sqrt(((p[:, used] @ self.weights_[j, used] - t) ** 2).mean())
        self.low_, self.high_ = self._observed_range(x, mask)
        if self.refitted_:
            self.members_ = [self._fit_member(spec, x, mask) if self.weights_[:, m].any() else None for m, spec in enumerate(self.members_spec_)]
        else:  # the last round's members (fitted without its hidden entries); a member pruned before it has weight 0
            self.members_ = [round_members.get(m) if self.weights_[:, m].any() else None for m in range(n_members)]

    def _solve_weights(self, hidden_entries, members, strengths):
        """([d, pool] weights, zero outside `members`; the shrinkage strength chosen) on the hidden entries."""
        d, n_members = self.n_features_, len(self.members_spec_)
        column_weights, pooled, strength = shrunk_column_weights({j: (p[:, members], t) for j, (p, t) in hidden_entries.items()}, self.seed, strengths)
        weights = np.zeros((d, n_members))
        for j in range(d):
            weights[j, members] = column_weights[j] if j in column_weights else pooled
        return weights, strength

    def _spare_refits(self, hidden_entries, active, weights, strength):
        """`weights` re-solved without the costliest trusted members the final fit can spare.

        Members are tried in `refit_cost_order` (costliest first, deterministic); one goes
        when, with the weights re-solved without it (same shrinkage `strength`), the RMSE over all hidden
        entries stays within (1 + refit_tolerance) of that of `weights`, and every column stays no worse
        than its best member of `active` on its entries (the guarantee of the module docstring). A member
        that goes is not refitted on the whole table; its label is added to `spared_`. (Sparing members
        after the first round too would save their later rounds, but the guarantee would then hold for
        them on the first round's entries only.)
        """
        columns = {j: Moments.of(p[:, active], t) for j, (p, t) in hidden_entries.items()}
        total = sum(m.n for m in columns.values())

        def squared_error(w):
            return sum(m.n * m.mse(w[j, active]) for j, m in columns.items())

        limit = (1.0 + self.refit_tolerance) ** 2 * squared_error(weights) + 1e-12 * total
        best = {j: float(m.member_mse().min()) for j, m in columns.items()}
        kept = [m for m in active if weights[:, m].any()]
        for m in refit_cost_order([self.members_spec_[k]["name"] for k in kept], kept):
            if len(kept) == 1:
                break
            trial, _ = self._solve_weights(hidden_entries, [k for k in kept if k != m], (strength,))
            if squared_error(trial) <= limit and all(columns[j].mse(trial[j, active]) <= best[j] + 1e-12 for j in columns):
                kept.remove(m)
                weights = trial
                self.spared_.append(self.labels[m])
        return weights

    @staticmethod
    def _hidden_entries(predictions, targets):
        """column -> (predictions [hidden entries, members], their true values), over the rounds so far."""
        return {j: (np.concatenate(predictions[j]), np.concatenate(targets[j])) for j in range(len(predictions)) if predictions[j]}

    def _prune(self, hidden_entries, active):
        """`active` without the members whose loss raises the validation RMSE by at most `prune_tolerance`.

        Backward elimination on the hidden entries. The validation RMSE of a set of members is taken over
        all hidden entries of all columns, each column imputed by its best convex combination of the
        set (so it is the RMSE `auto` would score on them); the limit is (1 + prune_tolerance) times that
        of all of `active`. While some member can go within the limit, the one whose removal costs least
        goes. Deterministic: it depends on the hidden entries only. (A per-column limit prunes almost
        nothing: with 30 columns and a few hundred entries each, every member fits some column's noise.)
        """
        if self.prune_tolerance is None or len(active) < 2:
            return list(active)
        columns = [Moments.of(p[:, active], t) for p, t in hidden_entries.values()]  # over `active`, once
        total = sum(m.n for m in columns)

        def validation_rmse(members):
            subsets = [column.subset([active.index(m) for m in members]) for column in columns]
            squared = sum(sub.n * sub.mse(simplex_weights(sub)) for sub in subsets)
            return float(np.sqrt(squared / total))

        limit = (1.0 + self.prune_tolerance) * validation_rmse(active) + 1e-12  # (+: a perfect fit's limit is not 0)
        kept = list(active)
        while len(kept) > 1:
            costs = {m: validation_rmse([k for k in kept if k != m]) for m in kept}
            cheapest = min(kept, key=lambda m: (costs[m], -m))  # ties: the later member goes
            if costs[cheapest] > limit:
                break
            kept.remove(cheapest)
        return kept

    # --- imputation -----------------------------------------------------------------------------
    def _impute(self, x, mask):
        total = np.zeros(x.shape)
        for m, member in enumerate(self.members_):
            if member is not None:  # None: no column trusts it (not refitted)
                total += self.weights_[:, m] * np.clip(self._member_imputation(member, x, mask), self.low_, self.high_)
        return total

    # --- export ---------------------------------------------------------------------------------
    def exported_members(self):
        """(indices of the members the SavedModel runs, their per-column weights [d, kept]).

        Warns naming the members left out (no TensorFlow imputation); raises if none is left."""
        trusted = [m for m, member in enumerate(self.members_) if member is not None]
        kept = [m for m in trusted if _exportable(self.members_[m])]
        left_out = [self.labels[m] for m in trusted if m not in kept]
        if not kept:
            raise NotImplementedError(f"auto: no pool member can be exported (none of {', '.join(self.labels)} has a TensorFlow imputation)")
        if left_out:
            warnings.warn(f"auto export: pool member(s) {', '.join(left_out)} have no TensorFlow imputation and are left out of the exported pool", stacklevel=2)
        weights = self.weights_[:, kept].copy()
        sums = weights.sum(axis=1)
        for j in np.flatnonzero(sums <= 0):
            errors = self.validation_rmse_[j, kept]
            weights[j, int(np.nanargmin(errors)) if np.isfinite(errors).any() else 0] = 1.0
        weights /= weights.sum(axis=1, keepdims=True)
        used = weights.any(axis=0)
        return [kept[i] for i in np.flatnonzero(used)], weights[:, used]

    def export_variables(self):
        return [v for member in self.members_ if member is not None and not isinstance(member, ClassicalImputer) for v in member.variables]

    def tf_impute(self, x, mask):
        kept, weights = self.exported_members()
        total = tf.zeros_like(x)
        low, high = tf.constant(self.low_, x.dtype), tf.constant(self.high_, x.dtype)
        for i, m in enumerate(kept):
            member = self.members_[m]
            imputed = member.tf_impute(x, mask) if isinstance(member, ClassicalImputer) else member._impute_graph(x, mask)
            total += tf.constant(weights[:, i], x.dtype) * tf.clip_by_value(tf.cast(imputed, x.dtype), low, high)
        return total

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("validation_entries_", None)  # the hidden entries' predictions: diagnostics, not needed to impute
        return state

    # --- the report -----------------------------------------------------------------------------
    def report(self):
        """Per column (index = column number): each member's weight ("weight: name"), its RMSE on the
        hidden validation entries ("rmse: name"), the weighted imputation's ("rmse: auto") and how many
        entries were hidden ("validated entries"), in the model's min-max scaled units. `attrs` holds the
        shrinkage strength used, the number of rounds, the fraction of each column's observed entries
        hidden a round ("hidden_fraction"), each member's rounds (fewer when pruned) and the members
        whose final fit was spared ("spared"), those that sat the fit out for want of rows ("skipped",
        `min_rows`), and whether the members were refitted on the whole table ("refitted")."""
        import pandas as pd

        if not hasattr(self, "weights_"):
            raise RuntimeError("auto: call fit_arrays before report")
        frame = pd.DataFrame(self.weights_, columns=[f"weight: {label}" for label in self.labels])
        for m, label in enumerate(self.labels):
            frame[f"rmse: {label}"] = self.validation_rmse_[:, m]
        frame["rmse: auto"] = self.auto_rmse_
        frame["validated entries"] = self.validated_entries_
        frame.index.name = "column"
        frame.attrs.update(
            shrinkage=self.shrinkage_, rounds=self.rounds_, hidden_fraction=getattr(self, "hidden_fraction_", self.hidden_fraction),  # (models saved before it was recorded: their fixed fraction)
            member_rounds=dict(zip(self.labels, self.member_rounds_.tolist())), spared=list(self.spared_),
            skipped=list(getattr(self, "skipped_", [])), refitted=getattr(self, "refitted_", getattr(self, "refit", True)),  # (older models: no skipping; their refit flag)
        )
        return frame

    def plot_report(self, ax=None, column_names=None):
        """A stacked bar chart of each column's weights; returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        frame = self.report()
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(frame) + 2.0), 3.5))
        bottom = np.zeros(len(frame))
        names = list(column_names) if column_names is not None else [str(i) for i in frame.index]
        for label in self.labels:
            heights = frame[f"weight: {label}"].to_numpy()
            ax.bar(names, heights, bottom=bottom, label=label)
            bottom += heights
        ax.set_ylabel("weight")
        ax.set_ylim(0, 1)
        ax.legend(fontsize="small", ncol=2)
        ax.tick_params(axis="x", labelrotation=90)
        ax.figure.tight_layout()
        return ax.figure


def _exportable(member):
    """Whether the fitted member has a TensorFlow imputation (a classical one's `exportable()` is asked of
    the instance: MICE with ``sample_posterior=True`` has none); deep imputers always do."""
    return member.exportable() if isinstance(member, ClassicalImputer) else True
