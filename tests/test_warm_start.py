"""Issue 34, items 2 and 3: a rerun starts from the model in production when it is compatible, and says
why not; the audit keeps the frozen backbone's embeddings and embeds only images it has not seen.

A small two-stage run on a synthetic ingest (32 px, a random MobileNetV2 backbone saved as the
"pretrained" weights) is the model in production; a later run warm-starts from it with a class
added and one removed. Every reason to fall back to the full recipe (another input size or
backbone, too many warm starts in a row, too much changed data, warm start off) is checked on the
decision itself; the trainer prints and records whichever reason it got (the first run's "no model
in production"). The whole pipeline then warm-starts a rerun, exports it and gates it against the
model in production.
"""

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest

import components.common.layers  # noqa: F401  (registers custom layers before loading model.keras)
from components.common.trained_model import HEAD_DENSE, load_model
from components.train import run, warm_start
from components.train.config import StageConfig
from schemas.artifacts import Model
from tests.ingest_format import write_synthetic_ingest_dir
from tests.test_train_outputs import backbone_weights_file, small_config

pytestmark = pytest.mark.slow  # each test trains (seconds each at 32 px)


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """(tmp, weights file, the first train output: trained with the full recipe)."""
    tmp = tmp_path_factory.mktemp("warm")
    ingest = write_synthetic_ingest_dir(
        tmp / "ingest1", per_split={"train": 8, "val": 4, "test": 4}, tfds_metadata=False
    )
    weights = backbone_weights_file(tmp / "backbone.weights.h5")
    result = run(small_config(weights), ingest, str(tmp / "train1"))
    return tmp, weights, result.output_dir


def _info(train_dir) -> dict:
    return Model(train_dir).info()


def test_a_first_run_uses_the_full_recipe_and_lists_its_training_images(production):
    tmp, _weights, first = production
    record = _info(first)["warm_start"]
    assert record["source"] is None and "no model in production" in record["reason"]
    listed = Model(first).text(Model.TRAIN_IMAGES).splitlines()
    assert len(listed) == 3 * 8 and listed == sorted(listed)
    assert {line.split("\t")[1] for line in listed} == {"cat", "dog", "fish"}
    assert [s["name"] for s in Model(first).history()["stages"]] == ["head", "finetune"]


def test_a_warm_start_keeps_the_known_classes_rows_and_adds_and_drops_classes(production, tmp_path):
    _tmp, weights, first = production
    # "ant" is new (and sorts first: every known class moves one row down); "fish" is gone.
    ingest = write_synthetic_ingest_dir(
        tmp_path / "ingest", labels=("ant", "cat", "dog"), per_split={"train": 8, "val": 4, "test": 4}, seed=1
    )
    config = small_config(weights, full_retrain_if_changed=1.0)  # these synthetic images are all new
    result = run(config, ingest, str(tmp_path / "train"), warm_start_dir=first)
    record = _info(result.output_dir)["warm_start"]
    assert record["source"] == first and record["generation"] == 1, record
    assert record["classes_added"] == ["ant"] and record["classes_removed"] == ["fish"]
    assert [s.name for s in result.stages] == [s.name for s in config.effective_warm_start_stages()] == ["warm"]

    # Where it started: the known classes' head columns are the first model's, moved to their new rows.
    from components.train.backbones import build_backbone
    from components.train.model import assemble, build_head

    preprocessing, backbone = build_backbone("mobilenet_v2", 32, "none", alpha=0.35)
    model = assemble(preprocessing, backbone, build_head(3, 0.2), 32, backbone_trains_bn=False)
    changes = warm_start.load_into(model, first, ["ant", "cat", "dog"])
    assert changes == {"kept": ["cat", "dog"], "added": ["ant"], "removed": ["fish"]}
    old_kernel, _ = load_model(Model(first).model_path()).get_layer(HEAD_DENSE).get_weights()
    kernel, _ = model.get_layer(HEAD_DENSE).get_weights()
    np.testing.assert_array_equal(kernel[:, 1], old_kernel[:, 0])  # cat: row 0 there, 1 here
    np.testing.assert_array_equal(kernel[:, 2], old_kernel[:, 1])  # dog


def _copy_with_info(first: str, dest, **info_changes) -> str:
    shutil.copytree(first, dest)
    path = dest / Model.INFO
    path.write_text(json.dumps({**json.loads(path.read_text()), **info_changes}))
    return str(dest)


