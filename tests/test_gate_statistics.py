"""The gate knows how many test images it has (issue 13): intervals, paired tests, one-image floor."""

import numpy as np
import pytest

from components.evaluate import gate
from components.evaluate.config import EvaluateConfig

N = 48
LABELS = np.arange(N) % 4


def _answers(wrong: list) -> np.ndarray:
    """One-hot probabilities on the 48-image split, wrong (top-1 off by one class) on the given indices."""
    predicted = LABELS.copy()
    predicted[wrong] = (LABELS[wrong] + 1) % 4
    return np.eye(4, dtype=np.float32)[predicted]


BASELINE = _answers(list(range(6)))  # 42/48 right


def _baseline_check(candidate, **config):
    return gate.baseline_check(EvaluateConfig(**config), {"candidate": candidate, "baseline": BASELINE}, LABELS)


def test_a_candidate_one_image_worse_on_48_is_not_refused():
    check = _baseline_check(_answers(list(range(7))))  # the baseline's 6 mistakes and one more
    assert check.value == pytest.approx(-1 / 48, abs=1e-6)
    assert check.passed, check.reason
    assert check.examples == 48 and check.statistic["model_worse"] == 1 and check.statistic["p_value"] == 0.5
    low, high = check.interval
    assert low < check.value < high and low < 0 < high  # the interval covers "no difference"


def test_a_candidate_one_image_worse_passes_even_the_absolute_rule():
    """max_accuracy_drop_vs_baseline 0.0 is finer than one image of 48: the tolerance becomes 1/48."""
    check = _baseline_check(_answers(list(range(7))), comparison="absolute")
    assert check.passed and ">= -0.02083" in check.threshold


def test_a_clearly_worse_candidate_is_refused():
    check = _baseline_check(_answers(list(range(14))))  # 8 more mistakes, none fixed: 34/48 against 42/48
    assert not check.passed
    assert check.statistic["model_worse"] == 8 and check.statistic["model_better"] == 0
    assert check.statistic["p_value"] == pytest.approx(0.5**8, rel=1e-3) and check.statistic["p_value"] < 0.05
    assert "8 answers worse, 0 better" in check.reason and "McNemar p = 0.003906" in check.reason
    assert check.interval[1] < 0


def test_a_worse_but_not_significant_candidate_passes_the_paired_test_and_fails_the_absolute_rule():
    # 5 images newly wrong, 2 newly right: 3 images (6.25 points) worse, McNemar p = 0.23
    candidate = _answers(list(range(2, 11)))
    paired, absolute = _baseline_check(candidate), _baseline_check(candidate, comparison="absolute")
    assert paired.statistic["model_worse"] == 5 and paired.statistic["model_better"] == 2
    assert paired.passed and paired.statistic["p_value"] > 0.05
    assert not absolute.passed


@pytest.mark.parametrize("comparison", ["paired_test", "absolute"])
def test_int8_one_image_below_float_can_never_fail(comparison):
    candidate = _answers([0])
    int8 = _answers([0, 1])
    (check,) = gate.format_checks(
        EvaluateConfig(comparison=comparison, max_format_accuracy_drop=0.0),
        {"candidate": candidate, "tflite_int8": int8},
        LABELS,
    )
    assert check.passed and check.value == pytest.approx(-1 / 48, abs=1e-6)


def test_value_checks_carry_wilson_intervals_and_exact_binomial_tests():
    candidate = _answers(list(range(8)))  # 40/48
    config = EvaluateConfig(min_accuracy=0.8, min_class_recall=0.5, min_macro_f1=0.5)
    checks = gate.value_checks(config, {"candidate": candidate}, LABELS, ["a", "b", "c", "d"])
    accuracy = checks[0]
    assert accuracy.value == pytest.approx(40 / 48, abs=1e-6) and accuracy.passed and accuracy.examples == 48
    assert accuracy.interval == pytest.approx([0.704222, 0.913045], abs=1e-6)  # Wilson 95%, as scipy/R give
    assert accuracy.statistic["successes"] == 40 and 0 < accuracy.statistic["p_value"] < 1
    recalls = [c for c in checks if c.name == "min_class_recall"]
    assert [c.examples for c in recalls] == [12, 12, 12, 12]
    f1 = checks[-1]
    assert f1.name == "min_macro_f1" and f1.interval[0] <= f1.value <= f1.interval[1]
    assert f1.statistic["resamples"] == 1000
    again = gate.value_checks(config, {"candidate": candidate}, LABELS, ["a", "b", "c", "d"])[-1]
    assert again.interval == f1.interval  # seeded: the same verdict file on a rerun


def test_the_paired_test_is_the_default_and_the_absolute_rule_stays_available():
    assert EvaluateConfig().comparison == "paired_test"
    EvaluateConfig(comparison="absolute").validate()
