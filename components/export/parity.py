"""The check that must pass before anything is evaluated: Keras, SavedModel and TFLite float32 agree.

A mismatch means the export changed the function (a preprocessing or conversion bug), and every
number computed downstream would describe a different model from the one trained; so it fails
loudly instead of producing a report.
"""

import numpy as np

from components.common.errors import PipelineError


class ParityError(PipelineError):
    """The exported forms of the model disagree (exit code 1: a bug, not a user error)."""


def check(reference: np.ndarray, others: dict, tolerance: float, labels_of_rows: list) -> dict:
    """Compare each of `others` (name -> probabilities) with the Keras `reference`; raise on mismatch."""
    report = {"examples": len(reference), "tolerance": tolerance, "max_abs_diff": {}, "top1_agreement": {}}
    failures = []
    for name, probabilities in others.items():
        diff = float(np.max(np.abs(probabilities - reference)))
        agree = float(np.mean(np.argmax(probabilities, 1) == np.argmax(reference, 1)))
        report["max_abs_diff"][name] = diff
        report["top1_agreement"][name] = agree
        if not diff <= tolerance:
            worst = int(np.argmax(np.max(np.abs(probabilities - reference), axis=1)))
            failures.append(f"{name} differs from Keras by {diff:.3g} (> {tolerance:g}) on {labels_of_rows[worst]}")
    report["passed"] = not failures
    if failures:
        raise ParityError(
            "export parity check failed: "
            + "; ".join(failures)
            + ". The exported model does not compute what was trained; nothing was evaluated."
        )
    return report
