"""Data validation of one ingest: anomalies.json, and a `DataError` (exit 3) when any is an error.

Inputs:  ingest_dir (its stats.json) and previous_ingest_dir (the last successful ingest in the
         same pipeline root, or None).
Outputs: output_dir (must not exist) with anomalies.json: [{severity, code, message}], published
         atomically BEFORE the error is raised, so the user can read what failed.
"""
import dataclasses
import os
from typing import List, Optional

import tensorflow as tf

from components.common.errors import DataError, UsageError
from components.common.publish import publish_dir, read_json, write_json
from components.validate import checks
from components.validate.config import ValidateConfig


@dataclasses.dataclass(frozen=True)
class ValidateResult:
    output_dir: str
    anomalies: List[checks.Anomaly]

    @property
    def errors(self) -> List[checks.Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> List[checks.Anomaly]:
        return [a for a in self.anomalies if a.severity == "warning"]

    def summary(self) -> str:
        head = f"validate: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return "\n".join([head] + [f"  {a.severity}: {a.code}: {a.message}" for a in self.anomalies])


def _stats(ingest_dir: str, what: str) -> dict:
    path = os.path.join(ingest_dir, "stats.json")
    if not tf.io.gfile.exists(path):
        raise DataError(f"{what} {ingest_dir!r} has no stats.json: it is not a complete ingest output")
    return read_json(path)


def run(config: ValidateConfig, ingest_dir: str, previous_ingest_dir: Optional[str], output_dir: str) -> ValidateResult:
    """Check the ingest's statistics; publish anomalies.json; raise DataError if any is an error."""
    config.validate()
    if tf.io.gfile.exists(output_dir):
        raise UsageError(f"validate output {output_dir!r} already exists: give a new output directory")
    stats = _stats(ingest_dir, "ingest output")
    previous = _stats(previous_ingest_dir, "previous ingest") if previous_ingest_dir else None
    anomalies = (checks.class_counts(stats, config) + checks.rejected_fraction(stats, config)
                 + checks.drift(stats, previous, config))
    with publish_dir(output_dir) as tmp:
        write_json(os.path.join(tmp, "anomalies.json"), [dataclasses.asdict(a) for a in anomalies])
    result = ValidateResult(output_dir=output_dir, anomalies=anomalies)
    if result.errors:
        raise DataError("data validation failed:\n" + "\n".join(f"  {a.code}: {a.message}" for a in result.errors)
                        + f"\n(details in {os.path.join(output_dir, 'anomalies.json')})")
    return result
