"""Config validation: every invalid config is a usage error (exit 2) that names the key and the value.

These run `pipeline.run.main` in-process: validation happens before anything is locked or run,
so no subprocess is needed to see the exit code and the message a user gets.
"""

import pytest
import yaml

from pipeline import config as config_mod
from pipeline import run as run_mod


def _main(tmp_path, capsys, yaml_data=None, argv=()):
    args = ["--pipeline-root", str(tmp_path / "root"), "--data-dir", str(tmp_path / "data")]
    if yaml_data is not None:
        path = tmp_path / "pipeline.yaml"
        path.write_text(yaml.safe_dump(yaml_data))
        args += ["--config", str(path)]
    code = run_mod.main(args + list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "yaml_data, argv, expected",
    [
        ({"train": {"batch_sise": 8}}, (), ["train.batch_sise", "unknown key", "batch_size"]),
        ({"trainer": {"epochs": 1}}, (), ["'trainer'", "allowed sections"]),
        ({"train": {"batch_size": "eight"}}, (), ["train.batch_size", "'eight'", "integer"]),
        ({"ingest": {"splits": {"train": 0.7, "val": 0.1, "test": 0.1}}}, (), ["splits", "sum", "0.9"]),
        ({"train": {"stages": [{"name": "head", "epochs": -1, "learning_rate": 0.001}]}}, (), ["epochs=-1", "from 1"]),
        (None, ("--epochs", "-2"), ["epochs=-2", "from 1"]),
        (None, ("--set", "train.dropout=1.5"), ["train.dropout=1.5", "[0, 1)"]),
        (None, ("--set", "train.nope=1"), ["train.nope", "unknown key"]),
        (None, ("--set", "trainbatch=1"), ["SECTION.KEY=VALUE"]),
        (None, ("--splits", "train=0.5,val=0.2,test=0.2"), ["sum to 0.9"]),
        (None, ("--image-size", "4"), ["train.image_size=4", "16 to 1024"]),
        (
            None,
            ("--set", "train.stages=[{name: head, epochs: 1, learning_rate: fast}]"),
            ["train.stages[0].learning_rate", "'fast'", "a number"],
        ),
    ],
)
def test_invalid_config_is_a_usage_error_naming_key_and_value(tmp_path, capsys, yaml_data, argv, expected):
    code, err = _main(tmp_path, capsys, yaml_data, argv)
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "root").exists(), "a rejected config must not start a run"


def test_threshold_above_one_is_a_usage_error(tmp_path, capsys):
    cls = config_mod.section_class("evaluate")
    import dataclasses

    names = [f.name for f in dataclasses.fields(cls) if "accuracy" in f.name and "min" in f.name]
    assert names, f"no minimum-accuracy threshold among {[f.name for f in dataclasses.fields(cls)]}"
    code, err = _main(tmp_path, capsys, {"evaluate": {names[0]: 1.5}})
    assert code == 2 and names[0] in err and "1.5" in err, err


def test_yaml_values_are_typed_and_cli_overrides_win(tmp_path):
    data = {
        "train": {
            "batch_size": 8,
            "image_size": 64,
            "stages": [{"name": "scratch", "epochs": 2, "learning_rate": 0.01, "unfreeze": "all"}],
        },
        "ingest": {"data_dir": str(tmp_path)},
    }
    cfg = config_mod.build(
        data,
        [
            ("train", "batch_size", "16"),
            ("train", "stages", "[{name: s, epochs: 1, learning_rate: 0.1, unfreeze: 0.5}]"),
        ],
    )
    assert cfg["train"].batch_size == 16
    assert cfg["train"].image_size == 64
    stage = cfg["train"].stages[0]
    assert (stage.epochs, stage.unfreeze) == (1, 0.5)  # "0.5" for Union[str, float] is the number
    assert yaml.safe_load(cfg.to_yaml())["train"]["batch_size"] == 16


def test_the_example_config_is_every_default():
    """pipeline.yaml (generated: tests/test_docs_generated.py keeps it fresh) sets every key of every
    section at its default, so a nightly job built from it trains as the defaults do: transfer
    learning from pretrained weights, not a model from scratch (issue 35: it set `weights: none`)."""
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "pipeline.yaml"
    data = config_mod.read_yaml(str(path))
    assert set(data) == set(config_mod.section_classes())
    for section, cls in config_mod.section_classes().items():
        assert config_mod.build_dataclass(cls, data[section], section) == cls(), section
    cfg = config_mod.build(config_mod.merge(data, {"ingest": {"data_dir": "photos"}}))
    assert cfg["train"].weights == "imagenet"
    assert [s.name for s in cfg["train"].effective_stages()] == ["head", "finetune"]


def test_scientific_notation_in_yaml_is_a_number():
    """PyYAML (YAML 1.1) reads `2e-3` as a string; a float key still takes it as the number."""
    stages = "[{name: head, epochs: 1, learning_rate: 2e-3}]"
    base = {"ingest": {"data_dir": "images"}, "train": {"weights": "w.keras"}}
    from_yaml = config_mod.build({**base, "train": {"stages": yaml.safe_load(stages), "weights": "w.keras"}})
    from_flag = config_mod.build(base, [("train", "stages", stages)])
    assert from_yaml["train"].stages[0].learning_rate == from_flag["train"].stages[0].learning_rate == 0.002
