"""The gate: every threshold becomes one check with its value, interval, test statistic and verdict.

Checks are plain records so that `blessing.json` can list all of them (passed or not) and any
tool can read why a model was or was not blessed, as TFX's blessing file does not tell.

Why statistics: a test split of 48 images moves accuracy in steps of 2.1 points, so a threshold of
"at most 1 point worse" is finer than the data can resolve, and a candidate one image worse than
the baseline is noise, not a regression. Every check therefore carries the number of test images,
a confidence interval and a test statistic computed on the per-image answers:
- proportions (accuracy, a class's recall): Wilson score interval; exact binomial test against
  the threshold (H1: the true value is above it);
- macro F1: bootstrap percentile interval over images (seeded, so a rerun gives the same bytes);
- a model against a reference on the same images (candidate vs baseline, a TFLite variant vs the
  float SavedModel): McNemar's exact test on the discordant pairs (H1: the model is worse) and a
  Wald interval on the paired accuracy difference.
A drop tolerance is never finer than one test image (max(threshold, 1/n)). With
`comparison: paired_test` (the default) a model fails a comparison only when its drop exceeds the
tolerance AND McNemar finds it significantly worse at `significance`; `comparison: absolute` keeps
the plain rule (fails whenever the drop exceeds the tolerance). Value thresholds compare the point
estimate, as TFX does, with the interval reported beside it.
"""

import dataclasses

import numpy as np
from scipy import stats

from components.evaluate.config import EvaluateConfig
from components.evaluate.tfma_metrics import OVERALL

_BOOTSTRAP_RESAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class Check:
    """One gate check. `value` is what was measured; `threshold` says what was required;
    `interval` is [low, high] at the config's confidence level; `statistic` names the test and its result."""

    name: str
    model: str
    metric: str
    slice: str
    threshold: str
    value: float | None
    passed: bool
    reason: str = ""
    examples: int | None = None
    interval: list | None = None
    statistic: dict | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fmt(value) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def _round(values):
    return [round(float(v), 6) for v in values]


def wilson(successes: int, trials: int, level: float) -> list | None:
    """Wilson score interval of a proportion; None without trials."""
    if not trials:
        return None
    found = stats.binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return _round((found.low, found.high))


def _proportion_check(name, model, metric, slice_name, successes, trials, bound, what, level) -> Check:
    value = successes / trials if trials else None
    passed = value is not None and value >= bound - 1e-12
    reason = "" if passed else f"{what} {_fmt(value)} on slice {slice_name} is below the required {bound:g}"
    statistic = (
        None
        if not trials
        else {
            "test": "exact binomial, H1: true value > threshold",
            "successes": int(successes),
            "trials": int(trials),
            "p_value": round(
                float(stats.binomtest(successes, trials, min(max(bound, 0.0), 1.0), alternative="greater").pvalue), 6
            ),
        }
    )
    return Check(
        name,
        model,
        metric,
        slice_name,
        f">= {bound:g}",
        None if value is None else round(value, 6),
        passed,
        reason,
        trials,
        wilson(successes, trials, level),
        statistic,
    )


