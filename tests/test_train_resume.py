"""A training process killed with SIGKILL mid-epoch resumes from its last completed epoch on rerun.

The trainer runs in a child process (`python -c CHILD`); a callback in the child sends SIGKILL
to its own process in the middle of an epoch of the second stage (no cleanup, no exception:
exactly what the OOM killer or `kill -9` does). The rerun, with the same work directory, must
skip the finished head stage, start at the killed epoch, and publish a complete history.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.ingest_format import write_synthetic_ingest_dir
from tests.test_train_outputs import backbone_weights_file

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, os, signal, sys
import keras
from components.train import StageConfig, run
from tests.test_train_outputs import small_config

ingest, weights, output, work, epochs_log, kill_epoch = sys.argv[1:7]
kill_epoch = int(kill_epoch)


class KillMidEpoch(keras.callbacks.Callback):
    # Logs each epoch it sees begin; SIGKILLs its own process after batch 1 of `kill_epoch`.
    epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        with open(epochs_log, "a") as f:
            f.write(f"{epoch}\n")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == kill_epoch and batch == 1:
            os.kill(os.getpid(), signal.SIGKILL)


config = small_config(weights, stages=(StageConfig("head", epochs=1, learning_rate=1e-2),
                                       StageConfig("finetune", epochs=3, learning_rate=1e-3, unfreeze=0.2,
                                                   augment=True)), evaluate_test=False)
result = run(config, ingest, output, work_dir=work, callbacks=[KillMidEpoch()])
print(json.dumps([s.epochs_run for s in result.stages]))
"""


def _run_child(args, kill_epoch):
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args, str(kill_epoch)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_sigkill_mid_epoch_then_rerun_resumes_from_the_last_completed_epoch(tmp_path):
    ingest = write_synthetic_ingest_dir(
        tmp_path / "ingest",
        labels=["a", "b", "c"],
        per_split={"train": 8, "val": 2, "test": 2},
        image_size=(32, 32),
        tfds_metadata=False,
    )  # 24 training images: 3 batches of 8 per epoch
    weights = backbone_weights_file(tmp_path / "backbone.weights.h5")
    output, work = tmp_path / "train", tmp_path / "work"
    first_log, second_log = tmp_path / "epochs-1.txt", tmp_path / "epochs-2.txt"
    common = [ingest, weights, str(output)]

    killed = _run_child(common + [str(work), str(first_log)], kill_epoch=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert first_log.read_text().split() == ["0", "1", "2"]  # killed in global epoch 2 (finetune's 2nd)
    assert not output.exists()
    state = json.loads((work / "state.json").read_text())
    assert [s["name"] for s in state["finished"]] == ["head"]

    resumed = _run_child(common + [str(work), str(second_log)], kill_epoch=-1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert second_log.read_text().split() == ["2", "3"]  # head not rerun; finetune resumes at epoch 2
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == [1, 3]

    history = json.loads((output / "history.json").read_text())
    assert [(e["stage"], e["epoch"]) for e in history["epochs"]] == [
        ("head", 0),
        ("finetune", 1),
        ("finetune", 2),
        ("finetune", 3),
    ]
    log_epochs = [line.split(",")[0] for line in (output / "training_log.csv").read_text().splitlines()[1:]]
    assert log_epochs == ["0", "1", "2", "3"]
    assert not work.exists()


def test_work_state_of_another_config_is_discarded(tmp_path):
    from components.train.trainer import _WorkState

    work = tmp_path / "work"
    state = _WorkState(str(work), "fingerprint-a")
    (work / "after_head.weights.h5").write_bytes(b"stale")
    state.state["finished"].append(
        {
            "name": "head",
            "epochs_run": 2,
            "val_accuracy": 0.5,
            "seconds": 1.0,
            "cached_features": True,
            "trainable_backbone_layers": 0,
        }
    )
    from components.common.publish import write_json

    write_json(state.path, state.state)
    assert [r.name for r in _WorkState(str(work), "fingerprint-a").finished()] == ["head"]
    fresh = _WorkState(str(work), "fingerprint-b")
    assert fresh.finished() == [] and not (work / "after_head.weights.h5").exists()
