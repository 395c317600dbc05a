"""Hyper-parameter search for the tabular imputers with keras-tuner, bounded by a time budget.

Datawig's `fit_hpo` runs a random search over a nested dict of candidates for up to 96 hours by
default (reference-implementations.md, A2). Ours is keras-tuner's random search (`RandomSearchOracle`)
over encoder sizes, the trunk and the learning rate, selecting by the imputer's validation loss (the
early-stopping loss: cross-entropy for categorical outputs, squared error of the z-scored value for
numeric ones), and it stops starting trials once `time_budget_seconds` has passed; a trial running at
that moment stops its training at the end of its current epoch. Every trial trains on the same
training rows and is scored on the same validation rows (the imputer's seeded split, or `test_df`).
"""
import tempfile
import time

import keras
import keras_tuner
import pandas as pd

#: the default search space: {parameter: candidates}; `learning_rate` goes to `fit`, the rest to the imputer.
DEFAULT_SPACE = {
    "hidden_units": [[32], [100], [256], [100, 100]],
    "embedding_dim": [5, 10, 20],
    "num_hash_buckets": [2**12, 2**15, 2**18],
    "dropout": [0.0, 0.2],
    "learning_rate": [1e-3, 4e-3, 1e-2],
}
FIT_PARAMETERS = ("learning_rate",)


class _BudgetOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search that starts no trial once the deadline has passed."""

    def __init__(self, deadline, **kwargs):
        super().__init__(**kwargs)
        self.deadline = deadline

    def populate_space(self, trial_id):
        if time.monotonic() >= self.deadline:
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)


class _StopAtDeadline(keras.callbacks.Callback):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() >= self.deadline:
            self.model.stop_training = True


class _ImputerTuner(keras_tuner.Tuner):
    """Each trial: a fresh imputer from `make_imputer(params)`, fitted; its score the best validation loss."""

    def __init__(self, make_imputer, space, deadline, fit_args, **kwargs):
        super().__init__(**kwargs)
        self.make_imputer, self.space, self.deadline, self.fit_args = make_imputer, space, deadline, fit_args
        self.results, self.imputers = [], {}

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        # keras-tuner's Choice takes scalars: list-valued candidates are chosen by their index
        params = {}
        for name, candidates in self.space.items():
            if any(isinstance(c, (list, tuple)) for c in candidates):
                params[name] = candidates[hp.Choice(name, list(range(len(candidates))))]
            else:
                params[name] = hp.Choice(name, list(candidates))
        fit_params = {**self.fit_args["fit_params"], **{k: v for k, v in params.items() if k in FIT_PARAMETERS}}
        imputer = self.make_imputer({k: v for k, v in params.items() if k not in FIT_PARAMETERS})
        start = time.monotonic()
        callbacks = [*fit_params.pop("callbacks", []), _StopAtDeadline(self.deadline)]
        imputer.fit(self.fit_args["train_df"], self.fit_args["test_df"], callbacks=callbacks, **fit_params)
        history = imputer.history.history
        score = min(history["val_loss"]) if history.get("val_loss") else min(history["loss"])
        self.results.append({"trial": trial.trial_id, **params, "val_loss": float(score), "epochs": len(imputer.history.epoch), "seconds": time.monotonic() - start})
        self.imputers[trial.trial_id] = imputer
        return float(score)


def search(make_imputer, train_df, test_df=None, *, space=None, max_trials=10, time_budget_seconds=600, seed=0, directory=None, **fit_params):
    """(best fitted imputer, DataFrame of every trial's parameters, validation loss, epochs and seconds).

    `make_imputer(params)` returns an unfitted imputer built with `params` (a dict drawn from `space`,
    default `DEFAULT_SPACE`; `learning_rate` is passed to `fit` instead). keras-tuner's files go to
    `directory` (default: a temporary folder, removed afterwards).
    """
    space = dict(DEFAULT_SPACE if space is None else space)
    for name, candidates in space.items():
        if not isinstance(candidates, (list, tuple)) or not candidates:
            raise ValueError(f"search space entry {name!r} must be a non-empty list of candidates, got {candidates!r}")
    if time_budget_seconds <= 0:
        raise ValueError(f"time_budget_seconds must be positive, got {time_budget_seconds!r}")
    deadline = time.monotonic() + float(time_budget_seconds)
    with tempfile.TemporaryDirectory() as scratch:
        tuner = _ImputerTuner(
            make_imputer,
            space,
            deadline,
            {"train_df": train_df, "test_df": test_df, "fit_params": fit_params},
            oracle=_BudgetOracle(deadline, max_trials=int(max_trials), seed=int(seed)),  # a returned float is minimised
            directory=directory or scratch,
            project_name="keraszoo_tabular",
            overwrite=True,
        )
        tuner.search()
        if not tuner.results:
            raise RuntimeError("the time budget ran out before the first trial started")
        results = pd.DataFrame(tuner.results).sort_values("val_loss", kind="stable").reset_index(drop=True)
        best = tuner.imputers[results.loc[0, "trial"]]
    return best, results

