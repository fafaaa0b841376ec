"""Typed artifacts: one class per kind, the only code that knows an artifact's file names.

TFX gives `standard_artifacts.Examples.path(split=...)` so that nobody globs shards by hand; this
module does the same for every artifact the pipeline passes on (schemas/ARTIFACTS.md). Producers
write to `Kind(tmp).path(Kind.FILE)`; every consumer, the report and the CLIs read through the
accessors here, so a layout change is made in one place, and the checks a reader needs (file
present, non-empty, labels consistent) are made the same way everywhere.

Paths go through `components.common.fileio` (the local disk, or any TensorFlow filesystem), so
that modules which only name or check an artifact (the orchestrator, a cached rerun, Beam workers)
do not load TensorFlow.
"""

import csv
import io
import json
import os

from components.common import fileio, publish
from components.common.errors import DataError, UsageError
from components.common.fileio import file_sha256
from components.common.publish import COMPLETE_MARKER


def read_text(path: str, what: str) -> str:
    """The text of `path`; a DataError naming the file and the artifact when it is missing."""
    if not fileio.exists(path):
        raise DataError(
            f"{path} not found: {what} is incomplete (see schemas/ARTIFACTS.md); rerun the step that produced it"
        )
    with fileio.GFile(path, "r") as f:
        return f.read()


def parse_labels(text: str, path: str) -> list:
    """Class names of a labels.txt: one per line, line number (from 0) = integer label."""
    labels = [line.rstrip("\r") for line in text.split("\n")]
    while labels and labels[-1] == "":
        labels.pop()
    if not labels:
        raise DataError(f"{path} is empty: it must list the class names, one per line")
    if any(not name.strip() for name in labels):
        raise DataError(f"{path} has a blank line among the class names: every line is one class")
    return labels


def labels_text(labels) -> str:
    """labels.txt content for `labels` (what `parse_labels` reads back)."""
    return "".join(f"{name}\n" for name in labels)


class Artifact:
    """A published directory of one kind; `TYPE` is its type name in the lineage store."""

    TYPE = "Artifact"
    WHAT = "the artifact"

    def __init__(self, uri: str):
        self.uri = str(uri)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def path(self, *parts: str) -> str:
        return os.path.join(self.uri, *parts)

    def exists(self, *parts: str) -> bool:
        return fileio.exists(self.path(*parts))

    def mtime_ns(self) -> int:
        return fileio.stat(self.uri).mtime_nsec

    def is_complete(self) -> bool:
        """True when the directory was published whole (its completion marker is present)."""
        return publish.is_complete(self.uri)

    def damage(self, deep: bool = False, only=None) -> str:
        """What is wrong with the published files ("" when nothing is), against the marker's inventory.

        Sizes are always compared (cheap: a deleted or truncated file); `deep` also compares every
        file's sha256. `only` limits the check to those relative paths. A directory published before
        inventories were written is judged by its marker alone.
        """
        if not self.is_complete():
            return f"{self.uri} is incomplete (no {COMPLETE_MARKER} marker)"
        expected = json.loads(self.text(COMPLETE_MARKER)).get("files")
        if expected is None:
            return ""
        for relpath, facts in sorted(expected.items()):
            if only is not None and relpath not in only:
                continue
            path = self.path(relpath)
            if not fileio.exists(path):
                return f"{path} is missing"
            size = fileio.stat(path).length
            if size != facts["bytes"]:
                return f"{path} has {size} bytes, {facts['bytes']} when it was published (truncated or changed)"
            if deep and file_sha256(path) != facts["sha256"]:
                return f"{path} differs from what was published (sha256 mismatch)"
        return ""

    def text(self, name: str) -> str:
        return read_text(self.path(name), f"{self.WHAT} {self.uri}")

    def json(self, name: str):
        return json.loads(self.text(name))

    def json_or_none(self, name: str):
        """The JSON file's content, or None when the artifact does not hold it (report, old outputs)."""
        return self.json(name) if self.exists(name) else None


