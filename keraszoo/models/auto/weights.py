"""Convex combinations fitted by least squares: the per-column weights of the `auto` imputer."""
import numpy as np
from scipy.optimize import minimize

TINY_WEIGHT = 1e-6


def simplex_least_squares(predictions, target):
    """The weights w (w >= 0, sum 1) that minimise ``mean((predictions @ w - target)**2)``.

    `predictions` [n, J] (one column per member), `target` [n]. Solved with SLSQP on the J x J Gram
    matrix, started from the best single member; the result is never worse than that member (each
    vertex of the simplex is a feasible point, and the best one is kept when the solver stops short).
    Ties between members (identical columns) are broken towards the first. Weights below `TINY_WEIGHT`
    are set to 0 (then the others renormalised), so a member nothing needs is not run at all.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    n, members = predictions.shape
    if n == 0:
        raise ValueError("simplex_least_squares needs at least one row")
    errors = ((predictions - target[:, None]) ** 2).mean(axis=0)
    best = int(np.argmin(errors))
    start = np.zeros(members)
    start[best] = 1.0
    if members == 1:
        return start
    gram = predictions.T @ predictions / n
    cross = predictions.T @ target / n
    offset = float(target @ target / n)

    def objective(w):
        return float(w @ gram @ w - 2.0 * cross @ w + offset), 2.0 * (gram @ w - cross)

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
    if ((predictions @ weights - target) ** 2).mean() > errors[best]:
        return start
    return weights
