"""The reliability catalogue: hostile folders, damaged state, faults and CLI misuse (issue 9).

One test per case, each asserting the exit code (or the documented outcome), the key words of the
message, that nothing partial was published or reused, and the accounting invariant where an
ingest ran. Each docstring names the case; docs/troubleshooting.md lists them.
"""

import os

import pytest
from pipeline_helpers import pipeline_run

from components.common.errors import EXIT_DATA, EXIT_USAGE, DataError, UsageError
from components.ingest import IngestConfig, run
from tests.image_fixtures import rgb_jpeg_bytes, write_file

ALL = ["ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"]


def make_tree(root, classes=("cats", "dogs"), per_class=3):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_file(os.path.join(root, name, f"{i}.jpg"), rgb_jpeg_bytes(32, 32, seed=100 * c + i))
    return root


# --- silently wrong or hanging ---------------------------------------------------------------------


def test_a_new_push_destination_is_pushed_to_not_reused(fake, tmp_path):
    """Issue 9, item 1: the destination is part of the push's fingerprint and of the baseline lookup."""
    assert fake()[1] == ALL
    assert (fake.root / "serving" / "classifier" / "1").is_dir()
    other = tmp_path / "other-serving"
    assert fake("--serving-dir", str(other)) == (0, ["push"]), "evaluate reused, push runs for the new place"
    assert (other / "classifier" / "1").is_dir()
    assert fake("--serving-dir", str(other), "--model-name", "prod") == (0, ["push"])
    assert (other / "prod" / "1").is_dir()
    assert fake("--serving-dir", str(other) + "/", "--model-name", "prod") == (0, []), "same place, other spelling"


def test_the_same_folder_spelled_another_way_is_the_same_input(fake, monkeypatch):
    """Issue 9, item 11: a trailing slash or a relative path used to re-ingest, retrain and push again."""
    assert fake()[1] == ALL
    assert fake("--data-dir", str(fake.folder) + "/") == (0, [])
    monkeypatch.chdir(fake.folder.parent)
    assert fake("--data-dir", fake.folder.name) == (0, [])


def test_named_pipe_is_ignored_not_read(tmp_path):
    """Issue 9, item 4: a FIFO among the images used to block the ingest forever, holding the lock."""
    data = make_tree(str(tmp_path / "data"))
    os.mkfifo(os.path.join(data, "cats", "pipe.jpg"))
    result = run(IngestConfig(data_dir=data), str(tmp_path / "out"))
    assert result.ignored == {"not_a_regular_file": 1} and result.kept == 6
    assert result.found == result.kept + sum(result.rejected.values()) + sum(result.ignored.values())


def test_orchestrator_listing_tolerates_what_the_ingest_tolerates(tmp_path):
    """Issue 9, item 5: the fingerprint's listing is the ingest's scan (non-UTF-8 names, FIFOs), stat only."""
    from components.ingest import scan

    data = make_tree(str(tmp_path / "data"))
    os.mkfifo(os.path.join(data, "cats", "pipe.jpg"))
    bad_name = os.path.join(data.encode(), b"dogs", b"caf\xe9.jpg")
    with open(bad_name, "wb") as f:
        f.write(rgb_jpeg_bytes(32, 32, seed=7))
    listing = scan.folder_listing(data)
    assert "cats/pipe.jpg" in listing and "dogs/caf\\xe9.jpg" in listing and len(listing) == 8


def test_too_few_images_for_every_split_says_how_many_are_needed(tmp_path):
    """Issue 9, item 6: 2 classes x 2 images used to end in TFDS's ValueError about splits."""
    data = make_tree(str(tmp_path / "data"), per_class=2)
    with pytest.raises(DataError) as caught:
        run(IngestConfig(data_dir=data), str(tmp_path / "out"))
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_DATA and "would hold no image" in message
    assert "at least 3 usable images" in message and "has 2" in message and "--splits" in message
    assert not os.path.exists(tmp_path / "out") and not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


@pytest.mark.parametrize("name", [" ", " padded", "new\nline", "tab\there"])
def test_class_names_that_cannot_be_a_label_line_are_data_errors(tmp_path, name):
    """Issue 9, item 7: a blank class name trained into IndexError; a newline wrote a 4-line labels.txt."""
    data = make_tree(str(tmp_path / "data"), per_class=3)
    os.makedirs(os.path.join(data, name))
    for i in range(3):
        write_file(os.path.join(data, name, f"{i}.jpg"), rgb_jpeg_bytes(32, 32, seed=900 + i))
    with pytest.raises(DataError, match="rename the folder") as caught:
        run(IngestConfig(data_dir=data), str(tmp_path / "out"))
    assert repr(name) in str(caught.value) and caught.value.exit_code == EXIT_DATA
    assert not os.path.exists(tmp_path / "out")


