"""Transferability estimates: how well a source model is expected to transfer to a labelled target task,
computed from one forward pass over the target data (no training). Both are short formulas with no
maintained package that ships them alone, so they are written here and tested against hand
computations (tests/test_continual_units.py).

LEEP (Nguyen et al. 2020, "LEEP: a new measure to evaluate transferability of learned
representations"): from the source model's label distribution theta(x) over its own labels z,
P(y, z) = mean over the examples of label y of theta(x)_z, P(y | z) = P(y, z) / P(z), and
LEEP = mean_i log sum_z P(y_i | z) theta(x_i)_z (a log-likelihood: <= 0, higher transfers better).

TransRate (Huang et al. 2022, "Frustratingly easy transferability estimation"): the coding rate of the
centred features Z minus the mean coding rate of each class's features,
R(Z) = 1/2 logdet(I + Z^T Z / (n eps)), TrR = R(Z) - (1/K) sum_c R(Z_c), as in the authors' code
(which scales by 1/(n eps) rather than the paper's d/(n eps^2), and weighs the classes equally).
"""

from __future__ import annotations

import numpy as np


def leep(probs: np.ndarray, y: np.ndarray, classes: int | None = None) -> float:
    """LEEP of source label probabilities `probs` [n, Z] (rows sum to 1) on target labels `y` [n]."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    k = int(classes if classes is not None else y.max() + 1)
    joint = np.zeros((k, probs.shape[1]))
    np.add.at(joint, y, probs)
    joint /= n
    marginal = joint.sum(0, keepdims=True)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    eep = (probs @ conditional.T)[np.arange(n), y]
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


def coding_rate(Z: np.ndarray, eps: float) -> float:
    n, d = Z.shape
    _, logdet = np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))
    return 0.5 * float(logdet)


def transrate(Z: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    """TransRate of features `Z` [n, d] for labels `y` [n] (higher transfers better)."""
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    Z = Z - Z.mean(0, keepdims=True)
    present = np.unique(y)
    within = sum(coding_rate(Z[y == c], eps) for c in present) / len(present)
    return coding_rate(Z, eps) - within
