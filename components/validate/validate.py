"""Data validation of one ingest: anomalies.json, and a result that is not ok when any is an error.

Inputs:  ingest_dir (its stats.json) and previous_ingest_dir (the last successful ingest in the
         same pipeline root, or None).
Outputs: output_dir (must not exist) with anomalies.json: [{severity, code, message}].
An error-level anomaly is an outcome, not an exception: the result's `ok` is false (the pipeline
then stops with exit 3, after publishing, so the user can read what failed).
"""

import dataclasses
from typing import List, Optional

import tensorflow as tf

from components.common.errors import UsageError
from components.common.outcome import Outcome
from components.common.publish import publish_dir, write_json
from components.validate import checks
from components.validate.config import ValidateConfig
from schemas.artifacts import ExampleAnomalies, Examples


@dataclasses.dataclass(frozen=True)
class ValidateResult(Outcome):
    output_dir: str
    anomalies: List[checks.Anomaly]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> List[checks.Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> List[checks.Anomaly]:
        return [a for a in self.anomalies if a.severity == "warning"]

    def summary(self) -> str:
        head = f"validate: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return "\n".join([head] + [f"  {a.severity}: {a.code}: {a.message}" for a in self.anomalies])


def run(config: ValidateConfig, ingest_dir: str, previous_ingest_dir: Optional[str], output_dir: str) -> ValidateResult:
    """Check the ingest's statistics and publish anomalies.json; `ok` is false when any is an error."""
    config.validate()
    if tf.io.gfile.exists(output_dir):
        raise UsageError(f"validate output {output_dir!r} already exists: give a new output directory")
    stats = Examples(ingest_dir).stats()
    previous = Examples(previous_ingest_dir).stats() if previous_ingest_dir else None
    anomalies = (
        checks.class_counts(stats, config)
        + checks.rejected_fraction(stats, config)
        + checks.test_split_size(stats, config)
        + checks.val_split_size(stats, config)
        + checks.drift(stats, previous, config)
    )
    with publish_dir(output_dir) as tmp:
        write_json(ExampleAnomalies(tmp).path(ExampleAnomalies.ANOMALIES), [dataclasses.asdict(a) for a in anomalies])
    return ValidateResult(output_dir=output_dir, anomalies=anomalies)
