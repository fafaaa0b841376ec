"""Issue 37, must-show 1, on real photos: 1,000 sign-language photos ingested from class folders and from
each manifest format give the same records, byte for byte; a manifest with 30 hostile rows accounts
for every row and loses none of the good ones. The photos are read in place (symlinked into class
folders, never copied)."""

import csv
import hashlib
import json
import os

import pytest

from components.ingest import IngestConfig, run
from schemas import reasons

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def thousand(sign_digits_dir, tmp_path_factory):
    """(folder of class folders of symlinks, [(relpath, label)]) for the first 100 photos of each class."""
    folder = tmp_path_factory.mktemp("sign") / "images"
    rows = []
    for label in sorted(d for d in os.listdir(sign_digits_dir) if (sign_digits_dir / d).is_dir()):
        (folder / label).mkdir(parents=True)
        for name in sorted(os.listdir(sign_digits_dir / label))[:100]:
            (folder / label / name).symlink_to(sign_digits_dir / label / name)
            rows.append((f"{label}/{name}", label))
    assert len(rows) == 1000
    return folder, rows


def _shards(out) -> dict:
    """{file name: sha256} of every TFRecord shard an ingest wrote."""
    found = {}
    for base, _, files in os.walk(out):
        for name in files:
            if ".tfrecord" in name:
                with open(os.path.join(base, name), "rb") as f:
                    found[name] = hashlib.sha256(f.read()).hexdigest()
    return found


def _manifest_rows(out) -> list:
    with open(os.path.join(out, "manifest.csv")) as f:
        return sorted((r["path"], r["sha256"], r["split"], r["label_text"]) for r in csv.DictReader(f))


def test_folders_and_every_manifest_format_give_the_same_records(thousand, tmp_path):
    folder, rows = thousand
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    (folder / "vertex.jsonl").write_text(
        "".join(
            json.dumps({"imageGcsUri": str(folder / p), "classificationAnnotation": {"displayName": label}}) + "\n"
            for p, label in rows
        )
    )
    (folder / "metadata.jsonl").write_text("".join(json.dumps({"file_name": p, "label": lb}) + "\n" for p, lb in rows))
    outs = {}
    for name, config in {
        "folders": IngestConfig(data_dir=str(folder)),
        "csv": IngestConfig(manifest=str(folder / "labels.csv")),
        "vertex": IngestConfig(manifest=str(folder / "vertex.jsonl")),
        "hugging_face": IngestConfig(manifest=str(folder / "metadata.jsonl")),
    }.items():
        result = run(config, str(tmp_path / name))
        assert result.kept == 1000, (name, result.rejected)
        outs[name] = tmp_path / name
    # the manifests sit in the folder, beside the class folders: the folder scan ignores them
    loose = sum(1 for name in os.listdir(folder) if (folder / name).is_file())
    assert run(IngestConfig(data_dir=str(folder)), str(tmp_path / "again")).ignored == {"outside_class_folder": loose}
    reference = _manifest_rows(outs["folders"])
    for name, out in outs.items():
        assert _manifest_rows(out) == reference, name
        assert _shards(out) == _shards(outs["folders"]), f"{name}: the records differ from the folder's"


def test_thirty_hostile_rows_are_each_accounted_for(thousand, tmp_path):
    folder, rows = thousand
    p = [r[0] for r in rows]
    hostile = [
        *(f"0/missing_{i}.JPG,0" for i in range(5)),  # missing files
        "../outside.JPG,0",
        "0/../../outside.JPG,0",
        "../../etc/passwd,0",  # paths that leave the manifest's folder
        "gs://transferline-no-such-bucket/a.jpg,1",
        "gs://transferline-no-such-bucket/b.jpg,2",
        "file:///no/such/file.jpg,3",  # URIs to nowhere
        f"{p[1]},",
        f"{p[2]}, ",
        f"{p[3]},\t1",  # empty or blank labels
        *(f"{p[i]},{rows[i][1]}" for i in (10, 11, 12, 13)),  # duplicate rows
        *(f"{p[i]},9" for i in (200, 201)),  # the same paths as good rows, another label
        f"{p[4]},0\x07",  # a control character
        "1/x.JPG,1,extra",
        "1/y.JPG",  # cells that do not match the header
        "  ,1",  # no path
        "/no/such/folder/photo.JPG,1",  # an absolute path to nowhere
        f"{p[10]},{rows[10][1]}",  # a third copy of a row
    ]
    raw = ["path,label", *(f"{a},{b}" for a, b in rows), *hostile]
    body = "\n".join(raw).encode() + b"\n"
    body += b"0/\xff\xfe.JPG,0\n" + b"2/\xc3(.JPG,2\n" + b"0/a.JPG,\xe9\n"  # bad UTF-8
    body += b"path" * (10 * 1024 * 1024 // 4) + b",0\n"  # a 10 MB line
    assert len(hostile) + 4 == 30
    (folder / "hostile.csv").write_bytes(body)
    result = run(IngestConfig(manifest=str(folder / "hostile.csv")), str(tmp_path / "out"))
    rows_in_file = len(rows) + 30
    assert result.found == rows_in_file, "every row is counted once"
    assert result.kept + sum(result.rejected.values()) + sum(result.ignored.values()) == result.found
    # good rows lost: the 3 whose own duplicates carry bad labels stay, the 2 conflicting ones go
    assert result.kept == 1000 - 2
    assert result.rejected == {
        reasons.MISSING: 6,
        reasons.BAD_ROW: 3 + 2 + 1 + 4,  # leaving the folder, cell counts, no path, 3 not UTF-8 and the long line
        reasons.UNREADABLE: 3,
        reasons.BAD_LABEL: 4,
        reasons.DUPLICATE_ROW: 5,
        reasons.ROW_CONFLICT: 4,
    }, result.rejected
    with open(tmp_path / "out" / "rejected.csv") as f:
        assert all("line" in r["detail"] or r["reason"] == reasons.UNREADABLE for r in csv.DictReader(f))