def test_each_reason_to_retrain_fully_is_said(production, tmp_path):
    _tmp, weights, first = production
    config = small_config(weights)
    labels = ["cat", "dog", "fish"]
    same = set(Model(first).text(Model.TRAIN_IMAGES).splitlines())

    def decided(source, images=same, **changes):
        return warm_start.decide(dataclasses.replace(config, **changes), source, labels, images)

    assert decided(first).source == first
    assert "image_size [32, 32] there, [40, 40] now" in decided(first, image_size=40).reason
    assert "backbone" in decided(first, backbone="efficientnet_b0", alpha=None).reason
    assert decided(first, warm_start="none").reason == "train.warm_start is none"
    assert "from scratch" in decided(first, weights="none", stages=(StageConfig("s", 1, 1e-3, "all"),)).reason
    assert "no model in production" in decided(None).reason
    sixth = _copy_with_info(first, tmp_path / "sixth", warm_start={"source": "x", "reason": "", "generation": 6})
    assert decided(sixth).source is None and "6 warm starts in a row" in decided(sixth).reason
    fifth = _copy_with_info(first, tmp_path / "fifth", warm_start={"source": "x", "reason": "", "generation": 5})
    assert decided(fifth).source == fifth and decided(fifth).generation == 6
    grown = same | {f"{i:064x}" for i in range(3)}  # 3 new, 27 in all: 11.1% changed
    assert (
        decided(first, grown).source is None and "11.1% of the training images changed" in decided(first, grown).reason
    )
    assert decided(first, grown, full_retrain_if_changed=0.2).source == first
    sha, label = sorted(same)[0].split("\t")
    relabelled = (same - {f"{sha}\t{label}"}) | {f"{sha}\tdog" if label != "dog" else f"{sha}\tcat"}
    assert decided(first, relabelled).changed_fraction == pytest.approx(2 / 25)  # one out, one in, 25 lines


def test_the_pipeline_warm_starts_a_rerun_with_a_class_added_and_one_removed_and_gates_it(tmp_path):
    from tests.pipeline_helpers import FAST_ARGS, make_folder, pipeline_run

    folder = make_folder(tmp_path / "images", classes=3, per_class=12)
    weights = backbone_weights_file(tmp_path / "backbone.weights.h5")
    args = [a if a != "none" else weights for a in FAST_ARGS]  # --weights: the "pretrained" file
    root = tmp_path / "root"
    common = (
        "--data-dir",
        folder,
        "--pipeline-root",
        root,
        *args,
        "--set",
        "evaluate.max_accuracy_drop_vs_baseline=1.0",
        "--set",
        "export.formats=[tflite_float32]",
        "--set",
        "audit.enabled=false",  # not what this test is about
    )
    first = pipeline_run(*common)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[train] full recipe: no model in production" in first.stdout

    shutil.rmtree(folder / "class_2")  # a class removed
    make_folder(tmp_path / "new", classes=1, per_class=12, seed=5)
    shutil.move(tmp_path / "new" / "class_0", folder / "class_00")  # one added
    # The gate cannot score the model in production on a class set it does not have, and by default
    # refuses to bless without that comparison (the same for any change of classes, warm or not).
    second = pipeline_run(
        *common, "--set", "train.full_retrain_if_changed=1.0", "--set", "evaluate.block_on_unloadable_baseline=false"
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert re.search(r"\[train\] warm start from \S*train\S*: warm start 1 of at most 6", second.stdout), second.stdout
    for step in ("export", "evaluate", "push"):
        assert f"[pipeline] {step}: done in" in second.stdout, step
    run_id = re.search(r"\[pipeline\] run (\S+) in", second.stdout).group(1)
    info = json.loads((root / "train" / run_id / Model.INFO).read_text())
    assert info["warm_start"]["classes_added"] == ["class_00"] and info["warm_start"]["classes_removed"] == ["class_2"]
    blessing = json.loads((root / "evaluate" / run_id / "blessing.json").read_text())
    assert any("baseline" in check["name"] for check in blessing["checks"]), blessing["checks"]


def test_the_audit_embeds_each_image_once_with_the_frozen_backbone(production, tmp_path):
    from components.audit import AuditConfig
    from components.audit import run as audit
    from schemas.artifacts import Audit

    tmp, _weights, first = production
    ingest, cache = str(tmp / "ingest1"), str(tmp_path / "cache")
    config = AuditConfig(nearest="exact", embed_with="backbone")
    runs = [audit(config, first, ingest, str(tmp_path / f"audit{i}"), cache_dir=cache) for i in range(2)]
    summaries = [Audit(r.output_dir).json(Audit.SUMMARY) for r in runs]
    assert [s["embeddings"]["reused"] for s in summaries] == [0, runs[0].examples]
    assert "backbone_weights" in summaries[0]["embeddings"]["with"] and summaries[0]["embeddings"]["note"] is None
    for name in (Audit.LABEL_ISSUES, Audit.NEAR_DUPLICATES):  # kept embeddings give the same answers
        assert Audit(runs[0].output_dir).text(name) == Audit(runs[1].output_dir).text(name)
    assert runs[0].probe_accuracy == runs[1].probe_accuracy
    trained = audit(AuditConfig(nearest="exact"), first, ingest, str(tmp_path / "audit_trained"), cache_dir=cache)
    assert Audit(trained.output_dir).json(Audit.SUMMARY)["embeddings"]["reused"] == 0  # another embedder
