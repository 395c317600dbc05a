"""Calibrated probabilities and precision-controlled imputation for categorical outputs.

* Temperature scaling (Guo et al. 2017): one scalar T per output, logits / T, fitted on the validation
  split. Datawig fits T by minimising the expected calibration error (reference-implementations.md,
  A2); ECE is a binned, piecewise-constant function of T, so we minimise the validation negative
  log-likelihood instead (smooth, a proper scoring rule, Guo et al.'s choice) and report the ECE before
  and after.
* `precision_threshold`: Datawig's `predict` leaves a cell empty when its top probability is below the
  threshold, a probability cut that users read as "precision" and then find cells left empty (#144,
  #153, #162). Ours means what it says: for each class, the lowest probability cut-off at which the
  validation predictions of that class reach the requested precision; a cell whose predicted class's
  probability is below that class's cut-off is left missing (and counted). A class that never reaches
  the precision on validation data is never imputed.
"""
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def fit_temperature(logits, labels):
    """The T > 0 minimising the mean negative log-likelihood of softmax(logits / T) at `labels` (ints)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 1.0

    def nll(log_t):
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(probabilities, labels, bins=15):
    """ECE: the gap between confidence and accuracy of the top class, averaged over equal-width bins."""
    probabilities = np.asarray(probabilities)
    if len(probabilities) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(ece)


def probabilities(logits, temperature=1.0):
    return softmax(np.asarray(logits, np.float64) / temperature, axis=1)


def precision_cutoffs(top_probability, predicted, correct, n_classes, precision):
    """Per class, the probability cut-off above which validation predictions reach `precision`.

    For each class c, the validation rows predicted as c are sorted by probability, highest first; the
    cut-off is the lowest probability at which the predictions at or above it have precision >=
    `precision` (the most cells imputed at that precision); inf when no cut-off reaches it (or the class
    was never predicted on validation data). 0 everywhere when `precision` <= 0.
    """
    cutoffs = np.zeros(n_classes)
    if precision <= 0:
        return cutoffs
    top_probability, predicted, correct = map(np.asarray, (top_probability, predicted, correct))
    for c in range(n_classes):
        rows = predicted == c
        if not rows.any():
            cutoffs[c] = np.inf
            continue
        order = np.argsort(-top_probability[rows], kind="stable")
        p = top_probability[rows][order]
        hits = np.cumsum(correct[rows][order])
        running_precision = hits / np.arange(1, len(p) + 1)
        # a cut-off must include every row of equal probability: only the last index of each run of ties
        last_of_tie = np.r_[p[1:] != p[:-1], True]
        ok = np.flatnonzero((running_precision >= precision) & last_of_tie)
        cutoffs[c] = p[ok[-1]] if len(ok) else np.inf
    return cutoffs


def per_class_report(predicted, labels, classes):
    """DataFrame of precision, recall and support (true count) per class on validation data."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    rows = []
    for c, name in enumerate(classes):
        tp = int(np.sum((predicted == c) & (labels == c)))
        n_predicted, support = int(np.sum(predicted == c)), int(np.sum(labels == c))
        rows.append(
            {
                "class": name,
                "precision": tp / n_predicted if n_predicted else np.nan,
                "recall": tp / support if support else np.nan,
                "support": support,
                "predicted": n_predicted,
            }
        )
    return pd.DataFrame(rows)
