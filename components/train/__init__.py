"""The train component: staged transfer learning from an ingest artifact to a `model.keras`.

Entry: `run(config: TrainConfig, ingest_dir, output_dir, work_dir=None) -> TrainResult`
(see `trainer.py` for every input and output; `schemas/ARTIFACTS.md` for the formats).
"""

from components.common.lazy import lazy_attributes
from components.train.config import StageConfig, TrainConfig, default_stages

__all__ = ["StageConfig", "TrainConfig", "default_stages", "StageResult", "TrainResult", "run"]
__getattr__ = lazy_attributes(__name__, {name: "trainer" for name in ("StageResult", "TrainResult", "run")})
