"""Labels from a manifest instead of class folders (issue 37, items 1 and 2): three formats, every row
accounted for, the same records as the folder gives, and given splits kept exactly."""

import csv
import json
import os

import pytest

from components.common.errors import DataError, UsageError
from components.ingest import IngestConfig, manifest, run
from schemas import reasons
from tests.image_fixtures import rgb_jpeg_bytes, write_file

CLASSES = ("cats", "dogs", "owls")


def _tree(root, per_class=10, start=0):
    """A class-per-folder tree; returns [(relpath, label)]."""
    rows = []
    for c, name in enumerate(CLASSES):
        for i in range(start, start + per_class):
            relpath = f"{name}/{i}.jpg"
            write_file(os.path.join(root, relpath), rgb_jpeg_bytes(32, 32, seed=100 * c + i))
            rows.append((relpath, name))
    return rows


def _csv(path, rows, header=("path", "label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _records(out) -> dict:
    """{split: sorted sha256} of an ingest's manifest.csv."""
    with open(os.path.join(out, "manifest.csv")) as f:
        rows = list(csv.DictReader(f))
    return {s: sorted(r["sha256"] for r in rows if r["split"] == s) for s in ("train", "val", "test")}


def test_a_csv_manifest_gives_the_records_the_class_folders_give(tmp_path):
    data = tmp_path / "images"
    rows = _tree(str(data))
    from_folders = run(IngestConfig(data_dir=str(data)), str(tmp_path / "folders"))
    listed = _csv(data / "labels.csv", rows)
    from_manifest = run(IngestConfig(manifest=listed), str(tmp_path / "manifest"))
    assert from_manifest.labels == from_folders.labels == list(CLASSES)
    assert from_manifest.counts == from_folders.counts
    assert _records(tmp_path / "manifest") == _records(tmp_path / "folders")


def test_vertex_and_hugging_face_jsonl_give_the_same_records(tmp_path):
    data = tmp_path / "images"
    rows = _tree(str(data), per_class=6)
    vertex = data / "vertex.jsonl"
    vertex.write_text(
        "\n".join(
            json.dumps({"imageGcsUri": str(data / p), "classificationAnnotation": {"displayName": label}})
            for p, label in rows
        )
    )
    hugging_face = data / "metadata.jsonl"
    hugging_face.write_text("\n".join(json.dumps({"file_name": p, "label": label}) for p, label in rows) + "\n")
    run(IngestConfig(manifest=str(vertex)), str(tmp_path / "vertex"))
    run(IngestConfig(manifest=str(hugging_face)), str(tmp_path / "hf"))
    run(IngestConfig(data_dir=str(data)), str(tmp_path / "folders"))
    assert _records(tmp_path / "vertex") == _records(tmp_path / "hf") == _records(tmp_path / "folders")


def test_every_hostile_row_is_accounted_for_with_its_reason(tmp_path):
    data = tmp_path / "images"
    rows = _tree(str(data), per_class=4)
    (data / "secret.jpg").write_bytes(rgb_jpeg_bytes(32, 32, seed=999))
    good = [",".join(r) for r in rows]
    hostile = [
        ("cats/nope.jpg,cats", reasons.MISSING),
        ("../secret.jpg,cats", reasons.BAD_ROW),  # leaves the manifest's folder
        ("gs://nowhere-bucket-xyz/a.jpg,cats", None),  # a URI to nowhere: the inspection says unreadable
        ("cats/0.jpg,cats", reasons.DUPLICATE_ROW),  # the same row again
        ("dogs/1.jpg,", reasons.BAD_LABEL),  # empty label (dogs/1.jpg is listed above too: a conflict)
        ("owls/2.jpg,bats", reasons.ROW_CONFLICT),  # the same path, another label
        (",cats", reasons.BAD_ROW),  # no path
        ("owls/3.jpg,owls,extra", reasons.BAD_ROW),  # a cell too many
        ("dogs/2.jpg, dogs ", reasons.BAD_LABEL),  # spaces around the label
    ]
    lines = ["path,label", *good, *(line for line, _ in hostile)]
    body = "\n".join(lines).encode() + b"\n" + b"cats/\xff\xfe.jpg,cats\n" + b"x" * (10 * 1024 * 1024) + b"\n\n"
    listed = data / "labels.csv"
    listed.write_bytes(body)
    found = manifest.scan_manifest(str(listed))
    why = {}
    for relpath, reason, detail in found.rejected:
        why.setdefault(reason, []).append(relpath)
    assert why[reasons.MISSING] == ["cats/nope.jpg"]
    assert len(why[reasons.BAD_ROW]) == 5  # ../, no path, extra cell, not UTF-8, the 10 MB line
    assert why[reasons.DUPLICATE_ROW] == ["cats/0.jpg"]
    assert sorted(why[reasons.ROW_CONFLICT]) == ["owls/2.jpg", "owls/2.jpg"]
    assert len(why[reasons.BAD_LABEL]) == 2
    assert [c.relpath for c in found.candidates if "://" in c.path] == ["gs://nowhere-bucket-xyz/a.jpg"]
    data_rows = len(lines) - 1 + 2  # + the bad UTF-8 row and the long line
    assert found.found == data_rows + 1  # + the blank line, ignored
    result = run(IngestConfig(manifest=str(listed)), str(tmp_path / "out"))
    assert result.kept + sum(result.rejected.values()) + sum(result.ignored.values()) == result.found
    assert result.rejected.get(reasons.UNREADABLE) == 1  # the URI to nowhere
    with open(tmp_path / "out" / "rejected.csv") as f:
        rejected = list(csv.DictReader(f))
    assert all(row["detail"] for row in rejected) and len(rejected) == sum(result.rejected.values())


def test_a_given_split_is_kept_exactly_also_when_the_manifest_grows(tmp_path):
    data = tmp_path / "images"
    rows = _tree(str(data), per_class=20)
    given = {p: ("test" if i % 4 == 0 else "") for i, (p, _) in enumerate(rows)}  # a quarter given to test
    listed = _csv(data / "labels.csv", [(p, label, given[p]) for p, label in rows], ("path", "label", "split"))
    run(IngestConfig(manifest=listed), str(tmp_path / "first"))

    def splits(out):
        with open(os.path.join(out, "manifest.csv")) as f:
            return {r["path"]: (r["split"], r["split_source"]) for r in csv.DictReader(f)}

    first = splits(tmp_path / "first")
    assert all(first[p] == ("test", "given") for p, s in given.items() if s)
    assert {first[p][1] for p, s in given.items() if not s} == {"rule"}
    more = _tree(str(data), per_class=2, start=20)  # 10% more rows, none with a split
    _csv(data / "labels.csv", [(p, label, given.get(p, "")) for p, label in rows + more], ("path", "label", "split"))
    run(IngestConfig(manifest=listed), str(tmp_path / "second"), previous_dir=str(tmp_path / "first"))
    second = splits(tmp_path / "second")
    assert all(second[p] == ("test", "given") for p, s in given.items() if s)
    assert all(second[p] == first[p] for p in first), "a known image keeps its split"
    assert len(second) == len(first) + len(more)


def test_manifest_errors_name_what_to_fix(tmp_path):
    with pytest.raises(UsageError, match="exactly one source"):
        IngestConfig(data_dir=str(tmp_path), manifest=str(tmp_path / "x.csv")).validate()
    (tmp_path / "bad.csv").write_text("file,class\na.jpg,cats\n")
    with pytest.raises(DataError, match="`path` and `label`"):
        manifest.scan_manifest(str(tmp_path / "bad.csv"))
    with pytest.raises(DataError, match="does not exist"):
        manifest.check(str(tmp_path / "missing.csv"))
    rows = _tree(str(tmp_path / "one"), per_class=3)
    only_cats = _csv(tmp_path / "one" / "labels.csv", [r for r in rows if r[1] == "cats"])
    with pytest.raises(DataError, match="names 1 label"):
        run(IngestConfig(manifest=only_cats), str(tmp_path / "out"))


def test_the_pipeline_fingerprints_the_manifest_as_its_input(tmp_path):
    """A touched image with the same content reuses the ingest; an edited row (a label) reruns it."""
    from pipeline_helpers import pipeline_run

    data = tmp_path / "images"
    rows = _tree(str(data), per_class=4)
    listed = _csv(data / "labels.csv", rows)
    args = ("--manifest", listed, "--pipeline-root", tmp_path / "root", "--stop-after", "ingest")
    first = pipeline_run(*args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "[pipeline] ingest: started" in first.stdout
    os.utime(data / "cats" / "0.jpg")  # touched, same content
    again = pipeline_run(*args)
    assert again.returncode == 0 and "[pipeline] ingest: unchanged, reusing" in again.stdout, again.stdout[-2000:]
    _csv(data / "labels.csv", [(p, "owls" if p == "cats/1.jpg" else label) for p, label in rows])
    edited = pipeline_run(*args)
    assert edited.returncode == 0 and "[pipeline] ingest: started" in edited.stdout, edited.stdout[-2000:]
    missing = pipeline_run("--manifest", tmp_path / "nope.csv", "--pipeline-root", tmp_path / "root2")
    assert missing.returncode == 3 and "manifest" in missing.stderr and "does not exist" in missing.stderr
    assert not (tmp_path / "root2").exists()
