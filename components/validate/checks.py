"""The data-validation checks: pure functions from ingest statistics to anomalies.

Each check reads the ingest's `stats.json` (and the previous ingest's), so validation never
re-reads an image: statistics are what the ingest already counted.
"""

import dataclasses
import math
from typing import Dict, List, Optional

from components.common import confidence
from components.validate.config import ValidateConfig
from schemas import reasons


@dataclasses.dataclass(frozen=True)
class Anomaly:
    severity: str  # "error" or "warning"
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class Code:
    """One anomaly code: its severity ("error", "warning", or the ValidateConfig key that sets it) and
    when it is raised. docs/data.md's table of checks is generated from `CODES` (pipeline/docs.py)."""

    name: str
    severity: str
    when: str

    def anomaly(self, config: ValidateConfig, message: str) -> Anomaly:
        severity = getattr(config, self.severity) if self.severity not in ("error", "warning") else self.severity
        return Anomaly(severity, self.name, message)


CODES = {
    code.name: code
    for code in (
        Code("class_below_minimum", "error", "a class has fewer than `min_examples_per_class` kept images"),
        Code("class_missing_from_split", "missing_split_severity", "a class has no image in some split"),
        Code(
            "class_folder_empty",
            "warning",
            "a class folder holds no image file (it is no class of the model; the user may not expect that)",
        ),
        Code(
            "symlink_loop",
            "warning",
            "a symlinked folder points back to one of its own parents: not followed, what it reaches is read once",
        ),
        Code(
            "rejected_fraction_high",
            "error",
            "rejected / (kept + rejected) above `max_rejected_fraction`; duplicates do not count (a broken upload does)",
        ),
        Code("class_set_changed", "change_severity", "classes added or removed since the previous ingest"),
        Code(
            "class_balance_changed",
            "change_severity",
            "some class's share of the images moved by more than `max_balance_change` (TFDV's L-infinity distance)",
        ),
        Code(
            "test_split_too_small",
            "warning",
            "the 95% interval on an accuracy near 50% is wider than +/-`max_accuracy_interval`: the gate "
            "cannot tell models apart; the message says how many test images are needed",
        ),
        Code(
            "val_split_too_small",
            "warning",
            "the val split has fewer images than a temperature, an abstention threshold or early stopping "
            "needs (components.common.confidence.MIN_CALIBRATION_EXAMPLES, measured; `warn_small_val_split` "
            "silences it); the message says what is then left out",
        ),
    )
}


def _class_totals(stats: dict) -> Dict[str, int]:
    return {name: sum(per_split.values()) for name, per_split in stats["per_class_per_split"].items()}


def class_counts(stats: dict, config: ValidateConfig) -> List[Anomaly]:
    """`class_below_minimum` (error), `class_missing_from_split`, `class_folder_empty` and `symlink_loop` (warning)."""
    found = [
        CODES["class_folder_empty"].anomaly(
            config,
            f"class folder {name!r} holds no image file, so it is no class of this model: add images to it "
            "or remove the folder",
        )
        for name in stats.get("empty_class_folders", [])
    ]
    found += [
        CODES["symlink_loop"].anomaly(
            config,
            f"{link!r} in the data folder is a symlink back to one of its own parent folders: it was not "
            "followed (what it reaches is read once, through the real folder); remove the link to silence "
            "this",
        )
        for link in stats.get("symlink_loops", [])
    ]
    for name, total in sorted(_class_totals(stats).items()):
        if total < config.min_examples_per_class:
            found.append(
                CODES["class_below_minimum"].anomaly(
                    config,
                    f"class {name!r} has {total} usable images, fewer than min_examples_per_class="
                    f"{config.min_examples_per_class}: add images to it or remove its folder",
                )
            )
    for name, per_split in sorted(stats["per_class_per_split"].items()):
        missing = [split for split, n in per_split.items() if n == 0]
        if missing:
            found.append(
                CODES["class_missing_from_split"].anomaly(
                    config,
                    f"class {name!r} has no image in split(s) {missing} ({per_split}): it needs at "
                    f"least {len(per_split)} images (one per split)",
                )
            )
    return found


