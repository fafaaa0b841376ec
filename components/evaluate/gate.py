"""The gate: every threshold becomes one check with its value, verdict and, if failed, a reason.

Checks are plain records so that `blessing.json` can list all of them (passed or not) and any
tool can read why a model was or was not blessed, as TFX's blessing file does not tell.
"""
import dataclasses

from components.evaluate.config import EvaluateConfig
from components.evaluate.tfma_metrics import OVERALL


@dataclasses.dataclass(frozen=True)
class Check:
    """One gate check. `value` is what was measured; `threshold` says what was required."""

    name: str
    model: str
    metric: str
    slice: str
    threshold: str
    value: float | None
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _at_least(name, model, metric, slice_name, value, bound, what) -> Check:
    passed = value is not None and value >= bound
    reason = "" if passed else (f"{what} {_fmt(value)} on slice {slice_name} is below the required {bound:g}")
    return Check(name, model, metric, slice_name, f">= {bound:g}", value, passed, reason)


def _fmt(value) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def value_checks(config: EvaluateConfig, metrics: dict, class_names: list, model: str = "candidate") -> list:
    """Absolute thresholds on one model's metrics (overall accuracy; optional per-class recall, macro F1)."""
    overall = metrics[model][OVERALL]
    checks = [_at_least("min_accuracy", model, "accuracy", OVERALL, overall.get("accuracy"),
                        config.min_accuracy, "accuracy")]
    if config.min_class_recall is not None:
        for name in class_names:
            checks.append(_at_least("min_class_recall", model, "recall", f"label={name}",
                                    overall.get(f"recall/{name}"), config.min_class_recall, f"recall of class {name}"))
    if config.min_macro_f1 is not None:
        checks.append(_at_least("min_macro_f1", model, "macro_f1", OVERALL, overall.get("macro_f1"),
                                config.min_macro_f1, "macro F1"))
    return checks


def _no_worse(name, model, reference, candidate_acc, reference_acc, max_drop) -> Check:
    delta = None if candidate_acc is None or reference_acc is None else round(candidate_acc - reference_acc, 6)
    passed = delta is not None and delta >= -max_drop - 1e-9
    reason = "" if passed else (
        f"{model} accuracy {_fmt(candidate_acc)} is {_fmt(-delta if delta is not None else None)} below "
        f"{reference} ({_fmt(reference_acc)}); at most {max_drop:g} is allowed")
    return Check(name, model, "accuracy", OVERALL, f"{model} - {reference} >= {-max_drop:g}", delta, passed, reason)


def baseline_check(config: EvaluateConfig, metrics: dict) -> Check:
    """The change threshold: candidate accuracy against the baseline's on the same examples."""
    return _no_worse("max_accuracy_drop_vs_baseline", "candidate", "baseline",
                     metrics["candidate"][OVERALL].get("accuracy"), metrics["baseline"][OVERALL].get("accuracy"),
                     config.max_accuracy_drop_vs_baseline)


def unloadable_baseline_check(config: EvaluateConfig, error: str) -> Check:
    """A baseline that could not be scored: fails the gate unless the config says to go on without it."""
    blocked = config.block_on_unloadable_baseline
    reason = (f"the baseline model could not be evaluated ({error}); set evaluate.block_on_unloadable_baseline "
              "to false to judge the candidate on value thresholds alone" if blocked else
              f"the baseline model could not be evaluated ({error}); judged on value thresholds alone "
              "because evaluate.block_on_unloadable_baseline is false")
    return Check("baseline_loadable", "baseline", "loadable", OVERALL, "loadable", None, not blocked, reason)


def tflite_checks(config: EvaluateConfig, metrics: dict) -> list:
    """Each TFLite variant's accuracy drop against the float SavedModel."""
    float_acc = metrics["candidate"][OVERALL].get("accuracy")
    return [_no_worse("max_tflite_accuracy_drop", model, "candidate", metrics[model][OVERALL].get("accuracy"),
                      float_acc, config.max_tflite_accuracy_drop)
            for model in metrics if model.startswith("tflite_")]
