"""Every backbone family trains with its own defaults (issue 10): its width, its minimum size and
the block where its default fine-tune stage starts, from a local weights file as "pretrained"."""

import dataclasses
import os

import pytest

from components.common.errors import UsageError
from components.train import TrainConfig, families


@pytest.mark.parametrize("name", families.names())
def test_every_family_validates_with_its_defaults(name):
    """`--backbone efficientnet_b0 --weights FILE` used to fail: alpha defaulted to 0.35 for every family."""
    config = TrainConfig(backbone=name, weights="backbone.weights.h5", image_size=families.get(name).min_size)
    config.validate()
    assert config.effective_alpha == families.get(name).default_alpha
    finetune = config.effective_stages()[-1]
    assert finetune.unfreeze == families.get(name).finetune_from


def test_defaults_named_by_the_fine_tuning_guides():
    assert TrainConfig(backbone="vgg16").effective_stages()[-1].unfreeze == "block5"
    assert TrainConfig(backbone="efficientnet_b0").effective_stages()[-1].unfreeze == "block6a"
    assert TrainConfig(backbone="mobilenet_v2").effective_stages()[-1].unfreeze == "block_6"
    assert TrainConfig(backbone="mobilenet_v2").effective_alpha == 0.35
    assert TrainConfig(backbone="mobilenet_v3_small").effective_alpha == 1.0


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"backbone": "vgg16", "alpha": 0.5}, "VGG16 takes no width multiplier"),
        ({"backbone": "xception", "image_size": 64}, "at least 71x71"),
        ({"backbone": "resnet9000"}, "unknown backbone"),
    ],
)
def test_family_limits_are_checked_without_building_anything(changes, words):
    with pytest.raises(UsageError, match=words):
        TrainConfig(weights="w.weights.h5", **changes).validate()


# One member per Keras builder runs in CI (~20-40 s each); the other sizes of EfficientNet and
# EfficientNetV2 share their builder's code and block layout, and run with TRANSFERLINE_ALL_BACKBONES=1
# (all 25: about 15 minutes on 2 cores). Every family's finetune_from block is checked in CI by
# tests/test_backbones.py, which builds all 25.
ONE_PER_BUILDER = {
    "EfficientNetB0",
    "EfficientNetV2B0",
    "MobileNetV2",
    "MobileNetV3Small",
    "MobileNetV3Large",
    "ResNet50V2",
    "VGG16",
    "ConvNeXtTiny",
    "Xception",
}


@pytest.mark.slow  # each family built, saved and trained for one head and one fine-tune epoch
@pytest.mark.parametrize("name", families.names())
def test_every_family_trains_head_then_finetune_from_a_local_weights_file(name, tmp_path):
    if name not in ONE_PER_BUILDER and not os.environ.get("TRANSFERLINE_ALL_BACKBONES"):
        pytest.skip(f"{name} shares its builder with a family trained here; TRANSFERLINE_ALL_BACKBONES=1 trains it too")
    import keras

    from components.train import backbones, run
    from tests.ingest_format import write_synthetic_ingest_dir

    family = families.get(name)
    size = family.min_size
    keras.utils.set_random_seed(0)
    _, backbone = backbones.build_backbone(name, size, "none")  # stands in for ImageNet weights
    weights = str(tmp_path / f"{name}.weights.h5")
    backbone.save_weights(weights)
    keras.backend.clear_session()

    ingest = write_synthetic_ingest_dir(
        tmp_path / "ingest",
        labels=("a", "b"),
        image_size=(size, size),
        per_split={"train": 4, "val": 2, "test": 2},
        tfds_metadata=False,
    )
    defaults = TrainConfig(backbone=name, weights=weights, image_size=size, batch_size=4)
    stages = tuple(dataclasses.replace(s, epochs=1, warmup_epochs=0, patience=0) for s in defaults.effective_stages())
    config = dataclasses.replace(defaults, stages=stages, bn_recalibration_batches=1, evaluate_test=False)
    result = run(config, ingest, str(tmp_path / "train"))
    keras.backend.clear_session()
    assert [s.name for s in result.stages] == ["head", "finetune"]
    assert [s.epochs_run for s in result.stages] == [1, 1]
    assert result.stages[0].trainable_backbone_layers == 0 and result.stages[1].trainable_backbone_layers > 0
    assert list((tmp_path / "train").rglob("*.keras")), "the trained model is saved"
