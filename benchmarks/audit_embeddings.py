"""The audit's embeddings: the fine-tuned model's against the frozen pretrained backbone's, on planted
label errors in real photos, and what keeping them across runs saves.

    python -m benchmarks.audit_embeddings [--work DIR] [--out benchmarks/audit_embeddings_results.json]

The sign-language folder is ingested; 10% of class 3's training images (16) are given class 8's
label, as tests/test_audit_sign_digits.py plants them; the default recipe trains from the shared
pretrained backbone. The audit then runs with `embed_with: trained` and `embed_with: backbone`,
and the backbone one once more with its embeddings kept from the first (a nightly rerun). For each:
the moved images recovered in the top 16, the top 32 and the whole review queue, the queue's
length, the probe's out-of-fold accuracy, the estimated label errors, and the seconds.
"""

import argparse
import csv
import json
import os
import shutil
import time

import numpy as np

from benchmarks.shared import PRETRAINED, SIGN_DIGITS, stamp


def _tampered(work: str):
    """(ingest dir, the paths given a wrong label)."""
    from components.ingest import IngestConfig
    from components.ingest import run as ingest
    from tests.ingest_format import ImageRecord, write_ingest_dir

    clean = os.path.join(work, "clean")
    if not os.path.exists(clean):
        ingest(IngestConfig(data_dir=SIGN_DIGITS), clean)
    with open(os.path.join(clean, "manifest.csv")) as f:
        rows = list(csv.DictReader(f))
    labels = sorted({r["label_text"] for r in rows})
    rng = np.random.default_rng(0)
    threes = [r["path"] for r in rows if r["split"] == "train" and r["label_text"] == "3"]
    moved = set(rng.choice(threes, size=round(0.1 * len(threes)), replace=False))
    records = []
    for r in rows:
        with open(os.path.join(SIGN_DIGITS, r["path"]), "rb") as f:
            data = f.read()
        label = labels.index("8") if r["path"] in moved else int(r["label"])
        records.append(ImageRecord(r["split"], label, data, r["format"], r["path"]))
    out = os.path.join(work, "tampered")
    shutil.rmtree(out, ignore_errors=True)
    return write_ingest_dir(out, records, labels, tfds_metadata=False), moved


def _audit(config, train_dir: str, ingest_dir: str, out: str, cache: str, moved: set) -> dict:
    from components.audit import run

    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    result = run(config, train_dir, ingest_dir, out, cache_dir=cache)
    seconds = time.time() - started
    with open(os.path.join(out, "label_issues.csv")) as f:
        queue = [row["path"] for row in csv.DictReader(f)]
    summary = json.load(open(os.path.join(out, "audit.json")))
    k = len(moved)
    return {
        "seconds": round(seconds, 1),
        "embeddings_reused": summary["embeddings"]["reused"],
        "queue": len(queue),
        "recovered_top_16": len(moved & set(queue[:k])),
        "recovered_top_32": len(moved & set(queue[: 2 * k])),
        "recovered_in_queue": len(moved & set(queue)),
        "probe_out_of_fold_accuracy": result.probe_accuracy,
        "estimated_label_errors": result.estimated_errors,
        "claims_errors": result.claims_errors,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_embeddings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/transferline-audit-embeddings")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "audit_embeddings_results.json"))
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    from components.audit import AuditConfig
    from components.train import TrainConfig
    from components.train import run as train

    ingest_dir, moved = _tampered(args.work)
    train_dir = os.path.join(args.work, "train")
    shutil.rmtree(train_dir, ignore_errors=True)
    train(TrainConfig(weights=PRETRAINED), ingest_dir, train_dir)
    cache = os.path.join(args.work, "cache")
    shutil.rmtree(cache, ignore_errors=True)
    runs = {}
    for name, embed_with in (("trained", "trained"), ("backbone", "backbone"), ("backbone_kept", "backbone")):
        config = AuditConfig(nearest="exact", embed_with=embed_with)
        runs[name] = _audit(config, train_dir, ingest_dir, os.path.join(args.work, f"audit_{name}"), cache, moved)
        print(name, runs[name], flush=True)
    result = {
        **stamp(__doc__, "audit_embeddings", []),
        "planted_errors": len(moved),
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
