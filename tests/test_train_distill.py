"""`train.distill`: Hinton's loss, the targets that carry the teacher's probabilities, a student trained
from a teacher end to end, and a teacher that cannot work refused before any work."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.errors import DataError, UsageError
from components.train import TrainConfig, distill, run
from components.train.config import StageConfig, TrainDistill
from components.train.stages import LabelAccuracy
from tests.ingest_format import write_synthetic_ingest_dir


def _softened(p, t):
    z = np.log(p) / t
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_loss_is_hintons():
    rng = np.random.default_rng(0)
    labels = np.eye(4)[[0, 2, 3]].astype(np.float32)
    teacher = rng.dirichlet(np.ones(4), 3).astype(np.float32)
    student = rng.dirichlet(np.ones(4), 3).astype(np.float32)
    targets = np.concatenate([labels, teacher], axis=1)
    t, alpha = 3.0, 0.25
    loss = float(distill.DistillationLoss(4, t, alpha)(targets, student))
    ce = -np.sum(labels * np.log(student), axis=1)
    pt, ps = _softened(teacher, t), _softened(student, t)
    kl = np.sum(pt * np.log(pt / ps), axis=1)
    np.testing.assert_allclose(loss, np.mean(alpha * ce + (1 - alpha) * t * t * kl), rtol=1e-4)
    only_labels = float(distill.DistillationLoss(4, t, 1.0)(targets, student))
    np.testing.assert_allclose(only_labels, np.mean(ce), rtol=1e-5)
    agrees = float(distill.DistillationLoss(4, t, 0.0)(np.concatenate([labels, student], 1), student))
    assert abs(agrees) < 1e-5, "a student equal to its teacher has no distillation loss"


def test_label_accuracy_reads_only_the_labels():
    metric = LabelAccuracy(3)
    labels = np.eye(3)[[0, 1]]
    teacher = np.eye(3)[[2, 2]]  # the teacher disagrees: it must not count
    metric.update_state(np.concatenate([labels, teacher], 1), np.eye(3)[[0, 2]])
    assert float(metric.result()) == 0.5


def test_with_teacher_appends_its_probabilities_on_the_same_batch_at_its_own_size():
    inputs = keras.Input((8, 8, 3))
    teacher = keras.Model(
        inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    images = np.random.default_rng(1).uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 1]]
    ds = distill.with_teacher(tf.data.Dataset.from_tensor_slices((images, labels)).batch(5), teacher)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y[:, :2].numpy(), labels)
    np.testing.assert_allclose(y[:, 2:].numpy(), teacher(tf.image.resize(images, (8, 8))).numpy(), atol=1e-6)


def _config(**kw):
    return TrainConfig(
        image_size=32,
        weights="none",
        batch_size=8,
        bn_recalibration_batches=0,
        evaluate_test=False,
        stages=(StageConfig("scratch", epochs=1, learning_rate=1e-3, unfreeze="all", augment=True),),
        **kw,
    )


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory):
    """(ingest dir, the folder of a teacher trained on it)."""
    tmp_path = tmp_path_factory.mktemp("distill")
    ingest = str(write_synthetic_ingest_dir(tmp_path / "ingest", fmt="mixed", shards_per_split=1, tfds_metadata=False))
    run(_config(), ingest, str(tmp_path / "teacher"))
    return ingest, tmp_path / "teacher"


@pytest.mark.slow
def test_a_student_trains_from_a_teacher_and_records_it(trained_teacher, tmp_path):
    ingest, teacher = trained_teacher
    student = run(
        _config(backbone="mobilenet_v3_small", distill=TrainDistill(str(teacher), 2.0, 0.3)),
        ingest,
        str(tmp_path / "student"),
    )
    assert 0.0 <= student.best_val_accuracy <= 1.0
    info = json.loads((tmp_path / "student" / "model_info.json").read_text())
    record = info["distillation"]
    assert record["teacher"].endswith("teacher/model.keras") and len(record["teacher_sha256"]) == 64
    assert (record["temperature"], record["alpha"]) == (2.0, 0.3)
    assert info["backbone"] == "mobilenet_v3_small"
    assert json.loads((teacher / "model_info.json").read_text())["distillation"] is None


@pytest.mark.slow
def test_a_teacher_for_other_classes_or_missing_is_refused(trained_teacher, tmp_path):
    ingest, teacher = trained_teacher
    with pytest.raises(UsageError, match="train.distill.teacher="):
        run(_config(distill=TrainDistill(str(tmp_path / "nowhere"))), ingest, str(tmp_path / "a"))
    other = tmp_path / "other_teacher"
    other.mkdir()
    (other / "model.keras").write_bytes((teacher / "model.keras").read_bytes())
    info = json.loads((teacher / "model_info.json").read_text())
    (other / "model_info.json").write_text(json.dumps({**info, "labels": list(reversed(info["labels"]))}))
    with pytest.raises(DataError, match="same classes in the same order"):
        run(_config(distill=TrainDistill(str(other))), ingest, str(tmp_path / "b"))


@pytest.mark.parametrize("field, value", [("temperature", 0.0), ("alpha", 1.5), ("teacher", 3)])
def test_bad_settings_are_usage_errors(field, value):
    with pytest.raises(UsageError, match=f"train.distill.{field}"):
        TrainConfig(distill=TrainDistill(**{field: value})).validate()


def test_pipeline_retrains_when_the_teacher_changes_not_when_rerun(fake, tmp_path):
    teacher = tmp_path / "model.keras"
    teacher.write_bytes(b"first teacher")
    setting = f"train.distill={{teacher: {teacher}, temperature: 2.0}}"
    all_nodes = ["ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"]
    assert fake("--set", setting) == (0, all_nodes)
    assert fake("--set", setting) == (0, [])
    teacher.write_bytes(b"retrained teacher")  # same path, other content
    assert fake("--set", setting) == (0, ["train", "audit", "export", "evaluate", "push"])


def test_pipeline_refuses_a_missing_teacher_before_the_ingest(fake, tmp_path, capsys):
    code, calls = fake("--set", f"train.distill={{teacher: {tmp_path / 'missing'}}}")
    assert code == 2 and calls == []
    assert "train.distill.teacher=" in capsys.readouterr().err
