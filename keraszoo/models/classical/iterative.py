"""Chained-equation imputers built on scikit-learn's IterativeImputer: each column in turn is regressed
on all the others (missing ones filled by the current imputation), starting from column means."""
import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
from sklearn.impute import IterativeImputer
from sklearn.linear_model import BayesianRidge

from keraszoo.models.classical.base import ClassicalImputer
from keraszoo.registry import register_model


class _IterativeImputerWrapper(ClassicalImputer):
    """Fits an IterativeImputer on the training rows; `_impute` replays its fitted regressions on new rows."""

    def _make_imputer(self, mask):
        raise NotImplementedError

    def _fit(self, x, mask):
        self.imputer_ = self._make_imputer(mask)
        self.imputer_.fit(np.where(mask == 1, x, np.nan))

    def _impute(self, x, mask):
        return self.imputer_.transform(np.where(mask == 1, x, np.nan))


def _check_positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


@register_model("mice")
class MICEImputer(_IterativeImputerWrapper):
    """MICE-style chained equations (van Buuren & Groothuis-Oudshoorn 2011) with Bayesian ridge regressions.

    ``IterativeImputer(BayesianRidge(), max_iter, tol, sample_posterior, random_state)``. With
    `sample_posterior=False` (default) it is a single deterministic imputation by the regressions'
    posterior means, not multiple imputation; with True each imputation is a draw seeded by `random_state`.
    """

    def __init__(self, max_iter=10, sample_posterior=False, random_state=0, tol=1e-3):
        super().__init__()
        self.max_iter = _check_positive_int(max_iter, "mice: max_iter")
        self.sample_posterior = bool(sample_posterior)
        self.random_state = int(random_state)
        self.tol = float(tol)

    def get_config(self):
        return {
            "max_iter": self.max_iter,
            "sample_posterior": self.sample_posterior,
            "random_state": self.random_state,
            "tol": self.tol,
        }

    def _make_imputer(self, mask):
        return IterativeImputer(
            estimator=BayesianRidge(),
            max_iter=self.max_iter,
            tol=self.tol,
            sample_posterior=self.sample_posterior,
            random_state=self.random_state,
        )

    def _impute(self, x, mask):
        if self.sample_posterior:
            # IterativeImputer draws from one generator that advances with every call; reseed so the same
            # input always gets the same draw
            self.imputer_.random_state_ = np.random.RandomState(self.random_state)
        return super()._impute(x, mask)


@register_model("missforest")
class MissForestImputer(_IterativeImputerWrapper):
    """MissForest (Stekhoven & Bühlmann 2012): chained equations with random-forest regressions.

    ``IterativeImputer(RandomForestRegressor(...), max_iter, initial_strategy="mean",
    imputation_order="ascending")``: columns in order of increasing missingness, mean start, like the
    original. Where it differs, for speed (the original on Credit, 30000 x 23, takes far too long):

    * `n_estimators=30` trees instead of 100;
    * `max_iter=5` sweeps instead of up to 10, and sklearn's stopping rule (largest change of an
      imputed value below 1e-3 times the data's range) instead of stopping as soon as the relative
      change of the imputed matrix increases (and keeping the previous iterate);
    * each tree grows on a bootstrap sample of at most `max_samples=6000` rows (the original uses all
      n rows); this caps the cost of a sweep, and of the stored forests, on large data and changes
      nothing on data with fewer than 6000 rows;
    * `max_features="sqrt"` and `min_samples_leaf=5` are the original's mtry = floor(sqrt(p)) and
      randomForest's regression nodesize = 5; the leaf size also keeps the stored forests (one per
      column per sweep, all replayed on new rows) to a few hundred MB on Credit instead of gigabytes.

    With these defaults fit + impute on 30000 x 23 with 20% missing takes a few minutes on 2 cores.
    The result is deterministic for a given `random_state` whatever `n_jobs`.
    """

    def __init__(
        self,
        n_estimators=30,
        max_iter=5,
        max_depth=None,
        max_features="sqrt",
        max_samples=6000,
        min_samples_leaf=5,
        random_state=0,
        n_jobs=-1,
    ):
        super().__init__()
        self.n_estimators = _check_positive_int(n_estimators, "missforest: n_estimators")
        self.max_iter = _check_positive_int(max_iter, "missforest: max_iter")
        self.max_depth = None if max_depth is None else _check_positive_int(max_depth, "missforest: max_depth")
        self.max_features = max_features
        self.max_samples = None if max_samples is None else _check_positive_int(max_samples, "missforest: max_samples")
        self.min_samples_leaf = _check_positive_int(min_samples_leaf, "missforest: min_samples_leaf")
        self.random_state = int(random_state)
        self.n_jobs = n_jobs

    def get_config(self):
        return {
            "n_estimators": self.n_estimators,
            "max_iter": self.max_iter,
            "max_depth": self.max_depth,
            "max_features": self.max_features,
            "max_samples": self.max_samples,
            "min_samples_leaf": self.min_samples_leaf,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }

    def _make_imputer(self, mask):
        # one forest setting serves every column, so cap by the best-observed column's row count
        n_rows = int(mask.sum(axis=0).max())
        fraction = None
        if self.max_samples is not None and self.max_samples < n_rows:
            fraction = self.max_samples / n_rows
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            max_features=self.max_features,
            max_samples=fraction,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        return IterativeImputer(
            estimator=forest,
            max_iter=self.max_iter,
            initial_strategy="mean",
            imputation_order="ascending",
            random_state=self.random_state,
        )
