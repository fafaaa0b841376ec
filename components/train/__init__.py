"""The train component: staged transfer learning from an ingest artifact to a `model.keras`.

Entry: `run(config: TrainConfig, ingest_dir, output_dir, work_dir=None) -> TrainResult`
(see `trainer.py` for every input and output; `schemas/ARTIFACTS.md` for the formats).
"""
from components.train.config import StageConfig, TrainConfig, default_stages
from components.train.trainer import StageResult, TrainResult, run

__all__ = ["StageConfig", "TrainConfig", "default_stages", "StageResult", "TrainResult", "run"]
