"""The Keras callbacks each stage trains with, and the per-epoch record that survives a kill.

Everything that must outlive a SIGKILL is written at epoch end into the run's work directory:
`BackupAndRestore` (Keras's own: weights, optimizer state and the epoch number), `CSVLogger` in
append mode, TensorBoard event files, and `EpochRecorder`'s `epochs.json` (stage name and metrics
of every finished epoch, written atomically), from which `history.json` and `curves.png` are made.
Epoch numbers are global across stages (stage 2 continues where stage 1 stopped), so the CSV log,
TensorBoard and the curves share one x axis.
"""

import os

import keras
import tensorflow as tf

from components.common.publish import read_json, write_json
from schemas.artifacts import Model


class EpochRecorder(keras.callbacks.Callback):
    """Appends `{"stage", "epoch", <metrics>}` to a JSON list after every epoch (atomic rewrite)."""

    def __init__(self, path: str, stage: str):
        super().__init__()
        self.path = path
        self.stage = stage

    def on_epoch_end(self, epoch, logs=None):
        records = load_epochs(self.path)
        records = [r for r in records if r["epoch"] != epoch]  # an epoch rerun after a kill replaces its record
        records.append({"stage": self.stage, "epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        write_json(self.path, sorted(records, key=lambda r: r["epoch"]))


def load_epochs(path: str) -> list:
    return read_json(path) if tf.io.gfile.exists(path) else []


def stage_callbacks(work_dir: str, stage, *, monitor_patience: int) -> list:
    """Backup/restore first (so an epoch is only logged once its state is saved), then the logs."""
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(work_dir, "backup", stage.name), double_checkpoint=True),
    ]
    if monitor_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=monitor_patience, restore_best_weights=True
            )
        )
    callbacks += [
        EpochRecorder(os.path.join(work_dir, "epochs.json"), stage.name),
        keras.callbacks.CSVLogger(os.path.join(work_dir, Model.TRAINING_LOG), append=True),
        keras.callbacks.TensorBoard(os.path.join(work_dir, "tensorboard"), write_graph=False, profile_batch=0),
    ]
    return callbacks
