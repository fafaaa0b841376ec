"""How far a classifier's probabilities can be trusted: calibration error, temperature, abstention.

Pure NumPy/SciPy on [n, classes] probability (or logit) arrays, so the export step (fitting on the
val split) and the evaluation (measuring on the test split) use one definition of each number.

- NLL: mean negative log-likelihood of the true class.
- ECE: expected calibration error of the top-1 confidence over `BINS` equal-width bins
  (Guo et al. 2017, "On Calibration of Modern Neural Networks"), with the bins themselves kept
  for a reliability diagram.
- Temperature scaling (same paper): one scalar T > 0, p = softmax(logits / T), chosen to minimise
  the NLL on held-out data; it never changes which class is on top, only how sure the model says
  it is.
- Abstention: a threshold on the top-1 (calibrated) probability below which the answer is
  "unknown", chosen on held-out data for a target accuracy of the accepted answers (selective
  precision) or a target coverage.
"""

import math

import numpy as np
from scipy import optimize, special

BINS = 15
# The fewest held-out images a temperature, an abstention threshold or early stopping is fitted on.
# Measured (benchmarks/calibration_sample.py, calibration_sample_results.json): a temperature fitted
# on n random val images against none, 300 draws per n, the test NLL of each. The rule, fixed before
# the run: the smallest n at which at most 5% of draws end worse than no calibration on every model
# measured. Real photos (sign-language digits, 210 val images): 70% of draws worse at n = 5 (57% at
# the search's bound T = 0.05), 13% at 30, 3% at 50. 20,000 generated photos (2,000 val images, a
# weaker model whose calibration gains little): 17% at 30, 8% at 75, 5% at 100.
MIN_CALIBRATION_EXAMPLES = 100


def too_few(examples: int, fitted: str, instead: str) -> str:
    """Why `examples` held-out images are too few to fit `fitted` on, and what is done `instead` ("" when enough)."""
    if examples >= MIN_CALIBRATION_EXAMPLES:
        return ""
    return (
        f"only {examples} val images, fewer than the {MIN_CALIBRATION_EXAMPLES} that fitting {fitted} needs: "
        f"{instead}; add images or raise the val fraction in ingest.splits"
    )


# The search interval for T: sharper than 1/20 or flatter than 20x is no calibration but a broken model.
_LOG_T_BOUNDS = (math.log(0.05), math.log(20.0))


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (probabilities clipped at 1e-12)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list:
    """Per equal-width confidence bin: {low, high, count, confidence (mean), accuracy}; empty bins kept."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 (impossible for a softmax) goes to bin 0
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    rows = []
    for i in range(bins):
        member = index == i
        count = int(member.sum())
        rows.append(
            {
                "low": i / bins,
                "high": (i + 1) / bins,
                "count": count,
                "confidence": float(confidence[member].mean()) if count else None,
                "accuracy": float(correct[member].mean()) if count else None,
            }
        )
    return rows


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| weighted by the bin's share."""
    n = len(labels)
    return float(
        sum(
            row["count"] / n * abs(row["accuracy"] - row["confidence"])
            for row in reliability(probabilities, labels, bins)
            if row["count"]
        )
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising NLL(softmax(logits / T)) on (`logits`, `labels`): a bounded 1-D search over log T."""
    logits = logits.astype(np.float64)
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        scaled = logits / math.exp(log_t)
        return float(np.mean(special.logsumexp(scaled, axis=1) - scaled[rows, labels]))

    found = optimize.minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(math.exp(found.x))


def uncalibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities before a temperature T was folded in: softmax(T * log p) = softmax(logits).

    log p equals the logits up to a per-row constant, which softmax ignores, so this is exact up to
    float rounding (a probability that underflowed to 0 stays 0).
    """
    return special.softmax(temperature * np.log(np.clip(probabilities.astype(np.float64), 1e-30, 1.0)), axis=1)


def fit_threshold(
    probabilities: np.ndarray, labels: np.ndarray, *, precision: float | None = None, coverage: float | None = None
) -> dict:
    """The abstention threshold on the top-1 probability for a target `precision` or `coverage`.

    precision: the lowest threshold whose accepted answers are at least this accurate (the most
    coverage at that accuracy); when no threshold reaches it, the threshold accepts nothing
    (`reached` False) and the model answers "unknown" to everything until it gets better.
    coverage: the threshold accepting this fraction of the images (the most confident ones).
    Returns {threshold, reached, coverage, accuracy (of the accepted answers; None if none), examples}.
    """
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    sorted_confidence = confidence[order]
    correct = (probabilities.argmax(axis=1) == labels)[order]
    n = len(labels)
    reached = True
    if precision is not None:
        accepted_accuracy = np.cumsum(correct) / np.arange(1, n + 1)
        feasible = np.nonzero(accepted_accuracy >= precision - 1e-12)[0]
        reached = bool(len(feasible))
        threshold = float(sorted_confidence[feasible[-1]]) if reached else float(np.nextafter(1.0, 2.0))
    else:
        k = max(1, math.ceil(coverage * n))
        threshold = float(sorted_confidence[k - 1])
    return {
        "threshold": threshold,
        "reached": reached,
        **selective(probabilities, labels, probabilities.max(axis=1) >= threshold),
    }


def selective(probabilities: np.ndarray, labels: np.ndarray, accepted: np.ndarray) -> dict:
    """Coverage and accuracy of the accepted answers (`accepted`: bool per image)."""
    correct = probabilities.argmax(axis=1) == labels
    count = int(accepted.sum())
    return {
        "coverage": count / len(labels),
        "accepted": count,
        "examples": len(labels),
        "accuracy": float(correct[accepted].mean()) if count else None,
    }


def coverage_curve(probabilities: np.ndarray, labels: np.ndarray, points: int = 50) -> list:
    """Accuracy of the accepted answers against coverage (most confident first), at `points` coverages."""
    order = np.argsort(-probabilities.max(axis=1), kind="stable")
    correct = (probabilities.argmax(axis=1) == labels)[order]
    n = len(labels)
    ks = sorted({max(1, round(n * i / points)) for i in range(1, points + 1)})
    running = np.cumsum(correct)
    return [{"coverage": k / n, "accuracy": float(running[k - 1] / k)} for k in ks]
