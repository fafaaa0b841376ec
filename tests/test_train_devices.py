"""Training on several devices and in every precision, proven on CPU (tests/devices_child.py runs each
scenario in its own process).

- MirroredStrategy over 2 logical CPU devices (`train.devices="/cpu:0,/cpu:1"`), which is how
  Keras tests its own distribution code: the head stage on cached features, a fine-tune stage with
  RandAugment, MixUp and CutMix, label smoothing, class weights (made to switch on by `exclude`),
  `train_fraction`, distillation, a SIGKILL mid-stage and the resume, and the export's parity.
- The same recipe on one device with the same seed and global batch. Not bit-identical: each
  replica draws its own dropout and augmentation randomness for half the batch, and gradients are
  summed in another order. So the two runs are compared like two seeds: |val accuracy difference|
  <= 0.2 (6 of 30 val images). Measured on this data when the test was written (2 Xeon cores):
  single device 0.867 / 0.900 / 0.733 for seeds 0-2 (a spread of 0.167), mirrored 0.933 / 0.800 /
  0.900; the same-seed differences were +0.067, -0.100 and +0.167.
- `mixed_float16` and `mixed_bfloat16` end to end on one device: trained with the loss-scale
  optimizer (float16) in place, exported in every format with float32 inputs and outputs, parity
  within the export's tolerance, evaluated and gated.
- Multi-worker training stays refused, and a strict expected failure re-runs the two-worker
  `MultiWorkerMirroredStrategy` + `Model.fit` reproduction of keras-team/keras#20585, so the
  Keras release that fixes it turns this file red.
"""

import csv
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.ingest_format import write_synthetic_ingest_dir
from tests.test_train_outputs import backbone_weights_file

pytestmark = pytest.mark.slow  # a child process per scenario: 10-40 s each

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIRRORED = "/cpu:0,/cpu:1"