class Examples(Artifact):
    """The ingest's output: a TFDS dataset directory of tf.Example shards plus its tables."""

    TYPE, WHAT = "Examples", "the ingest output"
    LABELS, MANIFEST, REJECTED, STATS = "labels.txt", "manifest.csv", "rejected.csv", "stats.json"
    INVENTORY = "inventory.csv"  # every decoded file as it was read, and where its record is (the next ingest's reuse)
    DATA = "data"  # data/<dataset_name>/<version>/<dataset_name>-<split>.tfrecord-<i>-of-<n>
    SPLITS = ("train", "val", "test")

    def shards(self, split: str) -> list:
        """The shard files of `split`, sorted; DataError when there are none."""
        pattern = (self.DATA, "*", "*", f"*-{split}.tfrecord-*")
        files = fileio.find(self.uri, *pattern)
        if not files:
            raise DataError(
                f"no '{split}' split in {self.uri}: expected shards matching {'/'.join(pattern)}. "
                "Point to a complete ingest output (see schemas/ARTIFACTS.md) whose split has images."
            )
        return files

    def dataset_dir(self) -> str:
        """The TFDS dataset folder (`tfds.builder_from_directory` loads it)."""
        found = fileio.find(self.uri, self.DATA, "*", "*", "dataset_info.json")
        if not found:
            raise DataError(f"{self.uri} holds no TFDS dataset (data/*/*/dataset_info.json): rerun the ingest")
        return os.path.dirname(found[0])

    def labels(self) -> list:
        return parse_labels(self.text(self.LABELS), self.path(self.LABELS))

    def manifest(self) -> list:
        """Every kept image: dicts with path, sha256, label, label_text, split, height, width, format, bytes."""
        return list(csv.DictReader(io.StringIO(self.text(self.MANIFEST))))

    def inventory(self) -> list:
        """Every file the ingest decoded (outputs.INVENTORY_FIELDS); [] for an ingest written before it existed."""
        return list(csv.DictReader(io.StringIO(self.text(self.INVENTORY)))) if self.exists(self.INVENTORY) else []

    def rejected(self) -> list:
        """Every rejected file: dicts with path, reason, detail."""
        return list(csv.DictReader(io.StringIO(self.text(self.REJECTED))))

    def stats(self) -> dict:
        return self.json(self.STATS)

    def class_counts(self, split: str, keep=None) -> list:
        """Examples per class in `split` (index = label), from the manifest; only sha256 in `keep` if given."""
        counts = [0] * len(self.labels())
        for row in self.manifest():
            if row["split"] == split and (keep is None or row["sha256"] in keep):
                counts[int(row["label"])] += 1
        return counts


class Hyperparameters(Artifact):
    """The tuner's output (TFX's `HyperParameters`): best_recipe.yaml (the train values chosen, and why)
    and trials.csv (one row per trial). With tuning off the recipe says `tuned: false` and changes nothing."""

    TYPE, WHAT = "HyperParameters", "the tuning output"
    BEST_RECIPE, TRIALS = "best_recipe.yaml", "trials.csv"

    def recipe(self) -> dict:
        import yaml

        return yaml.safe_load(self.text(self.BEST_RECIPE))

    def trials(self) -> list:
        return list(csv.DictReader(io.StringIO(self.text(self.TRIALS))))


class ExampleAnomalies(Artifact):
    """The data validation's output: anomalies.json, [{severity, code, message}]."""

    TYPE, WHAT = "ExampleAnomalies", "the validation output"
    ANOMALIES = "anomalies.json"

    def anomalies(self) -> list:
        return self.json(self.ANOMALIES)


class Audit(Artifact):
    """The audit's output: audit.json, label_issues.csv (ranked), near_duplicates.csv."""

    TYPE, WHAT = "Audit", "the audit output"
    SUMMARY, LABEL_ISSUES, NEAR_DUPLICATES = "audit.json", "label_issues.csv", "near_duplicates.csv"

    def summary(self) -> dict:
        return self.json(self.SUMMARY)

    def rows(self, name: str) -> list:
        return list(csv.DictReader(io.StringIO(self.text(name))))