def macro_f1(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 of top-1 answers; a class with no examples and no predictions counts 0 (as TFMA's)."""
    scores = []
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (labels == c))
        denominator = np.sum(predicted == c) + np.sum(labels == c)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _macro_f1_check(model, predicted, labels, num_classes, bound, level) -> Check:
    value = macro_f1(predicted, labels, num_classes)
    rng = np.random.default_rng(0)
    n = len(labels)
    resampled = np.array(
        [macro_f1(predicted[i], labels[i], num_classes) for i in rng.integers(0, n, size=(_BOOTSTRAP_RESAMPLES, n))]
    )
    tail = (1 - level) / 2
    passed = value >= bound - 1e-12
    reason = "" if passed else f"macro F1 {_fmt(value)} on slice {OVERALL} is below the required {bound:g}"
    statistic = {
        "test": "bootstrap over images",
        "resamples": _BOOTSTRAP_RESAMPLES,
        "share_below_threshold": round(float(np.mean(resampled < bound)), 6),
    }
    return Check(
        "min_macro_f1",
        model,
        "macro_f1",
        OVERALL,
        f">= {bound:g}",
        round(value, 6),
        passed,
        reason,
        n,
        _round(np.quantile(resampled, [tail, 1 - tail])),
        statistic,
    )


def value_checks(
    config: EvaluateConfig, predictions: dict, labels: np.ndarray, class_names: list, model: str = "candidate"
) -> list:
    """Absolute thresholds on one model's top-1 answers (accuracy; optional per-class recall, macro F1)."""
    predicted = predictions[model].argmax(axis=1)
    correct = predicted == labels
    level = config.confidence_level
    checks = [
        _proportion_check(
            "min_accuracy",
            model,
            "accuracy",
            OVERALL,
            int(correct.sum()),
            len(labels),
            config.min_accuracy,
            "accuracy",
            level,
        )
    ]
    if config.min_class_recall is not None:
        for index, name in enumerate(class_names):
            member = labels == index
            checks.append(
                _proportion_check(
                    "min_class_recall",
                    model,
                    "recall",
                    f"label={name}",
                    int(correct[member].sum()),
                    int(member.sum()),
                    config.min_class_recall,
                    f"recall of class {name}",
                    level,
                )
            )
    if config.min_macro_f1 is not None:
        checks.append(_macro_f1_check(model, predicted, labels, len(class_names), config.min_macro_f1, level))
    return checks


def paired_comparison(model_correct: np.ndarray, reference_correct: np.ndarray, level: float) -> dict:
    """McNemar's exact test (H1: the model is worse) and a Wald interval on the accuracy difference."""
    n = len(model_correct)
    worse = int(np.sum(reference_correct & ~model_correct))  # the reference right, the model wrong
    better = int(np.sum(model_correct & ~reference_correct))
    delta = (better - worse) / n
    z = stats.norm.ppf(1 - (1 - level) / 2)
    se = np.sqrt(max(better + worse - (better - worse) ** 2 / n, 0.0)) / n
    p_value = stats.binomtest(worse, worse + better, 0.5, alternative="greater").pvalue if worse + better else 1.0
    return {
        "delta": round(delta, 6),
        "interval": _round((delta - z * se, delta + z * se)),
        "statistic": {
            "test": "McNemar exact, H1: model worse than reference",
            "model_worse": worse,
            "model_better": better,
            "p_value": round(float(p_value), 6),
        },
    }


def _no_worse(name, model, reference, model_correct, reference_correct, max_drop, config) -> Check:
    n = len(model_correct)
    tolerance = max(max_drop, 1 / n)  # never finer than one test image
    found = paired_comparison(model_correct, reference_correct, config.confidence_level)
    delta, p_value = found["delta"], found["statistic"]["p_value"]
    exceeds = -delta > tolerance + 1e-9
    if config.comparison == "paired_test":
        passed = not (exceeds and p_value < config.significance)
        rule = (
            f"{model} - {reference} >= {-tolerance:.4g} unless not significant (McNemar p >= {config.significance:g})"
        )
    else:
        passed = not exceeds
        rule = f"{model} - {reference} >= {-tolerance:.4g}"
    reason = (
        ""
        if passed
        else (
            f"{model} accuracy is {-delta:.4f} below {reference} on the same {n} images ({found['statistic']['model_worse']} "
            f"answers worse, {found['statistic']['model_better']} better; McNemar p = {p_value:.4g}); at most "
            f"{tolerance:.4g} is allowed"
            + (f" unless p >= {config.significance:g}" if config.comparison == "paired_test" else "")
        )
    )
    return Check(
        name, model, "accuracy", OVERALL, rule, delta, passed, reason, n, found["interval"], found["statistic"]
    )


def _correct(predictions: dict, model: str, labels: np.ndarray) -> np.ndarray:
    return predictions[model].argmax(axis=1) == labels


def baseline_check(config: EvaluateConfig, predictions: dict, labels: np.ndarray) -> Check:
    """The change threshold: candidate against the baseline (the model in serving) on the same images."""
    return _no_worse(
        "max_accuracy_drop_vs_baseline",
        "candidate",
        "baseline",
        _correct(predictions, "candidate", labels),
        _correct(predictions, "baseline", labels),
        config.max_accuracy_drop_vs_baseline,
        config,
    )


def unloadable_baseline_check(config: EvaluateConfig, error: str) -> Check:
    """A baseline that could not be scored: fails the gate unless the config says to go on without it."""
    blocked = config.block_on_unloadable_baseline
    reason = (
        f"the baseline model could not be evaluated ({error}); set evaluate.block_on_unloadable_baseline "
        "to false to judge the candidate on value thresholds alone"
        if blocked
        else f"the baseline model could not be evaluated ({error}); judged on value thresholds alone "
        "because evaluate.block_on_unloadable_baseline is false"
    )
    return Check("baseline_loadable", "baseline", "loadable", OVERALL, "loadable", None, not blocked, reason)


def format_checks(config: EvaluateConfig, predictions: dict, labels: np.ndarray) -> list:
    """Each exported format other than the SavedModel (every model but candidate and baseline)
    against the float SavedModel on the same images."""
    reference = _correct(predictions, "candidate", labels)
    return [
        _no_worse(
            "max_format_accuracy_drop",
            model,
            "candidate",
            _correct(predictions, model, labels),
            reference,
            config.max_format_accuracy_drop,
            config,
        )
        for model in predictions
        if model not in ("candidate", "baseline")
    ]


def coverage_check(config: EvaluateConfig, selective: dict) -> Check:
    """The abstention threshold's coverage on the evaluated split (the share of images answered)."""
    return _proportion_check(
        "min_coverage",
        "candidate",
        "coverage",
        OVERALL,
        selective["accepted"],
        selective["examples"],
        config.min_coverage,
        "coverage at the abstention threshold",
        config.confidence_level,
    )


def serving_skew_check(config, checked: int, differing: list) -> Check:
    """max_serving_skew: the share of original files whose bytes-in answer differs from their record's."""
    rate = len(differing) / checked
    passed = rate <= config.max_serving_skew
    shown = "; ".join(f"{path}: record {a!r}, file {b!r}" for path, a, b in differing[:5])
    reason = (
        ""
        if passed
        else (
            f"{len(differing)} of {checked} test files answer differently sent as files (serving_default) than "
            f"as their ingested records: training/serving skew in the decoding ({shown}"
            f"{'; ...' if len(differing) > 5 else ''}); see docs/evaluation.md"
        )
    )
    return Check(
        "max_serving_skew",
        "candidate",
        "disagreement",
        OVERALL,
        f"<= {config.max_serving_skew:g}",
        round(rate, 6),
        passed,
        reason,
        checked,
    )
