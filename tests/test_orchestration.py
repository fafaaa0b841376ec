"""The DAG's caching and selection: what reruns, what is reused, and one real cached rerun.

Most tests drive `pipeline.run.main` in-process with fast stand-ins for the components
(tests/pipeline_helpers.py: same arguments, same publish-by-rename), so the orchestration's
decisions are checked in milliseconds; the last test reruns a real end-to-end run.
"""

import os
import re

import pytest
from pipeline_helpers import library_noise, pipeline_run, shared_first_run

ALL = ["ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"]


def test_unchanged_rerun_skips_every_component(fake, capsys):
    assert fake() == (0, ALL)
    capsys.readouterr()
    assert fake() == (0, [])
    out = capsys.readouterr().out
    assert all(f"{c}: unchanged, reusing" in out for c in ALL), out


def test_touching_train_config_reruns_train_and_downstream_not_ingest(fake):
    assert fake()[1] == ALL
    assert fake("--set", "train.label_smoothing=0.05") == (0, ["train", "audit", "export", "evaluate", "push"])
    assert fake("--set", "train.label_smoothing=0.05") == (0, [])  # and that result is cached in turn


def test_changed_data_reruns_everything(fake):
    fake()
    (fake.folder / "class_0" / "new.png").write_bytes((fake.folder / "class_0" / "img_000.png").read_bytes() + b"x")
    assert fake()[1] == ALL


def test_touched_files_are_proven_unchanged_by_content(fake, capsys):
    import os

    fake()
    image = fake.folder / "class_1" / "img_000.png"
    os.utime(image, (1_000_000, 1_000_000))  # new modification time, same bytes: the cheap listing changes
    assert fake() == (0, [])
    assert "touched but their content is unchanged" in capsys.readouterr().out
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF  # same size, same time as the listing saw, other content
    image.write_bytes(bytes(data))
    os.utime(image, (2_000_000, 2_000_000))
    assert fake()[1] == ALL


def test_force_reruns_component_and_downstream(fake):
    fake()
    assert fake("--force", "export") == (0, ["export", "evaluate", "push"])


def test_stop_after_and_only(fake, capsys):
    assert fake("--stop-after", "train") == (0, ["ingest", "validate", "tune", "train"])
    code, calls = fake("--only", "push")
    assert code == 2 and calls == [], "push needs an export that no run produced"
    assert "needs the output of export" in capsys.readouterr().err
    assert fake("--only", "export") == (0, ["export"])  # its inputs: the latest train and ingest
    assert fake("--only", "export") == (0, [])
    assert fake("--only", "export", "--force", "export") == (0, ["export"])


def test_only_with_stop_after_is_a_usage_error(fake, capsys):
    assert fake("--only", "train", "--stop-after", "train") == (2, [])
    assert "--only" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_runs_console_holds_only_the_pipelines_own_lines(tmp_path_factory):
    """Issue 10: TensorFlow's C++ lines, Keras and TFMA warnings and Beam's logs stay off the console
    (they are in the run's library.log); training shows one line per epoch in a log, not a progress bar."""
    root, _folder, _args, first = shared_first_run(tmp_path_factory)
    assert library_noise(first.stdout, first.stderr) == [], first.stderr[-3000:]  # a traceback's frames too
    assert "\r" not in first.stdout and "\x1b[" not in first.stdout
    assert re.search(r"^\[train\] stage \w+: up to \d+ epochs", first.stdout, re.M)
    assert re.search(r"^\d+/\d+ - \d+m?s - ", first.stdout, re.M), "Keras's one line per epoch"
    kept = "".join(log.read_text() for log in root.glob("runs/*/library.log"))
    assert "cuda" in kept.lower() or "oneDNN" in kept, "the native lines are kept, not lost"


@pytest.mark.slow
def test_real_rerun_with_nothing_changed_finishes_in_seconds(tmp_path_factory):
    root, _folder, args, first = shared_first_run(tmp_path_factory)
    assert "[pipeline] push: done" in first.stdout
    # Issue 11: a fully cached run loads none of the libraries the components compute with.
    again = pipeline_run(
        "-c",
        "import sys; from pipeline import run; code = run.main(sys.argv[1:]); "
        "print('loaded:', sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', "
        "'tensorflow_model_analysis', 'apache_beam', 'matplotlib'})); sys.exit(code)",
        *args,
        module=None,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    for component in ALL:
        assert f"[pipeline] {component}: unchanged, reusing" in again.stdout, again.stdout
    assert "loaded: []" in again.stdout, again.stdout[-500:]
    # the shared run's folder, root and serving dir are spelled with "-", "[v2]", "*", "?" and "ünï"
    for path in (args[1], args[3], root / "serving" / "classifier" / "1"):
        assert all(c in str(path) for c in ("-", " [v2] ", "*", "?", "ü")) and os.path.isdir(path), path
    seconds = float(re.search(r"complete \(exit code 0\) in ([\d.]+) s", again.stdout).group(1))
    first_seconds = float(re.search(r"complete \(exit code 0\) in ([\d.]+) s", first.stdout).group(1))
    assert seconds < 10 and seconds < first_seconds / 5, (seconds, first_seconds)


def test_train_fraction_keeps_a_stable_stratified_subset_inside_the_input_pipeline(tmp_path):
    """`train.train_fraction` filters the train split by content rank as the trainer reads it: no copy."""
    import numpy as np
    from ingest_format import ImageRecord, write_ingest_dir

    from components.common.ranking import stratified_subset
    from components.train.input import make_dataset
    from schemas.artifacts import Examples

    rng = np.random.default_rng(0)
    records = [
        ImageRecord(split, label, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "png")
        for label in range(3)
        for split, n in (("train", 20 + 4 * label), ("val", 3), ("test", 3))
        for _ in range(n)
    ]
    examples = Examples(write_ingest_dir(tmp_path / "ingest", records, ["a", "b", "c"], tfds_metadata=False))
    manifest = examples.manifest()
    quarter, half = stratified_subset(manifest, 0.25), stratified_subset(manifest, 0.5)
    assert examples.class_counts("train", quarter) == [5, 6, 7]
    assert examples.class_counts("train", half) == [10, 12, 14]
    assert quarter <= half, "a smaller fraction keeps a subset"
    assert quarter <= {r["sha256"] for r in manifest if r["split"] == "train"}, "only train images are cut"

    labels = np.concatenate(
        [y.numpy() for _, y in make_dataset(examples.uri, "train", 8, 4, training=False, keep=quarter)]
    )
    assert np.bincount(labels).tolist() == [5, 6, 7]
    val = np.concatenate([y.numpy() for _, y in make_dataset(examples.uri, "val", 8, 4, training=False)])
    assert len(val) == 9, "val stays whole"


def test_tuning_reruns_for_new_data_or_a_new_train_config_and_is_reused_otherwise(fake):
    assert fake("--tune") == (0, ALL)
    assert fake("--tune") == (0, []), "nothing changed: the search is reused"
    changed = ["tune", "train", "audit", "export", "evaluate", "push"]
    assert fake("--tune", "--set", "train.label_smoothing=0.05") == (0, changed), "the search starts from it"
    (fake.folder / "class_0" / "new.png").write_bytes((fake.folder / "class_0" / "img_000.png").read_bytes() + b"x")
    assert fake("--tune", "--set", "train.label_smoothing=0.05")[1] == ALL
    # tuning off: the train config is no input of the (empty) recipe, so only train and after rerun
    assert fake()[1] == ["tune", "train", "audit", "export", "evaluate", "push"]
    assert fake("--set", "train.label_smoothing=0.01")[1] == ["train", "audit", "export", "evaluate", "push"]
