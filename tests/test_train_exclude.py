"""`train.exclude`: train images named by sha256 in a CSV are left out; bad lists fail before work."""

import json

import pytest

from components.common.errors import UsageError
from components.train import TrainConfig, exclude, run
from components.train.config import StageConfig
from schemas.artifacts import Examples
from tests.ingest_format import write_synthetic_ingest_dir


def _csv(path, shas, column="sha256"):
    path.write_text(f"rank,{column},given_label\n" + "".join(f"{i},{s},a\n" for i, s in enumerate(shas)))
    return str(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read it"),
        ("path,label\nx.png,a\n", "no 'sha256' column"),
        ("sha256\nnot-a-hash\n", r"line 2: 'not-a-hash' is not a sha256"),
    ],
)
def test_a_bad_list_is_a_usage_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "issues.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as e:
        exclude.read(str(path))
    assert "train.exclude=" in str(e.value)


@pytest.mark.slow  # trains: the full tier only
def test_listed_train_images_are_left_out_and_val_test_stay_whole(tmp_path):
    ingest = write_synthetic_ingest_dir(tmp_path / "ingest", fmt="mixed", shards_per_split=1, tfds_metadata=False)
    rows = Examples(str(ingest)).manifest()
    train = [r["sha256"] for r in rows if r["split"] == "train"]
    test = [r["sha256"] for r in rows if r["split"] == "test"]
    listed = _csv(tmp_path / "issues.csv", [s.upper() for s in train[:3]] + test[:2] + ["f" * 64])
    config = TrainConfig(
        image_size=32,
        weights="none",
        batch_size=8,
        exclude=listed,
        bn_recalibration_batches=0,
        stages=(StageConfig("scratch", epochs=1, learning_rate=1e-3, unfreeze="all"),),
    )
    run(config, str(ingest), str(tmp_path / "train"))
    info = json.loads((tmp_path / "train" / "model_info.json").read_text())
    assert info["excluded_train_examples"] == 3, "test images and unknown hashes are not counted"
    counts = info["examples_per_split"]
    assert counts["train"] == len(train) - 3
    assert counts["test"] == len(test) and counts["val"] == sum(r["split"] == "val" for r in rows)


def test_pipeline_retrains_when_the_list_changes_not_when_rerun(fake, tmp_path):
    listed = tmp_path / "issues.csv"
    _csv(listed, ["a" * 64])
    all_nodes = ["ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"]
    assert fake("--set", f"train.exclude={listed}") == (0, all_nodes)
    assert fake("--set", f"train.exclude={listed}") == (0, [])
    _csv(listed, ["b" * 64])  # same path, other content
    assert fake("--set", f"train.exclude={listed}") == (0, ["train", "audit", "export", "evaluate", "push"])


def test_pipeline_refuses_a_missing_list_before_the_ingest(fake, tmp_path, capsys):
    code, calls = fake("--set", f"train.exclude={tmp_path / 'missing.csv'}")
    assert code == 2 and calls == []
    assert "train.exclude=" in capsys.readouterr().err