def _child(spec: dict, expect_kill: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.devices_child", json.dumps(spec)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if expect_kill:
        assert proc.returncode == -9, proc.stderr[-3000:]
        return {}
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("devices")
    ingest = write_synthetic_ingest_dir(
        root / "ingest", per_split={"train": 16, "val": 10, "test": 8}, image_size=(40, 48), tfds_metadata=False
    )
    with open(os.path.join(ingest, "manifest.csv")) as f:
        fish = [r["sha256"] for r in csv.DictReader(f) if r["split"] == "train" and r["label_text"] == "fish"]
    exclude = root / "exclude.csv"
    exclude.write_text("sha256\n" + "".join(f"{sha}\n" for sha in fish[:7]))  # 16 against 9: class weights on
    return {"root": root, "ingest": ingest, "weights": backbone_weights_file(root / "w.weights.h5"), "exclude": exclude}


def _recipe(data, devices: str, **changes) -> dict:
    train = {
        "backbone": "mobilenet_v2",
        "alpha": 0.35,
        "image_size": 32,
        "batch_size": 8,
        "weights": data["weights"],
        "precision": "float32",
        "devices": devices,
        "exclude": str(data["exclude"]),
        "train_fraction": 0.9,
        "evaluate_test": False,
        "augment": {"randaugment_ops": 1, "mixup": 0.2, "cutmix": 0.2},
        "stages": [
            {"name": "head", "epochs": 3, "learning_rate": 0.01},
            {"name": "finetune", "epochs": 1, "learning_rate": 0.001, "unfreeze": 0.2, "augment": True},
        ],
    }
    train.update(changes)
    return train


@pytest.fixture(scope="module")
def runs(data):
    """The recipe on one device and mirrored over two, same seed and global batch; the mirrored one exported."""
    root = data["root"]
    single = _child({"ingest": data["ingest"], "output": str(root / "single"), "train": _recipe(data, "auto")})
    mirrored = _child(
        {
            "logical_cpus": 2,
            "ingest": data["ingest"],
            "output": str(root / "mirrored"),
            "train": _recipe(data, MIRRORED),
            "export": str(root / "mirrored_export"),
        }
    )
    return single, mirrored


def test_mirrored_training_runs_every_path_and_exports_with_parity(runs):
    single, mirrored = runs
    assert mirrored["strategy"] == "mirrored" and mirrored["replicas"] == 2
    assert single["strategy"] == "default" and single["replicas"] == 1
    # head on cached features, then the augmented fine-tune; class weights on (16 against 9 after exclude)
    assert [s[0] for s in mirrored["stages"]] == ["head", "finetune"] and mirrored["stages"][0][3] is True
    assert mirrored["class_weights"] and mirrored["excluded"] == 7
    assert mirrored["parity"]["passed"] and max(mirrored["parity"]["max_abs_diff"].values()) <= 1e-4
    assert set(mirrored["parity"]["max_abs_diff"]) == {"saved_model", "tflite_float32", "onnx"}


def test_mirrored_and_single_device_reach_the_same_accuracy(runs):
    single, mirrored = runs
    assert single["val_accuracy"] >= 0.6 and mirrored["val_accuracy"] >= 0.6  # chance is 0.33
    assert abs(single["val_accuracy"] - mirrored["val_accuracy"]) <= 0.2, (single["stages"], mirrored["stages"])


def test_mirrored_distillation(data, runs):
    root = data["root"]
    student = _child(
        {
            "logical_cpus": 2,
            "ingest": data["ingest"],
            "output": str(root / "student"),
            "train": _recipe(
                data,
                MIRRORED,
                distill={"teacher": str(root / "single")},
                stages=[{"name": "head", "epochs": 2, "learning_rate": 0.01}],
            ),
        }
    )
    assert student["replicas"] == 2 and student["class_weights"] is None  # a student takes no class weights
    assert student["val_accuracy"] >= 0.6


def test_mirrored_training_killed_mid_stage_resumes(data):
    root = data["root"]
    spec = {
        "logical_cpus": 2,
        "ingest": data["ingest"],
        "output": str(root / "resumed"),
        "work": str(root / "resumed_work"),
        "train": _recipe(data, MIRRORED),
    }
    _child({**spec, "kill_in_stage": 1}, expect_kill=True)
    state = json.load(open(root / "resumed_work" / "state.json"))
    assert [s["name"] for s in state["finished"]] == ["head"]
    resumed = _child(spec)
    assert [s[0] for s in resumed["stages"]] == ["head", "finetune"] and resumed["replicas"] == 2
    assert resumed["stages"][1][1] == 1  # the killed stage's one epoch, run once after the resume


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_reduced_precision_end_to_end(data, policy):
    root = data["root"]
    facts = _child(
        {
            "ingest": data["ingest"],
            "output": str(root / policy),
            "train": _recipe(data, "auto", precision=policy),
            "export": str(root / f"{policy}_export"),
            "evaluate": str(root / f"{policy}_evaluate"),
        }
    )
    assert facts["precision"] == policy
    half = "float16" if policy == "mixed_float16" else "bfloat16"
    assert facts["compute_dtypes"] == [half] and facts["variable_dtypes"] == ["float32"]
    if policy == "mixed_float16":  # float16 needs loss scaling; bfloat16 has float32's range
        assert facts["optimizers"] == ["LossScaleOptimizer"]
    else:
        assert "LossScaleOptimizer" not in facts["optimizers"]
    assert facts["parity"]["passed"]
    for entry in facts["formats"].values():  # the exported models take and return float32
        if entry["name"] != "tflite_int8":
            assert (entry["input"], entry["output"]) in {("float32", "float32"), ("string", "float32")}, entry
    gate = {(name, model): passed for name, model, _value, passed in facts["checks"]}
    assert ("max_format_accuracy_drop", "onnx") in gate and ("min_accuracy", "candidate") in gate
    assert facts["blessed"], facts["checks"]


def test_devices_this_machine_lacks_are_refused_before_the_ingest(tmp_path):
    from tests.pipeline_helpers import pipeline_run

    proc = pipeline_run(
        "--pipeline-root", str(tmp_path / "root"), "--set", "train.devices=/gpu:0,/gpu:1", "--set", "train.weights=none"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "train.devices names /gpu:0, /gpu:1, which this machine does not have" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "root" / "ingest").exists()


WORKER = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
import keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
print("fit finished")
"""


def test_the_devices_benchmark_runs_on_logical_cpus(tmp_path):
    """benchmarks/devices.py, the command for machines with GPUs, smoke-run so that it does not rot."""
    out = tmp_path / "devices.json"
    args = ["--image-size", "32", "--steps", "1", "--repeats", "1", "--precisions", "float32"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.devices", *args, "--logical-cpus", "2", "--output", str(out)],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, PYTHONPATH=PROJECT_ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    configs = {(len(r["devices"]), r["precision"], r["xla"]) for r in results}
    assert configs == {(d, "float32", x) for d in (1, 2) for x in (False, True)}
    for r in results:  # XLA under MirroredStrategy may fail as XLA's known issue says; all else must run
        if len(r["devices"]) == 2 and r["xla"] and "error" in r:
            assert "Trying to access resource" in r["error"], r
        else:
            assert r["images_per_s"] > 0, r


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="keras-team/keras#20585: Keras 3's Model.fit fails under MultiWorkerMirroredStrategy; when this "
    "passes, the Keras in use has fixed it: lift the refusal in components/train/devices.py",
)
def test_multi_worker_fit_still_fails_on_the_installed_keras(tmp_path):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=dict(
                os.environ,
                TF_CPP_MIN_LOG_LEVEL="3",
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    errors = [err.strip().splitlines()[-1] if err.strip() else "" for _out, err in outputs]
    if any(w.returncode for w in workers) and not all("PerReplica" in err for _out, err in outputs):
        raise RuntimeError(f"the workers failed, but not as keras-team/keras#20585 does: {errors}")
    assert all(w.returncode == 0 for w in workers), f"keras-team/keras#20585 reproduces: {errors}"
    assert all("fit finished" in out for out, _err in outputs)
