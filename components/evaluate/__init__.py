"""Evaluate: TFMA metrics of the candidate, the baseline and each TFLite variant; the blessing gate."""

from components.common.lazy import lazy_attributes
from components.evaluate.config import EvaluateConfig

__all__ = ["BLESSED", "NOT_BLESSED", "EvaluateConfig", "EvaluateResult", "run"]
__getattr__ = lazy_attributes(
    __name__, {name: "evaluator" for name in ("BLESSED", "NOT_BLESSED", "EvaluateResult", "run")}
)
