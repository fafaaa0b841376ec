"""Data validation: each anomaly, its severity, and the published anomalies.json behind exit 3."""

import json
import os

import pytest

from components.common.errors import EXIT_DATA, DataError, UsageError
from components.common.publish import is_complete
from components.validate import ValidateConfig, run
from pipeline import dag


def ingest_dir(root, per_class, rejected=None, name="ingest"):
    """A directory holding only what validation reads: an ingest stats.json."""
    path = os.path.join(root, name)
    os.makedirs(path)
    kept = sum(sum(s.values()) for s in per_class.values())
    stats = {
        "files": {"kept": kept, "rejected": sum((rejected or {}).values())},
        "per_class_per_split": per_class,
        "rejected_by_reason": rejected or {},
        "labels": sorted(per_class),
    }
    with open(os.path.join(path, "stats.json"), "w") as f:
        json.dump(stats, f)
    return path


def split(n_train, n_val=2, n_test=2):
    return {"train": n_train, "val": n_val, "test": n_test}


HEALTHY = {"cats": split(16), "dogs": split(16)}
# these fixtures hold a few test and val images, which `test_split_too_small` and `val_split_too_small`
# would flag in every test
TINY_TEST_SPLIT_OK = {"max_accuracy_interval": 1.0, "warn_small_val_split": False}


def stopped(result) -> DataError:
    """The error the pipeline ends the run with for this result (None when the data passed)."""
    return None if result.ok else dag.node("validate").failure(result.summary(), result.output_dir)


def anomalies(out):
    with open(os.path.join(out, "anomalies.json")) as f:
        return [(a["severity"], a["code"]) for a in json.load(f)]


def test_healthy_data_publishes_an_empty_anomaly_list(tmp_path):
    out = str(tmp_path / "validate")
    result = run(ValidateConfig(**TINY_TEST_SPLIT_OK), ingest_dir(str(tmp_path), HEALTHY), None, out)
    assert result.anomalies == [] and anomalies(out) == [] and is_complete(out)


@pytest.mark.slow
def test_real_ingest_has_no_anomalies_and_its_drift_is_measured(ingested_sign_digits, tmp_path):
    result = run(ValidateConfig(), str(ingested_sign_digits), None, str(tmp_path / "v"))
    assert result.ok and result.anomalies == []
    stats = json.loads((ingested_sign_digits / "stats.json").read_text())
    dropped = sorted(stats["per_class_per_split"])[0]  # an earlier ingest without one of the classes
    earlier = {name: splits for name, splits in stats["per_class_per_split"].items() if name != dropped}
    drift = run(
        ValidateConfig(**TINY_TEST_SPLIT_OK, max_balance_change=1.0),
        str(ingested_sign_digits),
        ingest_dir(str(tmp_path), earlier, name="earlier"),
        str(tmp_path / "v2"),
    )
    assert [(a.severity, a.code) for a in drift.anomalies] == [("warning", "class_set_changed")]
    assert f"added [{dropped!r}]" in drift.anomalies[0].message


def test_class_below_minimum_is_an_error_published_before_exit_3(tmp_path):
    out = str(tmp_path / "validate")
    result = run(
        ValidateConfig(**TINY_TEST_SPLIT_OK),
        ingest_dir(str(tmp_path), {"cats": split(16), "dogs": split(4, 1, 1)}),
        None,
        out,
    )
    error = stopped(result)
    assert not result.ok and error.exit_code == EXIT_DATA and is_complete(out)
    assert "'dogs' has 6 usable images" in str(error) and "anomalies.json" in str(error)
    assert anomalies(out) == [("error", "class_below_minimum")]


def test_class_missing_from_a_split_is_an_error_or_a_warning_by_config(tmp_path):
    data = ingest_dir(str(tmp_path), {"cats": split(16), "dogs": split(18, 2, 0)})
    assert "no image in split" in str(
        stopped(run(ValidateConfig(**TINY_TEST_SPLIT_OK), data, None, str(tmp_path / "v1")))
    )
    result = run(
        ValidateConfig(**TINY_TEST_SPLIT_OK, missing_split_severity="warning"), data, None, str(tmp_path / "v2")
    )
    assert result.ok and stopped(result) is None
    assert [(a.severity, a.code) for a in result.anomalies] == [("warning", "class_missing_from_split")]


def test_rejected_fraction_above_threshold_is_an_error_and_duplicates_do_not_count(tmp_path):
    broken = ingest_dir(str(tmp_path), HEALTHY, rejected={"truncated": 5}, name="broken")  # 5 of 45 = 11%
    assert "5 of 45 image files (11.1%)" in str(
        stopped(run(ValidateConfig(**TINY_TEST_SPLIT_OK), broken, None, str(tmp_path / "v1")))
    )
    assert anomalies(str(tmp_path / "v1")) == [("error", "rejected_fraction_high")]
    dupes = ingest_dir(str(tmp_path), HEALTHY, rejected={"duplicate": 30, "truncated": 2}, name="dupes")
    assert run(ValidateConfig(**TINY_TEST_SPLIT_OK), dupes, None, str(tmp_path / "v2")).anomalies == []


