"""The shipped recipes in configs/ (issue 10): each validates as written, and each runs ingest ->
validate -> train on a small generated folder with local weights standing in for ImageNet's."""

import pathlib

import pytest
from pipeline_helpers import make_folder

from pipeline import run as run_cli

CONFIGS = sorted((pathlib.Path(__file__).parent.parent / "configs").glob("*.yaml"))


def _config(path, *extra):
    args, _ = run_cli.build_parser().parse_known_args(["--config", str(path), "--data-dir", "photos", *extra])
    return run_cli.config_from_args(args)[0]


def test_the_five_recipes_are_shipped():
    assert [p.stem for p in CONFIGS] == [
        "cats_vs_dogs_vgg16",
        "cifar10_style_split",
        "flowers_efficientnet_b0",
        "stanford_cars_efficientnet_full",
        "subset_20x",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_each_recipe_validates_as_written(path):
    config = _config(path)
    stages = config["train"].effective_stages()
    assert config["train"].pretrained and stages[0].freezes_backbone and not stages[-1].freezes_backbone


def test_recipes_say_what_their_tutorials_do():
    vgg = _config(CONFIGS[0])["train"]
    assert (vgg.family.name, vgg.image_size, vgg.stages[-1].unfreeze, vgg.stages[-1].learning_rate) == (
        "VGG16",
        150,
        "block5",
        1e-5,
    )
    flowers = _config(CONFIGS[2])["train"]
    assert (flowers.family.name, flowers.image_size, flowers.stages[-1].unfreeze) == ("EfficientNetB0", 224, 0.2)
    assert _config(CONFIGS[3])["train"].stages[-1].unfreeze == "all"
    assert sum(_config(CONFIGS[1])["ingest"].splits.values()) == pytest.approx(1.0)
    assert _config(CONFIGS[4])["train"].train_fraction == 0.05


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory):
    """A random backbone per family the recipes use, saved as the 'pretrained' weights file."""
    import keras

    from components.train.backbones import build_backbone

    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for name, alpha in [("EfficientNetB0", None), ("VGG16", None), ("MobileNetV2", 0.35)]:
        keras.utils.set_random_seed(0)
        _, backbone = build_backbone(name, 32, "none", alpha=alpha)
        files[name] = str(folder / f"{name}.weights.h5")
        backbone.save_weights(files[name])
        keras.backend.clear_session()
    return files


@pytest.mark.slow  # ingest, validate and two one-epoch stages per recipe, at 32 px (~20-40 s each)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_each_recipe_runs_on_a_small_folder_with_local_weights(path, tmp_path, local_weights, capsys):
    folder = make_folder(tmp_path / "images", classes=3, per_class=24)
    weights = local_weights[_config(path)["train"].family.name]
    root = tmp_path / "root"
    code = run_cli.main(
        [
            "--config",
            str(path),
            "--data-dir",
            str(folder),
            "--pipeline-root",
            str(root),
            "--weights",
            weights,
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--epochs",
            "1",
            "--stop-after",
            "train",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    assert "[pipeline] train: done" in out and "stage finetune" in out