class _ModelFiles(Artifact):
    """What every model artifact carries beside the model: class names and the sidecar."""

    LABELS, INFO = "labels.txt", "model_info.json"

    def labels(self) -> list:
        return parse_labels(self.text(self.LABELS), self.path(self.LABELS))

    def info(self) -> dict:
        return self.json(self.INFO)

    def format_entries(self) -> dict:
        """{format name: {name, path, bytes, input, output}} of the export formats it holds, from
        model_info.json's `formats` (components/common/formats/), in the order they were written."""
        return {entry["name"]: entry for entry in self.info().get("formats") or []}

    def formats(self) -> dict:
        """{format name: absolute path} of the export formats it holds, in the order they were written."""
        return {name: self.format_path(entry["path"]) for name, entry in self.format_entries().items()}

    def format_path(self, relpath: str) -> str:
        return self.path(relpath)

    def checked_labels(self) -> list:
        """labels.txt, after checking that model_info.json names the same classes."""
        labels = self.labels()
        if self.info().get("labels", labels) != labels:
            raise DataError(
                f"{self.uri}: labels.txt and model_info.json disagree on the class names; "
                "rerun the step that produced it"
            )
        return labels


class Model(_ModelFiles):
    """The trainer's output: model.keras, its sidecar, history and curves."""

    TYPE, WHAT = "Model", "the train output"
    MODEL, HISTORY, TRAINING_LOG, CURVES, TENSORBOARD = (
        "model.keras",
        "history.json",
        "training_log.csv",
        "curves.png",
        "tensorboard",
    )
    TRAIN_IMAGES = "train_images.txt"  # "sha256<TAB>label" per training image: how much a warm start's data changed

    def model_path(self) -> str:
        return self.path(self.MODEL)

    def history(self) -> dict:
        return self.json(self.HISTORY)

    def require(self) -> None:
        """DataError unless the files the exporter needs are all present."""
        missing = [n for n in (self.MODEL, self.INFO, self.LABELS) if not self.exists(n)]
        if missing:
            raise DataError(
                f"{self.uri} is not a complete train output (missing {', '.join(missing)}); "
                "run the train step first (schemas/ARTIFACTS.md, 'train -> export')"
            )


class ExportedModel(_ModelFiles):
    """The exporter's output: the export formats (a SavedModel always) and their sidecars."""

    TYPE, WHAT = "ExportedModel", "the export"
    SAVED_MODEL, PARITY = "saved_model", "parity.json"

    def saved_model_dir(self) -> str:
        return self.path(self.SAVED_MODEL)

    def parity(self) -> dict:
        return self.json(self.PARITY)

    def scored_as(self) -> str:
        """What the gate's accuracy is of, in words: the exported model as served (with its test-time
        flip, when it has one), not the trainer's Keras model, whose test accuracy is one plain pass."""
        return "the exported SavedModel" + (" with test-time flip" if self.info().get("tta") == "flip" else "")


class ModelBlessing(Artifact):
    """The evaluator's output: the TFX-style blessing file, every check, the metrics."""

    TYPE, WHAT = "ModelBlessing", "the evaluation output"
    BLESSED, NOT_BLESSED, BLESSING, METRICS, TFMA = "BLESSED", "NOT_BLESSED", "blessing.json", "metrics.json", "tfma"

    def blessing(self) -> dict:
        return self.json(self.BLESSING)

    def metrics(self) -> dict:
        return self.json(self.METRICS)

    def blessed(self) -> bool:
        """Blessed only when both the BLESSED file and blessing.json say so (a missing output is not)."""
        return (
            bool(self.uri)
            and self.exists(self.BLESSED)
            and self.exists(self.BLESSING)
            and bool(self.blessing().get("blessed"))
        )


