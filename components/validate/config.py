"""What data validation checks and how strictly; validated once, like every component config."""

import dataclasses

from components.common.errors import UsageError

SEVERITIES = ("warning", "error")


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """Thresholds of the data-validation checks (each anomaly code is documented in docs/data.md).

    min_examples_per_class: a class with fewer kept images is an error (`class_below_minimum`).
    max_rejected_fraction: rejected / (kept + rejected), duplicates not counted (they are not
        broken files), above this is an error (`rejected_fraction_high`: a broken upload).
    missing_split_severity: a class with no image in a split (`class_missing_from_split`).
    max_balance_change: the largest change of any class's share of the kept images versus the
        previous ingest (TFDV's L-infinity distance) above this is `class_balance_changed`.
    change_severity: severity of `class_set_changed` and `class_balance_changed`.
    max_accuracy_interval: the test split is too small (`test_split_too_small`, a warning) when the
        95% interval on an accuracy near 50% (the widest case) is wider than +/- this: the gate's
        checks (components/evaluate/gate.py) cannot tell apart models closer than that.
    warn_small_val_split: warn (`val_split_too_small`) when the val split holds fewer images than the
        measured minimum below which the export fits no temperature or abstention threshold and the
        trainer does not early-stop (components.common.confidence.MIN_CALIBRATION_EXAMPLES); false
        silences the warning, not those decisions.
    """

    min_examples_per_class: int = 10
    max_rejected_fraction: float = 0.1
    missing_split_severity: str = "error"
    max_balance_change: float = 0.1
    change_severity: str = "warning"
    max_accuracy_interval: float = 0.1
    warn_small_val_split: bool = True

    def validate(self) -> None:
        """Raise `UsageError` naming the first bad field."""
        if (
            isinstance(self.min_examples_per_class, bool)
            or not isinstance(self.min_examples_per_class, int)
            or self.min_examples_per_class < 1
        ):
            raise UsageError(
                f"validate.min_examples_per_class={self.min_examples_per_class!r}: must be an integer >= 1"
            )
        for field in ("max_rejected_fraction", "max_balance_change", "max_accuracy_interval"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise UsageError(f"validate.{field}={value!r}: must be a number in [0, 1]")
        if not isinstance(self.warn_small_val_split, bool):
            raise UsageError(f"validate.warn_small_val_split={self.warn_small_val_split!r}: must be true or false")
        for field in ("missing_split_severity", "change_severity"):
            value = getattr(self, field)
            if value not in SEVERITIES:
                raise UsageError(f"validate.{field}={value!r}: must be one of {list(SEVERITIES)}")