def test_unreadable_subfolder_stops_the_orchestrator_with_the_ingests_message(fake, monkeypatch, capsys):
    """Item 5: the folder fingerprint crashed with PermissionDeniedError before the ingest could judge it."""
    real_scandir = os.scandir

    def scandir(path):  # tests run as root, which reads chmod-000 folders anyway: the OS error is simulated
        if str(path).endswith("class_1"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert fake() == (EXIT_DATA, [])
    err = capsys.readouterr().err
    assert "cannot read the folder" in err and "class_1" in err and "permissions" in err and "Traceback" not in err


# --- damaged state and CLI misuse ---------------------------------------------------------------------


def test_corrupt_lineage_store_names_the_file_and_the_remedy(fake):
    """Item 10: a corrupt metadata.sqlite gave a raw traceback (runs list) or an unnamed error (run)."""
    assert fake()[0] == 0
    store = fake.root / "metadata.sqlite"
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(store) + suffix):
            os.remove(str(store) + suffix)
    store.write_bytes(b"this is not a database" * 100)
    code, calls = fake()
    assert (code, calls) == (EXIT_DATA, []), "nothing runs on a damaged lineage"
    listing = pipeline_run("list", "--pipeline-root", fake.root, module="pipeline.runs")
    assert listing.returncode == EXIT_DATA and "Traceback" not in listing.stderr
    assert str(store) in listing.stderr and "move it aside" in listing.stderr


def test_ambiguous_run_prefix_says_so(fake):
    """Item 12: `runs show 2026` (a prefix of several runs) said "no run"."""
    from pipeline import metadata, runs

    assert fake()[0] == 0 and fake()[0] == 0
    store = metadata.Store(str(fake.root / "metadata.sqlite"))
    try:
        with pytest.raises(LookupError, match="2 runs start with '20'"):
            runs.show_run(store, "20")
        assert runs.show_run(store, store.runs()[0]["id"][:-1]).startswith("run ")
    finally:
        store.close()


# --- damaged artifacts: never reused ------------------------------------------------------------------


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    """The real ingest and validation, in-process, on a small folder cut into several shards per split."""
    from pipeline import run as run_mod

    folder = make_tree(str(tmp_path / "images"), per_class=12)
    root = tmp_path / "root"
    args = [
        "--data-dir",
        folder,
        "--pipeline-root",
        str(root),
        "--weights",
        "none",
        "--set",
        "ingest.shard_bytes=2048",
        "--set",
        "validate.min_examples_per_class=1",
    ]

    def main(*extra):
        return run_mod.main(args + (list(extra) if "--only" in extra else ["--stop-after", "validate", *extra]))

    assert main() == 0
    main.root, main.folder = root, folder
    return main


def _only_ingest(root):
    outputs = [p for p in (root / "ingest").iterdir() if not p.name.startswith(".")]
    assert len(outputs) == 1
    return outputs[0]


def _ingests(root):
    return sorted(p for p in (root / "ingest").iterdir() if not p.name.startswith("."))


def _reingested_in_full(ingested, capsys, words):
    before = _ingests(ingested.root)
    code = ingested()
    out = capsys.readouterr().out
    assert code == 0 and "WARNING ingest: the earlier output" in out and words in out, out[-2000:]
    (newest,) = set(_ingests(ingested.root)) - set(before)  # run ids of one second do not sort by time
    from schemas.artifacts import Examples

    examples = Examples(str(newest))
    assert examples.damage(deep=True) == "" and len(examples.manifest()) == 24
    stats = examples.stats()
    assert stats["files"]["kept"] + stats["files"]["rejected"] + stats["files"]["ignored"] == stats["files"]["found"]


def test_deleted_shard_is_not_reused(ingested, capsys):
    """Item 2: with half the train shards deleted, the rerun said "ingest: unchanged" and trained on half."""
    shards = sorted(_only_ingest(ingested.root).glob("data/*/*/*-train.tfrecord-*"))
    assert len(shards) >= 2
    shards[0].unlink()
    _reingested_in_full(ingested, capsys, "is missing")


