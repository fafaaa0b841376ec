"""The one protocol every component result follows, so the orchestrator needs to know none of them.

A result is data, never an exception thrown through layers (TFX's pusher records `pushed=0` and
returns): `output_dir` is what was published ("" when nothing was), `ok` is true only when the
step's purpose happened (data passed validation, the model was blessed, a version was pushed),
`summary()` is what a person reads, `properties()` is what the lineage store keeps. The pipeline
maps a result that is not ok to an exit code in one place (`pipeline/dag.py`).
"""

import dataclasses
import json


class Outcome:
    """Mixin for the frozen dataclasses components return; subclasses override `ok` when it can be false."""

    ok = True

    def summary(self) -> str:
        return ""

    def properties(self) -> dict:
        """The result's fields as JSON data (what `pipeline.metadata` records for the artifact)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