def rejected_fraction(stats: dict, config: ValidateConfig) -> List[Anomaly]:
    """`rejected_fraction_high` (error): too many broken files suggests a broken upload or export."""
    broken = sum(n for reason, n in stats["rejected_by_reason"].items() if reason not in reasons.HARMLESS)
    considered = stats["files"]["kept"] + broken
    fraction = broken / considered if considered else 0.0
    if fraction <= config.max_rejected_fraction:
        return []
    listed = ", ".join(f"{r} {n}" for r, n in sorted(stats["rejected_by_reason"].items()) if r not in reasons.HARMLESS)
    return [
        CODES["rejected_fraction_high"].anomaly(
            config,
            f"{broken} of {considered} image files ({fraction:.1%}) were rejected ({listed}), above "
            f"max_rejected_fraction={config.max_rejected_fraction:g}: check the upload (see rejected.csv)",
        )
    ]


def test_split_size(stats: dict, config: ValidateConfig) -> List[Anomaly]:
    """`test_split_too_small` (warning): the gate's intervals would be wider than `max_accuracy_interval`.

    The half-width of a 95% interval on a proportion near 0.5 is 1.96 * sqrt(0.25 / n), so n >=
    1.96^2 * 0.25 / h^2 images are needed for +/- h (97 for 10 points, 385 for 5).
    """
    n = sum(per_split.get("test", 0) for per_split in stats["per_class_per_split"].values())
    if n == 0 or config.max_accuracy_interval == 0:
        return []
    half_width = 1.96 * math.sqrt(0.25 / n)
    if half_width <= config.max_accuracy_interval:
        return []
    needed = math.ceil(1.96**2 * 0.25 / config.max_accuracy_interval**2)
    return [
        CODES["test_split_too_small"].anomaly(
            config,
            f"the test split has {n} images: one image is {100 / n:.1f} accuracy points and the 95% interval "
            f"on an accuracy near 50% is +/-{half_width:.1%}, wider than max_accuracy_interval="
            f"{config.max_accuracy_interval:g}; at least {needed} test images are needed (add images or "
            "raise the test fraction in ingest.splits). The gate still runs; a candidate needs 5 or more "
            "images answered worse than the baseline before a regression can be significant (p < 0.05)",
        )
    ]


def val_split_size(stats: dict, config: ValidateConfig) -> List[Anomaly]:
    """`val_split_too_small` (warning): what the trainer and the export then do not fit on it."""
    n = sum(per_split.get("val", 0) for per_split in stats["per_class_per_split"].values())
    if n == 0 or not config.warn_small_val_split:  # no val split at all: class_missing_from_split says so
        return []
    problem = confidence.too_few(
        n,
        "a temperature, an abstention threshold or early stopping",
        "the model will be exported uncalibrated and without abstention, and trained without early stopping",
    )
    return [CODES["val_split_too_small"].anomaly(config, problem)] if problem else []


def drift(stats: dict, previous: Optional[dict], config: ValidateConfig) -> List[Anomaly]:
    """`class_set_changed` and `class_balance_changed` versus the previous ingest."""
    if previous is None:
        return []
    found = []
    now, before = set(stats["labels"]), set(previous["labels"])
    if now != before:
        found.append(
            CODES["class_set_changed"].anomaly(
                config,
                f"classes changed since the previous ingest: added {sorted(now - before)}, removed "
                f"{sorted(before - now)}; models trained before are not comparable",
            )
        )
    shares_now, shares_before = _shares(stats), _shares(previous)
    distance, worst = 0.0, None
    for name in sorted(set(shares_now) | set(shares_before)):
        change = abs(shares_now.get(name, 0.0) - shares_before.get(name, 0.0))
        if change > distance:
            distance, worst = change, name
    if distance > config.max_balance_change:
        found.append(
            CODES["class_balance_changed"].anomaly(
                config,
                f"class {worst!r} went from {shares_before.get(worst, 0.0):.1%} to "
                f"{shares_now.get(worst, 0.0):.1%} of the images (L-infinity distance {distance:.3f} > "
                f"max_balance_change={config.max_balance_change:g})",
            )
        )
    return found


def _shares(stats: dict) -> Dict[str, float]:
    totals = _class_totals(stats)
    kept = sum(totals.values())
    return {name: n / kept for name, n in totals.items()} if kept else {}