def test_truncated_shard_is_not_reused(ingested, capsys):
    """Item 2: a truncated shard gave DataLossError, with no file named, on every rerun."""
    shard = sorted(_only_ingest(ingested.root).glob("data/*/*/*-train.tfrecord-*"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    _reingested_in_full(ingested, capsys, "truncated or changed")


def test_missing_labels_file_is_not_reused(ingested, capsys):
    (_only_ingest(ingested.root) / "labels.txt").unlink()
    _reingested_in_full(ingested, capsys, "labels.txt is missing")


def test_changed_file_of_the_same_size_is_caught_by_verify(ingested, capsys):
    labels = _only_ingest(ingested.root) / "labels.txt"
    labels.write_text(labels.read_text().upper())
    assert ingested() == 0 and "unchanged, reusing" in capsys.readouterr().out, "sizes alone cannot see it"
    assert ingested("--verify") == 0
    assert "sha256 mismatch" in capsys.readouterr().out


def test_truncated_previous_manifest_stops_instead_of_moving_images_between_splits(ingested, capsys):
    """Item 3: a truncated manifest.csv let a known image move from train to val without a word."""
    manifest = _only_ingest(ingested.root) / "manifest.csv"
    manifest.write_text("".join(manifest.read_text().splitlines(keepends=True)[:10]))
    for name in ("cats", "dogs"):  # new images: the ingest must run, and would re-split
        for i in range(4):
            write_file(os.path.join(ingested.folder, name, f"new_{i}.jpg"), rgb_jpeg_bytes(32, 32, seed=500 + i))
    assert ingested() == EXIT_DATA
    err = capsys.readouterr().err
    assert "manifest.csv" in err and "is damaged" in err and "Restore" in err
    assert len(_ingests(ingested.root)) == 1, "nothing new was published"


def test_damaged_serving_version_is_pushed_again(fake, capsys):
    """A pushed version whose variables were removed is not "unchanged": the push runs again."""
    assert fake()[1] == ALL
    version = fake.root / "serving" / "classifier" / "1"
    (version / "variables" / "variables.data-00000-of-00001").unlink()
    capsys.readouterr()
    assert fake() == (0, ["push"])
    assert "WARNING push: the earlier output" in capsys.readouterr().out
    assert (fake.root / "serving" / "classifier" / "2" / "variables" / "variables.data-00000-of-00001").exists()


def test_only_with_a_damaged_input_stops_naming_it(ingested, capsys):
    """--only takes its inputs from the lineage: a damaged one is never used."""
    (_only_ingest(ingested.root) / "stats.json").unlink()
    assert ingested("--only", "validate", "--force", "validate") == EXIT_DATA
    err = capsys.readouterr().err
    assert "the output of ingest" in err and "stats.json is missing" in err and "--stop-after ingest" in err


# --- faults during a run ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["deleted", "replaced_by_a_folder", "rewritten"])
def test_file_changed_after_it_was_read_is_exit_3(tmp_path, monkeypatch, fault):
    """Item 8: a file deleted or replaced by a folder after it was inspected gave Beam's traceback (exit 1).
    Issue 11: each file is read once, so a change after that read is caught by its size and mtime."""
    from components.ingest import transforms

    folder = make_tree(str(tmp_path / "images"), per_class=4)
    reads, original = [], transforms._read

    def read(path):  # while the last of the 8 files is read, the first one read changes
        reads.append(path)
        if len(reads) == 8:
            victim = reads[0]
            if fault == "deleted":
                os.remove(victim)
            elif fault == "replaced_by_a_folder":
                os.remove(victim)
                os.mkdir(victim)
            else:
                write_file(victim, rgb_jpeg_bytes(32, 32, seed=999))
        return original(path)

    monkeypatch.setattr(transforms, "_read", read)
    with pytest.raises(DataError, match="changed during the ingest") as caught:
        run(
            IngestConfig(data_dir=folder, splits={"train": 0.5, "val": 0.25, "test": 0.25}, threads=1),
            str(tmp_path / "out"),
        )
    victim = os.path.relpath(reads[0], folder)
    assert caught.value.exit_code == EXIT_DATA and f"1 file(s) changed during the ingest (e.g. {victim!r})" in str(
        caught.value
    )
    assert not os.path.exists(tmp_path / "out") and not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_predict_reports_a_dangling_link_in_its_row_and_an_url_as_unreadable(tmp_path):
    """Item 9: a dangling symlink made pipeline.predict predict nothing (exit 1); an https:// path printed
    TensorFlow's UnimplementedError."""
    from pipeline import predict

    folder = tmp_path / "images"
    folder.mkdir()
    os.symlink(tmp_path / "gone.jpg", folder / "dangling.jpg")
    assert predict.image_paths([str(folder)]) == [str(folder / "dangling.jpg")]
    write_file(str(folder / "good.jpg"), rgb_jpeg_bytes(32, 32, seed=1))

    class Halves:  # a stand-in model: the rows, not the scores, are under test
        def answer_encoded(self, images):
            return [[0.5, 0.5]] * len(images), ["a"] * len(images)

    rows = predict._score(Halves(), [str(folder / "dangling.jpg"), str(folder / "good.jpg")])
    assert rows[0][1] is None and rows[0][2].startswith("cannot read the file")
    assert rows[1][1] == ([0.5, 0.5], "a") and rows[1][2] is None, "the other images are still predicted"
    with pytest.raises(DataError, match="cannot be read .* download URLs first") as caught:
        predict.image_paths(["https://example.invalid/cat.jpg"])
    assert caught.value.exit_code == EXIT_DATA


# --- checked before any work (exit 2, nothing ingested) --------------------------------------------------


def _preflight(fake, tmp_path, *args):
    import time

    started = time.monotonic()
    code, calls = fake(*args)
    return code, calls, time.monotonic() - started


@pytest.mark.parametrize(
    "args, words",
    [
        (("--backbone", "resnet51"), "resnet51"),
        (("--backbone", "efficientnet_b0", "--alpha", "0.5", "--image-size", "32"), "width multiplier"),
        (("--backbone", "xception", "--image-size", "64"), "at least 71x71"),
        (("--backbone", "resnet50_v2", "--weights", "{weights}"), "does not fit the backbone ResNet50V2"),
        (("--weights", "{tmp}/missing.weights.h5"), "not found"),
        (("--weights", "{tmp}/corrupt.keras"), "damaged or not a .keras file"),
        (
            (
                "--set",
                "train.stages=[{name: head, epochs: 1, learning_rate: 0.01, unfreeze: block_99}]",
                "--weights",
                "{weights}",
            ),
            "no block of that name",
        ),
        (("--serving-dir", "{tmp}/a-file/serving"), "not writable"),
        (("--pipeline-root", "{data}/pipeline_root"), "inside the data folder"),
    ],
)
def test_mistakes_that_need_no_data_stop_before_the_ingest(fake, tmp_path, args, words, capsys):
    """Item 12: an unknown backbone or a bad weights file was reported only after ingest and validate ran;
    a corrupt .keras file was reported as "File not found"; a pipeline root inside the data folder was
    ingested as a class."""
    import keras

    (tmp_path / "corrupt.keras").write_bytes(b"not a zip archive")
    (tmp_path / "a-file").write_text("a file, not a folder")
    weights = tmp_path / "random.weights.h5"
    keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None, input_shape=(96, 96, 3)).save_weights(
        weights
    )
    places = {"{tmp}": str(tmp_path), "{data}": str(fake.folder), "{weights}": str(weights)}
    for place, value in places.items():
        args = [a.replace(place, value) for a in args]
    capsys.readouterr()
    before = sorted(tmp_path.rglob("*"))
    code, calls, seconds = _preflight(fake, tmp_path, *args)
    err = capsys.readouterr().err
    assert (code, calls) == (EXIT_USAGE, []), err
    assert words in err and "Traceback" not in err
    # Issue 35: a refusal leaves the disk as it was (it wrote the root's lock, lineage store and run
    # folder, inside the data folder when the root was there, where the next ingest took it for a class).
    assert sorted(tmp_path.rglob("*")) == before
    assert seconds < 60


@pytest.mark.slow
def test_sigterm_stops_gracefully_records_interrupted_and_releases_the_lock(tmp_path):
    """Item 12: SIGTERM (a scheduler's timeout) left the run marked "running"."""
    import signal

    from pipeline_helpers import fake_run_popen, make_folder, read_log

    from pipeline import metadata

    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    root, log = tmp_path / "root", tmp_path / "calls.jsonl"
    args = ("--data-dir", folder, "--pipeline-root", root, "--weights", "none")
    proc = fake_run_popen(*args, log_path=log, hang_in="train")
    for line in proc.stdout:
        if line.strip() == "inside train":
            break
    else:
        raise AssertionError(proc.stderr.read())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err, err
    store = metadata.Store(str(root / "metadata.sqlite"))
    try:
        run = store.runs()[0]
        assert (run["status"], run["exit_code"]) == ("interrupted", 143)
        assert {e["component"]: e["status"] for e in store.executions(run["id"])}["train"] == "interrupted"
    finally:
        store.close()
    again = fake_run_popen(*args, log_path=log)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err  # the lock was released
    assert [c["component"] for c in read_log(log)][-5:] == ["train", "audit", "export", "evaluate", "push"]


def test_empty_class_folder_is_a_validation_warning(tmp_path):
    """Item 12: an empty class folder was dropped without a word."""
    from components.validate import ValidateConfig
    from components.validate import run as validate

    data = make_tree(str(tmp_path / "data"), classes=("cats", "dogs", "owls"), per_class=10)
    os.makedirs(os.path.join(data, "fish"))
    write_file(os.path.join(data, "fish", ".DS_Store"), b"x")
    ingested = run(IngestConfig(data_dir=data), str(tmp_path / "ingest"))
    assert list(ingested.labels) == ["cats", "dogs", "owls"]
    result = validate(
        ValidateConfig(min_examples_per_class=1, max_accuracy_interval=1.0, warn_small_val_split=False),
        ingested.output_dir,
        None,
        str(tmp_path / "v"),
    )
    assert result.ok and [(a.severity, a.code) for a in result.anomalies] == [("warning", "class_folder_empty")]
    assert "'fish'" in result.anomalies[0].message


def test_pipeline_root_that_is_a_file_is_a_usage_error(fake, tmp_path, capsys):
    """Item 12: a pipeline root that is a file ended with exit 1."""
    target = tmp_path / "root-file"
    target.write_text("not a folder")
    assert fake("--pipeline-root", str(target)) == (EXIT_USAGE, [])
    assert "is a file: give a folder" in capsys.readouterr().err and target.read_text() == "not a folder"


@pytest.mark.parametrize("damage", ["folder_deleted", "marker_deleted"])
def test_lost_previous_ingest_stops_instead_of_starting_a_new_split_memory(ingested, capsys, damage):
    """The lineage says which ingest holds the split memory: if it is gone or cannot be verified,
    images would re-split silently."""
    import shutil

    if damage == "folder_deleted":
        shutil.rmtree(_only_ingest(ingested.root))
    else:
        (_only_ingest(ingested.root) / "_COMPLETE").unlink()
    assert ingested() == EXIT_DATA
    err = capsys.readouterr().err
    assert "previous ingest" in err and "incomplete" in err and "--pipeline-root" in err
    assert len(_ingests(ingested.root)) == (0 if damage == "folder_deleted" else 1), "nothing was published"


@pytest.mark.parametrize("damage", ["marker_removed", "version_removed"])
def test_pushed_version_removed_or_unmarked_is_pushed_again(fake, capsys, damage):
    """A pushed version deleted by hand (or left without its completion marker) is not "unchanged"."""
    import shutil

    assert fake()[1] == ALL
    version = fake.root / "serving" / "classifier" / "1"
    if damage == "marker_removed":
        (version / "_COMPLETE").unlink()
    else:
        shutil.rmtree(version)
    assert fake() == (0, ["push"])
    assert (fake.root / "serving" / "classifier" / ("2" if damage == "marker_removed" else "1")).is_dir()


@pytest.mark.parametrize("component", ["validate", "tune", "train", "export", "evaluate"])
def test_an_output_without_its_marker_is_produced_again(fake, capsys, component):
    """Any output whose completion marker is gone is rerun, with everything after it (the ingest's is the
    split memory: see the previous test)."""
    from pipeline import dag

    assert fake()[1] == ALL
    (next(p for p in (fake.root / component).iterdir() if not p.name.startswith((".", "_"))) / "_COMPLETE").unlink()
    capsys.readouterr()
    code, calls = fake()
    assert code == 0 and calls[0] == component and set(calls) <= dag.downstream(component)
    assert f"WARNING {component}: the earlier output" in capsys.readouterr().out


# --- command-line misuse (exit 2, nothing run) --------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (("--config", "{tmp}/missing.yaml"), "file not found"),
        (("--config", "{tmp}/bad.yaml"), "not valid YAML"),
        (("--config", "{tmp}/list.yaml"), "top level must be a mapping"),
        (("--set", "train.no_such_key=1"), "unknown key"),
        (("--set", "nosection.key=1"), "unknown section"),
        (("--set", "train.batch_size=abc"), "train.batch_size: 'abc' is not valid; expected an integer"),
        (("--set", "train.stages=[{name: a, epochs: x, learning_rate: 0.1}]"), "train.stages[0].epochs"),
        (("--set", "ingest.splits={train: 0.9, val: 0.3}"), "sum to"),
        (("--set", "train.train_fraction=0"), "train.train_fraction=0.0"),
        (("--epochs", "1,2,3"), "one per stage"),
        (("--splits", "train=0.8,val"), "expected NAME=FRACTION"),
        (("--only", "train", "--stop-after", "ingest"), "cannot be combined"),
        (("stray",), "unexpected argument 'stray'"),
        (("--no-such-flag",), "unknown flag --no-such-flag"),
        (("--only", "export"), "no earlier run produced one"),
    ],
)
def test_command_line_mistakes_are_usage_errors(fake, tmp_path, capsys, args, words):
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    capsys.readouterr()
    try:
        code, calls = fake(*args)
    except SystemExit as e:  # argparse's own errors (the CLI exits with them the same way)
        code, calls = e.code, []
    err = capsys.readouterr().err
    assert (code, calls) == (EXIT_USAGE, []), err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, words",
    [
        (("list", "--pipeline-root", "{tmp}/nowhere"), "no lineage store"),
        (("show", "nosuchrun", "--pipeline-root", "{root}"), "no run 'nosuchrun'"),
    ],
)
def test_runs_cli_misuse(fake, tmp_path, args, words):
    assert fake()[0] == 0
    args = [a.replace("{tmp}", str(tmp_path)).replace("{root}", str(fake.root)) for a in args]
    proc = pipeline_run(*args, module="pipeline.runs")
    assert proc.returncode == EXIT_USAGE and words in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["missing", "a_file"])