def test_class_set_change_is_a_warning_or_an_error_by_config(tmp_path):
    before = ingest_dir(str(tmp_path), HEALTHY, name="before")
    after = ingest_dir(str(tmp_path), {"cats": split(16), "dogs": split(16), "owls": split(16)}, name="after")
    result = run(ValidateConfig(**TINY_TEST_SPLIT_OK, max_balance_change=1.0), after, before, str(tmp_path / "v1"))
    assert [(a.severity, a.code) for a in result.anomalies] == [("warning", "class_set_changed")]
    assert "added ['owls']" in result.anomalies[0].message
    strict = run(
        ValidateConfig(**TINY_TEST_SPLIT_OK, change_severity="error", max_balance_change=1.0),
        after,
        before,
        str(tmp_path / "v2"),
    )
    assert "class_set_changed" in str(stopped(strict))


def test_class_balance_change_beyond_threshold(tmp_path):
    before = ingest_dir(str(tmp_path), HEALTHY, name="before")
    shifted = ingest_dir(str(tmp_path), {"cats": split(16), "dogs": split(36, 5, 5)}, name="shifted")  # 50/50 -> 30/70
    result = run(ValidateConfig(**TINY_TEST_SPLIT_OK), shifted, before, str(tmp_path / "v1"))
    assert [(a.severity, a.code) for a in result.anomalies] == [("warning", "class_balance_changed")]
    assert "went from 50.0% to" in result.anomalies[0].message and "distance 0.197" in result.anomalies[0].message
    assert (
        run(
            ValidateConfig(**TINY_TEST_SPLIT_OK, max_balance_change=0.25), shifted, before, str(tmp_path / "v2")
        ).anomalies
        == []
    )


def test_a_test_split_too_small_to_decide_is_a_warning_saying_how_many_images_are_needed(tmp_path):
    """Issue 13: 48 test images resolve accuracy in steps of 2.1 points, with a +/-14 point interval."""
    small = ingest_dir(str(tmp_path), {"cats": split(100, 20, 24), "dogs": split(100, 20, 24)}, name="small")
    result = run(ValidateConfig(warn_small_val_split=False), small, None, str(tmp_path / "v1"))
    assert result.ok and [(a.severity, a.code) for a in result.anomalies] == [("warning", "test_split_too_small")]
    message = result.anomalies[0].message
    assert "48 images" in message and "2.1 accuracy points" in message and "at least 97 test images" in message
    large = ingest_dir(str(tmp_path), {"cats": split(100, 20, 50), "dogs": split(100, 20, 50)}, name="large")
    assert run(ValidateConfig(warn_small_val_split=False), large, None, str(tmp_path / "v2")).anomalies == []
    strict = run(
        ValidateConfig(max_accuracy_interval=0.05, warn_small_val_split=False), large, None, str(tmp_path / "v3")
    )
    assert "at least 385 test images" in strict.anomalies[0].message


def test_bad_config_and_bad_inputs(tmp_path):
    data = ingest_dir(str(tmp_path), HEALTHY)
    with pytest.raises(UsageError, match="validate.max_rejected_fraction=1.5"):
        run(ValidateConfig(**TINY_TEST_SPLIT_OK, max_rejected_fraction=1.5), data, None, str(tmp_path / "v"))
    with pytest.raises(UsageError, match="change_severity='fatal'"):
        run(ValidateConfig(**TINY_TEST_SPLIT_OK, change_severity="fatal"), data, None, str(tmp_path / "v"))
    with pytest.raises(DataError, match="stats.json not found"):
        run(ValidateConfig(**TINY_TEST_SPLIT_OK), str(tmp_path), None, str(tmp_path / "v"))
    assert not os.path.exists(tmp_path / "v")


def test_a_val_split_too_small_to_calibrate_on_is_a_warning_saying_what_is_left_out(tmp_path):
    """Issue 35: the export fitted a temperature on 9 val images without a word."""
    from components.common.confidence import MIN_CALIBRATION_EXAMPLES

    small = {"cats": split(16, 4), "dogs": split(16, 5)}
    result = run(ValidateConfig(max_accuracy_interval=1.0), ingest_dir(str(tmp_path), small), None, str(tmp_path / "v"))
    assert [(a.severity, a.code) for a in result.anomalies] == [("warning", "val_split_too_small")] and result.ok
    assert f"only 9 val images, fewer than the {MIN_CALIBRATION_EXAMPLES}" in result.anomalies[0].message
    assert "uncalibrated and without abstention" in result.anomalies[0].message
    half = (MIN_CALIBRATION_EXAMPLES + 1) // 2
    enough = {"cats": split(16, half), "dogs": split(16, half)}
    assert (
        run(
            ValidateConfig(max_accuracy_interval=1.0),
            ingest_dir(str(tmp_path), enough, name="i2"),
            None,
            str(tmp_path / "v2"),
        ).anomalies
        == []
    )