class ServingVersion(_ModelFiles):
    """One pushed version, `SERVING_DIR/<model_name>/<version>/`: a SavedModel plus assets.extra/."""

    TYPE, WHAT = "PushedModel", "the pushed version"
    EXTRA = "assets.extra"
    LABELS, INFO, BLESSING, PUSH = (
        f"{EXTRA}/labels.txt",
        f"{EXTRA}/model_info.json",
        f"{EXTRA}/blessing.json",
        f"{EXTRA}/push.json",
    )
    WARMUP = f"{EXTRA}/tf_serving_warmup_requests"  # components/common/warmup_requests.py
    MODEL_CARD, MODEL_CARD_JSON = f"{EXTRA}/model_card.md", f"{EXTRA}/model_card.json"  # push/model_card.py

    def saved_model_dir(self) -> str:
        return self.uri

    def format_path(self, relpath: str) -> str:
        """The SavedModel is the version directory; every other format keeps its export path under assets.extra/."""
        return self.uri if relpath == ExportedModel.SAVED_MODEL else self.path(self.EXTRA, relpath)

    @property
    def version(self) -> int:
        return int(os.path.basename(self.uri.rstrip("/")))


class ServingModel:
    """TF Serving's model base directory, `SERVING_DIR/<model_name>/`: integer versions.

    TF Serving treats every child whose name is an integer as a version and ignores the rest, so
    a push writes a '.tmp-' sibling and renames it into place.
    """

    TMP_PREFIX = ".tmp-"

    def __init__(self, serving_dir: str, model_name: str):
        self.serving_dir, self.model_name = str(serving_dir), model_name
        self.uri = os.path.join(self.serving_dir, model_name)

    def versions(self) -> list:
        """The integer versions present, ascending."""
        if not fileio.isdir(self.uri):
            return []
        return sorted(int(n.rstrip("/")) for n in fileio.listdir(self.uri) if n.rstrip("/").isdigit())

    def version(self, number: int) -> ServingVersion:
        return ServingVersion(os.path.join(self.uri, str(number)))

    def latest(self) -> ServingVersion | None:
        """The newest pushed version (the evaluation baseline), or None when nothing is pushed."""
        found = self.versions()
        return self.version(found[-1]) if found else None

    def stale_temporaries(self) -> list:
        """Leftovers of interrupted pushes (never visible to TF Serving)."""
        if not fileio.isdir(self.uri):
            return []
        return [
            os.path.join(self.uri, n.rstrip("/")) for n in fileio.listdir(self.uri) if n.startswith(self.TMP_PREFIX)
        ]


def saved_model_in(path: str) -> str:
    """The SavedModel of an export directory (its `saved_model/`) or of a pushed version (the directory
    itself), or `path` when it is a SavedModel; UsageError when it holds none."""
    for candidate in (path, ExportedModel(path).saved_model_dir()):
        if fileio.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise UsageError(f"no SavedModel at {path}: expected {path}/saved_model.pb or {path}/saved_model/saved_model.pb")


def model_labels(model_dir: str) -> list:
    """Class names of a model directory: an export (labels.txt) or a pushed version (assets.extra/)."""
    for kind in (ExportedModel, ServingVersion):
        artifact = kind(model_dir)
        if artifact.exists(kind.LABELS):
            return artifact.labels()
    raise DataError(f"no labels.txt in {model_dir} or {model_dir}/assets.extra: cannot name the classes")


def model_abstention(model_dir: str) -> dict | None:
    """The abstention entry of a model directory's model_info.json ({threshold, unknown_label, ...}),
    or None when the model has none (abstention off, or exported before it existed)."""
    for kind in (ExportedModel, ServingVersion):
        artifact = kind(model_dir)
        if artifact.exists(kind.INFO):
            return artifact.info().get("abstention")
    return None


def model_formats(model_dir: str) -> dict:
    """{format name: path} of a model directory: an export or a pushed version ({} when it records none)."""
    for kind in (ExportedModel, ServingVersion):
        artifact = kind(model_dir)
        if artifact.exists(kind.INFO):
            return artifact.formats()
    return {}
