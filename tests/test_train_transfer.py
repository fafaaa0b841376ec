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

import pytest

from components.train import StageConfig, TrainConfig, run

HEAD_MIN_VAL = 0.5  # measured 0.69 (20 cached epochs); chance 0.1
DEFAULT_MIN_TEST = 0.75  # the target; measured 0.84
SCRATCH_MIN_TEST = 0.4  # measured SCRATCH_TEST below; chance 0.1


@pytest.fixture(scope="module")
def pretrained_default(ingested_sign_digits, shared_weights_dir, tmp_path_factory):
    weights = str(shared_weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras")
    out = tmp_path_factory.mktemp("transfer") / "train"
    result = run(TrainConfig(weights=weights), str(ingested_sign_digits), str(out))
    print("\n" + result.summary())
    return result, out


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


def test_from_scratch_learns_and_inference_mode_tracks_training(ingested_sign_digits, tmp_path):
    config = TrainConfig(weights="none", image_size=64, batch_size=32,
                         stages=(StageConfig("scratch", epochs=6, learning_rate=2e-3, unfreeze="all",
                                             warmup_epochs=1, augment=True),))
    result = run(config, str(ingested_sign_digits), str(tmp_path / "train"))
    print("\n" + result.summary())
    history = json.loads((tmp_path / "train" / "history.json").read_text())
    train_accuracy = history["epochs"][-1]["accuracy"]  # training mode, augmented, during the last epoch
    assert result.stages[0].bn_recalibrated_batches > 0
    assert result.test_accuracy >= SCRATCH_MIN_TEST
    # Inference mode (moving BatchNorm statistics) is not left behind by training mode.
    assert result.best_val_accuracy >= train_accuracy - 0.1