def test_unusable_data_folder_is_exit_3_before_anything_is_published(fake, tmp_path, capsys, where):
    """Caught by the orchestrator's listing (the ingest's own scan), before the ingest starts; the other
    unusable folders (no class folders, one class, nothing decodable) in tests/test_ingest_bad_input.py."""
    data = tmp_path / "data"
    if where == "a_file":
        data.write_text("x")
    code, calls = fake("--data-dir", str(data))
    err = capsys.readouterr().err
    assert code == EXIT_DATA and "Traceback" not in err
    assert not (fake.root / "ingest").exists() or not [
        p for p in (fake.root / "ingest").iterdir() if not p.name.startswith(".")
    ]


def test_multi_threading_mode_is_refused_before_any_work(tmp_path, capsys):
    """Issue 9, item 13: Beam's multi_threading mode lost records under load (its time-flushed data
    stream drops elements written during a send, tests/test_beam_threading.py): refused, exit 2."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import run as pipeline_run_module

    data = make_tree(str(tmp_path / "data"))
    root = tmp_path / "root"
    code = pipeline_run_module.main(
        [
            "--runner=DirectRunner",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_threading",
            "--data-dir",
            data,
            "--pipeline-root",
            str(root),
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "multi_threading is refused" in err and "multi_processing" in err
    assert "Traceback" not in err and not (root / "ingest").exists()
    with pytest.raises(UsageError, match="multi_threading is refused"):  # the library path refuses it too
        run(
            IngestConfig(data_dir=data),
            str(tmp_path / "out"),
            beam_options=PipelineOptions(["--direct_running_mode=multi_threading"]),
        )
    assert not (tmp_path / "out").exists()


def test_a_full_disk_stops_with_one_clear_line_and_publishes_nothing(tmp_path, monkeypatch, capsys):
    """Issue 9, item 12: a full disk during the ingest printed Beam's worker traceback (inside its
    RuntimeError's message). Now: what ran out, where to free space, exit 1, nothing half-written left."""
    import errno

    from components.ingest import records
    from pipeline import run as pipeline_run_module

    def disk_full(file_handle, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records, "write_record", disk_full)
    data = make_tree(str(tmp_path / "data"))
    root = tmp_path / "root"
    code = pipeline_run_module.main(["--data-dir", data, "--pipeline-root", str(root), "--stop-after", "ingest"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "no space left on the device" in err and "free space" in err and str(root) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not list((root / "ingest").iterdir()), "no half-written ingest is left behind"
    assert list((root / "runs").glob("*/error.log")), "the full traceback is kept for a bug report"
