"""The built-in demo: a generated dataset and training defaults that work offline on 2 CPU cores.

With no `--data-dir`/`--tfds-name`, `pipeline.run` generates the demo dataset once into
`PIPELINE_ROOT/demo/` (the ingest's demo generator, deterministic) and reuses it on later runs, so an
unchanged demo is an unchanged folder and the cached rerun skips everything. Its training
defaults need no download (no ImageNet weights) and finish in minutes; a config file or flags
still override every one of them.
"""

import os

from components.common import fileio, publish
from pipeline import artifacts


def defaults(root: str) -> dict:
    """Config data for a demo run, placed beneath the user's own config and flags."""
    return {
        # 800 images split 600/100/100: 100 val images are the fewest a temperature is fitted on
        # (components.common.confidence.MIN_CALIBRATION_EXAMPLES; 80/10/10 left 80, and a warning).
        "ingest": {"data_dir": images_dir(root), "splits": {"train": 0.75, "val": 0.125, "test": 0.125}},
        # 64 px is the demo's own size; no pretrained weights exist offline, so the small
        # MobileNetV2 trains from scratch in the trainer's default `scratch` stage.
        "train": {"backbone": "mobilenet_v2", "alpha": 0.35, "image_size": 64, "weights": "none"},
        # The demo's test split holds 100 images, so one image is 1 accuracy point: a 1-point
        # TFLite tolerance would turn a single int8 rounding flip into a blocked push.
        "evaluate": {"max_format_accuracy_drop": 0.05},
    }


def images_dir(root: str) -> str:
    """The class folders live one level down, beside nothing but the demo's completion marker."""
    return os.path.join(artifacts.demo_dir(root), "images")


def ensure_dataset(root: str, log=print) -> str:
    """Generate the demo dataset into `root/demo/images` unless a complete one is already there."""
    dest = artifacts.demo_dir(root)
    if publish.is_complete(dest):
        return images_dir(root)
    from pipeline import dag

    if fileio.exists(dest):  # an earlier generation was interrupted before it was published
        fileio.rmtree(dest)
    log(f"[pipeline] generating the built-in demo dataset in {dest}")
    with publish.publish_dir(dest) as tmp:
        dag.DEMO_IMAGES(os.path.join(tmp, "images"))  # TensorFlow, Pillow: imported only when generating
    return images_dir(root)
