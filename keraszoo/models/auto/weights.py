"""Convex combinations fitted by least squares: the per-column weights of the `auto` imputer.

`simplex_least_squares` fits one column's weights on its hidden entries alone. `shrunk_column_weights`
fits every column at once, each column's squared error plus `strength` pseudo-entries that follow all
columns' entries pooled, with the strength chosen by two-fold cross-validation on the entries.
"""
import numpy as np
from scipy.optimize import minimize

TINY_WEIGHT = 1e-6
#: pseudo-entries of the pooled columns added to a column's own (0: no shrinkage; 1e9: the pooled weights)
STRENGTHS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 1e9)


class Moments:
    """A least-squares problem's sufficient statistics: Gram matrix, cross products and target square,
    each a mean over `n` entries, so mean((P @ w - t)**2) = w G w - 2 c w + o."""

    def __init__(self, gram, cross, offset, n):
        self.gram, self.cross, self.offset, self.n = gram, cross, float(offset), int(n)

    @classmethod
    def of(cls, predictions, target):
        predictions = np.asarray(predictions, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        n = target.size
        return cls(predictions.T @ predictions / n, predictions.T @ target / n, target @ target / n, n)

    def mse(self, weights):
        return max(0.0, float(weights @ self.gram @ weights - 2.0 * self.cross @ weights + self.offset))

    def member_mse(self):
        return np.maximum(0.0, np.diag(self.gram) - 2.0 * self.cross + self.offset)

    def subset(self, members):
        """The same problem restricted to the members (columns of the predictions) `members`."""
        members = np.asarray(members)
        return Moments(self.gram[np.ix_(members, members)], self.cross[members], self.offset, self.n)

    def blend(self, other, strength):
        """Own entries plus `strength` pseudo-entries distributed as `other`'s."""
        own = self.n / (self.n + strength)
        return Moments(
            own * self.gram + (1 - own) * other.gram,
            own * self.cross + (1 - own) * other.cross,
            own * self.offset + (1 - own) * other.offset,
            self.n,
        )


def simplex_least_squares(predictions, target):
    """The weights w (w >= 0, sum 1) that minimise ``mean((predictions @ w - target)**2)``.

    `predictions` [n, J] (one column per member), `target` [n]. Solved with SLSQP on the J x J Gram
    matrix, started from the best single member; the result is never worse than that member (each
    vertex of the simplex is a feasible point, and the best one is kept when the solver stops short).
    Ties between members (identical columns) are broken towards the first. Weights below `TINY_WEIGHT`
    are set to 0 (then the others renormalised), so a member nothing needs is not run at all.
    """
    if np.asarray(target).size == 0:
        raise ValueError("simplex_least_squares needs at least one row")
    return simplex_weights(Moments.of(predictions, target))


def simplex_weights(moments):
    """`simplex_least_squares` on a problem's `Moments`."""
    errors = moments.member_mse()
    members = errors.size
    best = int(np.argmin(errors))
    start = np.zeros(members)
    start[best] = 1.0
    if members == 1:
        return start

    def objective(w):
        return moments.mse(w), 2.0 * (moments.gram @ w - moments.cross)

    found = minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * members,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-12, "maxiter": 200},
    )
    weights = np.where(found.x > TINY_WEIGHT, found.x, 0.0)  # the solver's residues (1e-18) are no weight
    if not np.isfinite(weights).all() or weights.sum() <= 0:
        return start
    weights /= weights.sum()
    if moments.mse(weights) > errors[best]:
        return start
    return weights


def no_worse_than_best_member(weights, moments):
    """`weights` moved towards the column's own least-squares weights just far enough that its error
    on the column's entries is at most the best single member's (unchanged when it already is)."""
    best = float(moments.member_mse().min())
    if moments.mse(weights) <= best:
        return weights
    own = simplex_weights(moments)  # at most `best`, so some point of the segment is
    low, high = 0.0, 1.0  # bisection on the share of `own`: the error is convex along the segment
    for _ in range(60):
        middle = (low + high) / 2
        if moments.mse((1 - middle) * weights + middle * own) <= best:
            high = middle
        else:
            low = middle
    mixed = (1 - high) * weights + high * own
    mixed = np.where(mixed > TINY_WEIGHT, mixed, 0.0)
    mixed /= mixed.sum()
    return mixed if moments.mse(mixed) <= best else own  # (dropping the residues may cost a hair)


def shrunk_column_weights(columns, seed=0, strengths=STRENGTHS):
    """Per-column weights that borrow strength from all columns: (weights {column: [J]}, pooled
    weights [J], the strength chosen).

    `columns` maps a column to its hidden entries (predictions [n_j, J], true values [n_j]). Column j's
    weights minimise its own mean squared error blended with `strength` pseudo-entries distributed as
    all columns' entries pooled (`Moments.blend`): a column with few entries leans on the pooled
    weights, one with many on its own. The strength is the one of `strengths` with the lowest squared
    error summed over all entries in two-fold cross-validation (each column's entries split at random
    in two halves, fitted on one and scored on the other, both ways); 0 is plain per-column least
    squares. Each column's weights are then moved back towards its own least squares just far enough
    to be no worse than its best single member on its entries (`no_worse_than_best_member`).
    """
    own = {j: Moments.of(p, t) for j, (p, t) in columns.items()}
    pooled = pooled_moments(own.values())
    strength = strengths[0] if len(strengths) == 1 else _cross_validated_strength(columns, seed, strengths)
    weights = {j: no_worse_than_best_member(simplex_weights(moments.blend(pooled, strength)), moments) for j, moments in own.items()}
    return weights, simplex_weights(pooled), strength


def _cross_validated_strength(columns, seed, strengths):
    """The strength of `strengths` with the lowest two-fold cross-validated squared error (see above)."""
    rng = np.random.default_rng(seed)
    halves = {j: rng.permutation(t.size) % 2 == 0 for j, (_, t) in columns.items()}
    folds = []
    for fold in (True, False):
        fit = {j: Moments.of(p[halves[j] == fold], t[halves[j] == fold]) for j, (p, t) in columns.items() if (halves[j] == fold).any()}
        score = {j: Moments.of(p[halves[j] != fold], t[halves[j] != fold]) for j, (p, t) in columns.items() if (halves[j] != fold).any()}
        folds.append((fit, score, pooled_moments(fit.values())))
    losses = []
    pooled_weights = [simplex_weights(pooled) for _, _, pooled in folds]  # (for columns a fold does not fit)
    for strength in strengths:
        loss = 0.0
        for (fit, score, pooled), fold_pooled_weights in zip(folds, pooled_weights):
            for j, moments in score.items():
                weights = simplex_weights(fit[j].blend(pooled, strength)) if j in fit else fold_pooled_weights
                loss += moments.n * moments.mse(weights)
        losses.append(loss)
    return strengths[int(np.argmin(losses))]  # ties: the weaker shrinkage (listed first)


def pooled_moments(parts):
    """The `Moments` of several problems' entries taken together."""
    parts = list(parts)
    n = sum(m.n for m in parts)
    return Moments(
        sum(m.gram * m.n for m in parts) / n,
        sum(m.cross * m.n for m in parts) / n,
        sum(m.offset * m.n for m in parts) / n,
        n,
    )
