"""A newcomer's first hour (issue 35): each defect a new user met, as a test that failed before its fix."""

import pytest
from pipeline_helpers import install_fakes

from components.train import families
from pipeline import run as run_mod


def test_a_config_that_names_no_data_is_refused_not_run_as_the_demo(tmp_path, capsys):
    """pipeline.yaml as shipped names no data: a nightly job run with it must not train the demo."""
    config = tmp_path / "nightly.yaml"
    config.write_text("train:\n  batch_size: 16\n")
    root = tmp_path / "root"
    assert run_mod.main(["--config", str(config), "--pipeline-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "names no data" in err and "ingest.data_dir" in err and "Traceback" not in err
    assert not root.exists()


def test_the_demo_says_so_in_its_first_line(tmp_path, monkeypatch, capsys):
    install_fakes(monkeypatch)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    assert run_mod.main(["--pipeline-root", str(tmp_path / "root"), "--stop-after", "ingest"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "running the built-in demo" in first and "--data-dir" in first


@pytest.mark.parametrize("guess", [["--labels", "labels.csv"], ["--project=my-project"], ["--num_workers=4"]])
def test_a_beam_option_only_a_remote_runner_reads_is_warned_about(guess, capsys):
    """`--labels labels.csv` is Dataflow's job labels to Beam: with the DirectRunner it does nothing."""
    assert run_mod.beam_args(["--runner=DirectRunner", *guess]) == ["--runner=DirectRunner", *guess]
    err = capsys.readouterr().err
    flag = guess[0].split("=")[0]
    assert f"warning: {flag} is an Apache Beam option" in err and "DirectRunner ignores it" in err


def test_a_remote_runner_gets_its_options_without_a_warning(capsys):
    run_mod.beam_args(["--runner=DataflowRunner", "--labels", "team=vision", "--project=p"])
    assert "warning" not in capsys.readouterr().err


def test_relative_paths_are_absolute_in_the_effective_config(tmp_path, monkeypatch):
    """docs/troubleshooting.md: paths are absolute in the effective config (the saved config, the report
    and the model card show it); `--weights ../shared/...` stayed relative."""
    monkeypatch.chdir(tmp_path)
    args, _ = run_mod.build_parser().parse_known_args(
        [
            *("--data-dir", "photos/", "--weights", "../weights/backbone.weights.h5"),
            *("--set", "train.exclude=reviewed.csv", "--set", "train.distill={teacher: teacher/model.keras}"),
        ]
    )
    config, demo = run_mod.config_from_args(args)
    assert not demo
    train = config["train"]
    assert train.weights == str(tmp_path.parent / "weights" / "backbone.weights.h5")
    assert train.exclude == str(tmp_path / "reviewed.csv")
    assert train.distill.teacher == str(tmp_path / "teacher" / "model.keras")
    assert config["ingest"].data_dir == str(tmp_path / "photos")
    assert (train.warm_start, config["pipeline"].pipeline_root) == ("auto", str(tmp_path / "pipeline_root"))
    args, _ = run_mod.build_parser().parse_known_args(["--data-dir", "photos", "--weights", "imagenet"])
    assert run_mod.config_from_args(args)[0]["train"].weights == "imagenet"


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: families.get("ResNet50"), "did you mean ResNet50V2?"),
        (lambda: _config({"train": {"batch_sise": 8}}), "train.batch_sise: unknown key (did you mean batch_size?)"),
        (lambda: _config({"trian": {}}), "(did you mean train?)"),
        (lambda: _config({}, [("train", "lable_smoothing", "0.1")]), "(did you mean label_smoothing?)"),
        (
            lambda: _config({"evaluate": {"max_tflite_accuracy_drop": 0.01}}),
            "evaluate.max_tflite_accuracy_drop was renamed: write evaluate.max_format_accuracy_drop",
        ),
        (
            lambda: _config({}, [("export", "tflite_variants", "[a]")]),
            "export.tflite_variants was renamed: write export.formats",
        ),
        (lambda: run_mod.beam_args(["--data_dir=photos"]), "unknown flag --data_dir (did you mean --data-dir?)"),
        (lambda: run_mod.beam_args(["--direct_num_worker=2"]), "(did you mean --direct_num_workers?)"),
    ],
)
def test_a_misspelt_or_renamed_name_gets_the_right_one(build, words):
    from components.common.errors import UsageError

    with pytest.raises(UsageError) as caught:
        build()
    assert words in str(caught.value)


def _config(data, overrides=()):
    from pipeline import config

    return config.build({"ingest": {"data_dir": "photos"}, **data}, list(overrides))


def test_the_docs_name_how_many_backbones_there_are():
    """README and docs/training.md said "any keras.applications backbone"; 20 families are registered."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    for page in ("README.md", "docs/training.md"):
        text = root.joinpath(page).read_text()
        assert "any `keras.applications`" not in text, page
        assert f"{len(families.names())} `keras.applications`" in text, page


@pytest.mark.parametrize("layout", ["one_class", "flat"])
def test_an_obvious_data_mistake_is_told_before_any_backbone_or_file_is_read(layout, fake, tmp_path, capsys):
    """One class, or images straight in the folder: told from one listing (the backbone check, seconds
    of TensorFlow, came first), with nothing written."""
    import shutil

    from components.common.errors import EXIT_DATA

    folder = tmp_path / layout
    if layout == "one_class":
        shutil.copytree(fake.folder / sorted(p.name for p in fake.folder.iterdir())[0], folder / "cats")
    else:
        folder.mkdir()
        for image in list(fake.folder.rglob("*.png")) + list(fake.folder.rglob("*.jpg")):
            shutil.copy(image, folder / f"{image.parent.name}_{image.name}")
    capsys.readouterr()
    code, calls = fake("--data-dir", str(folder), "--weights", str(tmp_path / "missing.weights.h5"))
    err = capsys.readouterr().err
    assert (code, calls) == (EXIT_DATA, []), err
    assert ("only one class folder ('cats')" if layout == "one_class" else "no class sub-folders") in err
    assert "missing.weights.h5" not in err and not fake.root.exists()


def test_the_run_commands_help_and_reference_show_every_default():
    """docs/cli.md showed no default for pipeline.run's flags, and --help did not say that --weights
    downloads ImageNet weights or that the image size is 96."""
    from pipeline import reference

    text = " ".join(run_mod.build_parser().format_help().split())
    assert "default imagenet (a download from Keras's servers" in text
    assert "default 96; config key train.image_size" in text
    rows = {line.split(" | ")[0]: line for line in reference.cli_md().splitlines() if line.startswith("| `--")}
    assert "| `96` |" in rows["| `--image-size` `PX`"]
    assert "| `imagenet` |" in rows["| `--weights` `imagenet\\|none\\|PATH`"]
    assert "| `train=0.8,val=0.1,test=0.1` |" in rows["| `--splits` `train=F,val=F,test=F`"]


def test_the_gate_says_its_accuracy_is_the_exported_models(tmp_path):
    import json

    from components.evaluate.evaluator import EvaluateResult
    from schemas.artifacts import ExportedModel

    for tta, words in (("flip", "the exported SavedModel with test-time flip"), ("none", "the exported SavedModel")):
        (tmp_path / "model_info.json").write_text(json.dumps({"tta": tta}))
        assert ExportedModel(str(tmp_path)).scored_as() == words
    result = EvaluateResult("out", True, [], {"candidate": {"overall": {"accuracy": 1.0}}}, None, 1.0, "X")
    assert result.summary().startswith("BLESSED: accuracy 1.0 of X,")


def test_a_bad_value_names_where_it_was_given(tmp_path, capsys):
    """`train.image_size=8: ...` said the key only: the user typed --image-size, or wrote it in a file."""
    root = str(tmp_path / "root")
    assert run_mod.main(["--data-dir", str(tmp_path), "--pipeline-root", root, "--image-size", "8"]) == 2
    assert "(given as --image-size)" in capsys.readouterr().err
    config = tmp_path / "nightly.yaml"
    config.write_text(f"ingest:\n  data_dir: {tmp_path / 'missing'}\ntrain:\n  batch_size: 0\n")
    assert run_mod.main(["--config", str(config), "--pipeline-root", root]) == 2
    assert f"(given as train.batch_size in {config})" in capsys.readouterr().err
    config.write_text(f"ingest:\n  data_dir: {tmp_path / 'missing'}\n")
    assert run_mod.main(["--config", str(config), "--pipeline-root", root]) == 3
    assert f"check ingest.data_dir in {config}" in capsys.readouterr().err


def test_a_dry_run_says_what_would_happen_and_does_nothing(fake, tmp_path, capsys):
    config = tmp_path / "nightly.yaml"
    config.write_text("train:\n  batch_size: 16\n")
    before = sorted(tmp_path.rglob("*"))
    assert fake("--config", str(config), "--image-size", "64", "--dry-run") == (0, [])
    out = capsys.readouterr().out
    assert sorted(tmp_path.rglob("*")) == before  # no root, lock or lineage store
    assert f"train.batch_size: 16  (train.batch_size in {config})" in out
    assert "train.image_size: 64  (--image-size)" in out and "train.weights: none  (--weights)" in out
    assert "train.label_smoothing" not in out  # a default
    assert "  ingest: run (nothing in" in out and "  push: run (nothing in" in out
    assert fake()[0] == 0  # a real run; then nothing has changed
    capsys.readouterr()
    assert fake("--dry-run")[1] == []
    out = capsys.readouterr().out
    assert "  ingest: reuse " in out and "  train: reuse " in out and "  push: reuse " in out
    assert fake("--dry-run", "--force", "train")[1] == []
    out = capsys.readouterr().out
    assert "  ingest: reuse " in out and "  train: run (forced)" in out and "  export: run (after train)" in out


@pytest.mark.parametrize(
    "module, args, close",
    [
        ("pipeline.predict", ["model", "photo.jpg", "--serving_dir", "s"], "--serving-dir"),
        ("pipeline.validate", ["model", "data", "--min-acuracy", "0.9"], "--min-accuracy"),
    ],
)
def test_the_other_commands_suggest_the_flag_meant(module, args, close, capsys):
    import importlib

    with pytest.raises(SystemExit) as caught:
        importlib.import_module(module).parse_args(args)
    assert caught.value.code == 2
    assert f"(did you mean {close}?)" in capsys.readouterr().err
