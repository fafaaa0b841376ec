"""The train artifact (schemas/ARTIFACTS.md "train -> export"), one loss across stages, bad input.

One small two-stage run (head on cached features, then a fine-tune) on a synthetic ingest at
32 px is shared by the assertions; the backbone "pretrained" weights are a random MobileNetV2
saved to a file, which exercises the same file-weights path as real pretrained weights.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import components.common.layers  # noqa: F401  (registers custom layers before loading model.keras)
from components.common.errors import EXIT_DATA, EXIT_USAGE, DataError, UsageError
from components.common.image_ops import decode_and_resize
from components.common.publish import COMPLETE_MARKER
from components.train import StageConfig, TrainConfig, batchnorm, run
from components.train.backbones import build_backbone
from tests.ingest_format import write_synthetic_ingest_dir

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

SIZE = 32
LABELS = ["cat", "dog", "fish"]


def backbone_weights_file(path) -> str:
    """A random MobileNetV2 (alpha 0.35) backbone with fitted BatchNorm statistics, saved as weights."""
    keras.utils.set_random_seed(0)
    preprocessing, backbone = build_backbone("MobileNetV2", SIZE, "none", alpha=0.35)
    images = np.random.default_rng(0).uniform(0, 255, (1, 16, SIZE, SIZE, 3)).astype("float32")
    batchnorm.recalibrate(backbone, preprocessing, tf.data.Dataset.from_tensor_slices(images), 1)
    backbone.save_weights(str(path))
    return str(path)


def small_config(weights: str, **changes) -> TrainConfig:
    fields = dict(
        backbone="mobilenet_v2",
        alpha=0.35,
        image_size=SIZE,
        batch_size=8,
        weights=weights,
        stages=(
            StageConfig("head", epochs=2, learning_rate=1e-2),
            StageConfig("finetune", epochs=2, learning_rate=1e-3, unfreeze=0.2, warmup_epochs=1, augment=True),
        ),
    )
    fields.update(changes)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train-outputs")
    ingest = write_synthetic_ingest_dir(
        tmp / "ingest",
        labels=LABELS,
        per_split={"train": 8, "val": 4, "test": 4},
        image_size=(40, 48),
        tfds_metadata=False,
    )
    weights = backbone_weights_file(tmp / "backbone.weights.h5")
    config = small_config(weights)
    losses = []
    original_compile = keras.Model.compile

    def recording_compile(self, *args, **kwargs):
        losses.append(kwargs.get("loss"))
        return original_compile(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "compile", recording_compile)
        result = run(config, ingest, str(tmp / "train"), work_dir=str(tmp / "work"))
    return {
        "tmp": tmp,
        "ingest": ingest,
        "weights": weights,
        "config": config,
        "result": result,
        "dir": tmp / "train",
        "losses": losses,
    }


def test_every_output_is_published_and_the_work_dir_removed(trained):
    names = set(os.listdir(trained["dir"]))
    assert {
        "model.keras",
        "model_info.json",
        "labels.txt",
        "history.json",
        "training_log.csv",
        "curves.png",
        "tensorboard",
        COMPLETE_MARKER,
    } <= names
    assert not os.path.exists(trained["tmp"] / "work")
    assert [p for p in os.listdir(trained["tmp"]) if p.startswith(".tmp")] == []
    assert (trained["dir"] / "labels.txt").read_text().splitlines() == LABELS


def test_model_takes_raw_pixels_and_gives_float32_probabilities(trained):
    model = keras.saving.load_model(trained["dir"] / "model.keras")
    assert tuple(model.input.shape) == (None, SIZE, SIZE, 3) and model.input.dtype == "float32"
    info = json.loads((trained["dir"] / "model_info.json").read_text())
    assert info["image_size"] == [SIZE, SIZE] and info["labels"] == LABELS and info["num_classes"] == 3
    assert info["backbone"] == "mobilenet_v2" and info["test_accuracy"] == trained["result"].test_accuracy

    # The evaluation preprocessing (shared with serving) feeds it directly: encoded bytes -> 0-255 floats.
    image = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    encoded = tf.io.encode_jpeg(image).numpy()
    batch = tf.stack([decode_and_resize(encoded, (SIZE, SIZE))] * 2)
    probabilities = model.predict(batch, verbose=0)
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_history_log_and_tensorboard_cover_every_epoch_of_every_stage(trained):
    history = json.loads((trained["dir"] / "history.json").read_text())
    assert [(e["stage"], e["epoch"]) for e in history["epochs"]] == [
        ("head", 0),
        ("head", 1),
        ("finetune", 2),
        ("finetune", 3),
    ]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(e) for e in history["epochs"])
    stages = {s["name"]: s for s in history["stages"]}
    assert stages["head"]["cached_features"] and not stages["finetune"]["cached_features"]
    assert stages["head"]["trainable_backbone_layers"] == 0 and stages["finetune"]["trainable_backbone_layers"] > 0
    assert history["kept_stage"] in stages

    with open(trained["dir"] / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(rows[0])

    events = [os.path.join(root, name) for root, _, files in os.walk(trained["dir"] / "tensorboard") for name in files]
    assert any("train" in e for e in events) and any("validation" in e for e in events)


def test_curves_png_is_an_image(trained):
    with Image.open(trained["dir"] / "curves.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 200


def test_one_loss_object_for_every_stage(trained):
    losses = [loss for loss in trained["losses"] if loss is not None]
    assert len(losses) >= 2  # at least one compile per stage
    assert all(loss is losses[0] for loss in losses)
    assert isinstance(losses[0], keras.losses.CategoricalCrossentropy)
    assert losses[0].get_config()["from_logits"] is False
    assert losses[0].get_config()["label_smoothing"] == trained["config"].label_smoothing


def test_summary_names_each_stage(trained):
    summary = trained["result"].summary()
    assert "stage head: 2 epochs" in summary and "stage finetune: 2 epochs" in summary
    assert "test accuracy" in summary


def test_a_split_with_no_examples_is_a_data_error(tmp_path, trained):
    ingest = write_synthetic_ingest_dir(
        tmp_path / "ingest", labels=LABELS, per_split={"train": 4, "test": 2}, tfds_metadata=False
    )
    with pytest.raises(DataError, match="split 'val'.*no examples") as e:
        run(trained["config"], ingest, str(tmp_path / "train"))
    assert e.value.exit_code == EXIT_DATA and not os.path.exists(tmp_path / "train")


def test_warm_start_from_a_model_whose_class_is_missing_from_the_data_is_a_data_error(tmp_path, trained):
    ingest = write_synthetic_ingest_dir(tmp_path / "ingest", labels=LABELS[:2], tfds_metadata=False)
    config = small_config(str(trained["dir"] / "model.keras"))
    with pytest.raises(DataError, match=r"\['fish'\] are missing from the data") as e:
        run(config, ingest, str(tmp_path / "train"))
    assert e.value.exit_code == EXIT_DATA


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"backbone": "resnet9000"}, "unknown backbone 'resnet9000'.*MobileNetV2"),
        ({"backbone": "Xception", "alpha": None, "image_size": 64}, "too small for Xception"),
        ({"weights": "/nonexistent/backbone.weights.h5"}, "not found"),
    ],
)
def test_bad_backbone_settings_are_usage_errors(tmp_path, trained, changes, message):
    changes = dict(changes)
    config = small_config(changes.pop("weights", trained["weights"]), **changes)
    with pytest.raises(UsageError, match=message) as e:
        run(config, trained["ingest"], str(tmp_path / "train"))
    assert e.value.exit_code == EXIT_USAGE and not os.path.exists(tmp_path / "train")


def test_weights_of_a_different_architecture_are_a_usage_error(tmp_path, trained):
    config = small_config(trained["weights"], alpha=1.0)
    with pytest.raises(UsageError, match="does not fit") as e:
        run(config, trained["ingest"], str(tmp_path / "train"))
    assert e.value.exit_code == EXIT_USAGE
