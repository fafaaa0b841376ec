"""Transfer learning on the real sign-language folder (10 classes: chance is 0.1).

- With the DEFAULT settings and the pretrained backbone in ../shared/weights (six CIFAR classes,
  never hands): the head stage is clearly above chance, the fine-tune stage does not lose
  accuracy against it, and the test split reaches the issue's target (0.75; the seed tutorials'
  recipe gets 0.568 from this backbone).
- From weights=None (random init, BatchNorm training from scratch): well above chance in inference
  mode, and inference-mode accuracy tracks training accuracy (the BatchNorm trap, batchnorm.py).
Accuracies are measured by `run` in inference mode on the ingest's val/test splits.
"""

import json

import keras
import numpy as np
import pytest

import components.common.layers  # noqa: F401  (custom layers, before loading model.keras)
from components.train import StageConfig, TrainConfig, run
from components.train.config import AugmentConfig
from components.train.input import make_dataset
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

HEAD_MIN_VAL = 0.5  # measured 0.69 (20 cached epochs); chance 0.1
DEFAULT_MIN_TEST = 0.83  # float32: measured 0.877 (Keras model, before the export's flip); 0.84 before issue 13
SCRATCH_SIZE, SCRATCH_EPOCHS = 48, 6  # small and short to keep the suite fast; 64 px reaches 0.56
SCRATCH_MIN_TEST = 0.35  # measured 0.47; chance 0.1


@pytest.fixture(scope="module")
def pretrained_default(ingested_sign_digits, shared_weights_dir, tmp_path_factory):
    return export_models.default_sign_digits_training(tmp_path_factory, ingested_sign_digits, shared_weights_dir)


def test_head_stage_is_clearly_above_chance(pretrained_default):
    result, _ = pretrained_default
    head = result.stages[0]
    assert head.name == "head" and head.cached_features and head.trainable_backbone_layers == 0
    assert head.val_accuracy >= HEAD_MIN_VAL


def test_finetune_does_not_lose_accuracy_against_the_head(pretrained_default):
    result, _ = pretrained_default
    head, finetune = result.stages
    assert finetune.name == "finetune" and finetune.trainable_backbone_layers > 0
    assert finetune.val_accuracy >= head.val_accuracy - 0.01
    assert result.kept_stage == "finetune"


def test_default_settings_reach_the_target_on_the_test_split(pretrained_default):
    result, out = pretrained_default
    assert result.test_accuracy >= DEFAULT_MIN_TEST
    assert json.loads((out / "model_info.json").read_text())["test_accuracy"] == result.test_accuracy


def _accuracy(probabilities, labels) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def test_from_scratch_learns_and_inference_mode_tracks_training_mode(ingested_sign_digits, tmp_path):
    config = TrainConfig(
        weights="none",
        image_size=SCRATCH_SIZE,
        batch_size=32,
        stages=(
            StageConfig(
                "scratch", epochs=SCRATCH_EPOCHS, learning_rate=2e-3, unfreeze="all", warmup_epochs=1, augment=False
            ),
        ),
    )
    result = run(config, str(ingested_sign_digits), str(tmp_path / "train"))
    print("\n" + result.summary())
    assert result.stages[0].bn_recalibrated_batches > 0
    assert result.test_accuracy >= SCRATCH_MIN_TEST

    # The BatchNorm trap: on the same training images with the same weights, the prediction with
    # BatchNorm in inference mode (moving statistics) must be as good as with batch statistics.
    model = keras.saving.load_model(tmp_path / "train" / "model.keras")
    images, labels = [], []
    # Shuffled batches, as in training (the split's stored order groups classes, which would bias
    # batch statistics), without augmentation.
    shuffled = make_dataset(
        str(ingested_sign_digits), "train", (SCRATCH_SIZE,) * 2, 64, training=True, augment=AugmentConfig.off(), seed=7
    )
    for x, y in shuffled.take(6):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    backbone, preprocessing = model.get_layer("backbone"), model.get_layer("preprocessing")
    pooled = model.get_layer("head_pool")(backbone(preprocessing(images), training=True))
    batch_statistics = model.get_layer("probabilities")(model.get_layer("head_dense")(pooled))
    training_mode = _accuracy(np.asarray(batch_statistics), labels)
    inference_mode = _accuracy(model.predict(images, verbose=0), labels)
    print(f"train images: inference mode {inference_mode:.3f}, batch statistics {training_mode:.3f}")
    assert inference_mode >= training_mode - 0.05
