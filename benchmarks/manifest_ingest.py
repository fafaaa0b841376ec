"""A manifest's ingest beside the same images as class folders: time and peak memory.

    python -m benchmarks.manifest_ingest --folder FOLDER [--work DIR] [--out benchmarks/manifest_ingest_results.json]

FOLDER is a folder of class folders (for example the 50,000 generated photos of `benchmarks.nightly`).
The benchmark writes a CSV manifest of every image in it (`path,label`, relative to a copy-free view:
the manifest sits beside the class folders), then runs `pipeline.run --stop-after ingest` on the
folder and on the manifest, each from a fresh pipeline root, the folder first, sampling the memory of
the run's process tree (benchmarks.scale.run_pipeline). The two ingests must keep the same images in
the same splits (checked: manifest.csv's path, sha256 and split).
"""

import argparse
import csv
import json
import os
import shutil
import sys
import time

from benchmarks.scale import run_pipeline
from benchmarks.shared import stamp


def _kept(root: str) -> list:
    base = os.path.join(root, "ingest")
    (out,) = [d for d in os.listdir(base) if d[0].isdigit()]
    with open(os.path.join(base, out, "manifest.csv")) as f:
        return sorted((r["path"], r["sha256"], r["split"]) for r in csv.DictReader(f))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.manifest_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", required=True, help="a folder of class folders")
    parser.add_argument("--work", default="/tmp/transferline-manifest-ingest")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "manifest_ingest_results.json"))
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.folder)
    rows = sorted(
        (f"{label}/{name}", label)
        for label in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, label))
        for name in os.listdir(os.path.join(folder, label))
    )
    manifest = os.path.join(folder, "labels.csv")
    started = time.monotonic()
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    written_s = time.monotonic() - started
    runs = {}
    try:
        for name, source in (("class_folders", ["--data-dir", folder]), ("manifest", ["--manifest", manifest])):
            root = os.path.join(args.work, name)
            shutil.rmtree(root, ignore_errors=True)
            runs[name] = run_pipeline([*source, "--pipeline-root", root, "--stop-after", "ingest"])
            runs[name]["kept"] = _kept(root)
    finally:
        os.remove(manifest)
    same = runs["class_folders"].pop("kept") == runs["manifest"].pop("kept")
    if not same:
        sys.exit("the manifest's ingest kept other images or splits than the folder's")
    folder_s, manifest_s = (runs[n]["steps"]["ingest"]["s"] for n in ("class_folders", "manifest"))
    result = {
        **stamp(__doc__, "manifest_ingest", argv),
        "images": len(rows),
        "manifest_written_s": round(written_s, 2),
        "runs": runs,
        "same_images_and_splits": same,
        "ingest_manifest_over_folders": round(manifest_s / folder_s, 3),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({k: result[k] for k in ("images", "ingest_manifest_over_folders")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
