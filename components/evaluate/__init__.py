"""Evaluate: TFMA metrics of the candidate, the baseline and each TFLite variant; the blessing gate."""
from components.evaluate.config import EvaluateConfig
from components.evaluate.evaluator import BLESSED, NOT_BLESSED, EvaluateResult, run

__all__ = ["BLESSED", "NOT_BLESSED", "EvaluateConfig", "EvaluateResult", "run"]
