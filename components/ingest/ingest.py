"""The ingest entry point: a folder of class sub-folders in, a published TFDS dataset out.

Inputs:  config.data_dir (or config.tfds_name), and previous_dir: the last successful ingest in
         the same pipeline root, whose manifest.csv keeps every known image in its split.
Outputs: output_dir (must not exist), published atomically; layout in schemas/ARTIFACTS.md.
"""

import collections
import json
import os
import time
import unicodedata
from typing import Dict, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from components.common import fileio
from components.common.beam_runner import make_pipeline
from components.common.errors import DataError, UsageError
from components.common.publish import publish_dir
from components.ingest import manifest, outputs, scan, tfds_source, transforms
from components.ingest import reuse as reuse_mod
from components.ingest.config import IngestConfig
from components.ingest.result import IngestResult


def _check_manifest_classes(found: scan.ScanResult, source: str) -> list:
    """The labels of a manifest's usable rows (sorted); raise when fewer than two."""
    labels = sorted({c.label_text for c in found.candidates})
    if len(labels) < 2:
        raise DataError(
            f"manifest {source!r} names {len(labels)} label(s) on its {len(found.candidates)} usable row(s) "
            f"({found.found} rows in all; rejected.csv says why the others are not used): a classifier needs at "
            "least two labels"
        )
    return labels


def _check_classes(found: scan.ScanResult, data_dir: str) -> list:
    """The class names (sorted, as Keras' image_dataset_from_directory does); raise when unusable."""
    if found.found == 0:
        raise DataError(f"data folder {data_dir!r} is empty: put each class's images in its own sub-folder")
    labels = sorted({c.label_text for c in found.candidates})
    if not labels:
        raise DataError(
            f"no images inside class sub-folders of {data_dir!r} ({found.found} files found, all ignored or "
            "rejected): put each class's images in its own sub-folder, e.g. DATA/cat/1.jpg, DATA/dog/2.jpg"
        )
    if len(labels) == 1:
        raise DataError(
            f"only one class folder ({labels[0]!r}) in {data_dir!r}: a classifier needs at least two class sub-folders"
        )
    for name in labels:  # class names become lines of labels.txt and strings a client compares
        if not name.strip() or name != name.strip() or any(unicodedata.category(c).startswith("C") for c in name):
            raise DataError(
                f"class folder {name!r} in {data_dir!r}: a class name must not be blank, start or end with "
                "spaces, or hold control characters (a newline, a tab); rename the folder"
            )
    return labels


def _load_json(path: str):
    with fileio.GFile(path, "r") as f:
        return json.load(f)


def _inspect(config, candidates, labels, work_dir, beam_options) -> list:
    """Inspect every candidate on Beam (writing usable images' records); return the metadata batches.

    The plan (dedupe, splits) then runs here, on metadata only: handing the previous split memory and
    the reused rows to a Beam step cost seconds of type inference and pickling per 20,000 images, more
    than a nightly rerun's whole inspection."""
    if not candidates:
        return []
    records_dir = os.path.join(work_dir, "records")
    fileio.makedirs(records_dir)
    inspected_path = os.path.join(work_dir, "inspected.json")
    pipeline = make_pipeline(beam_options)
    _ = (
        pipeline
        # InspectFiles spreads the files over workers itself, so Create need not reshuffle too.
        | "ListFiles"
        >> beam.Create(transforms.batches([(c.path, c.relpath, c.label_text) for c in candidates]), reshuffle=False)
        | "InspectFiles" >> transforms.InspectFiles(config, labels, records_dir, len(candidates))
        | "GatherMetadata" >> beam.combiners.ToList()
        | "SaveMetadata" >> beam.Map(transforms.save_json, inspected_path)
    )
    pipeline.run().wait_until_finish()
    return _load_json(inspected_path)


def _changed(rows: list) -> list:
    """Relative paths of files whose size or modification time differs from when they were read."""
    changed = []
    for row in rows:
        try:
            now = transforms.stamp(row["path"])
        except OSError:  # deleted, or replaced by something unreadable, since it was read
            now = None
        if now != row["stamp"]:
            changed.append(row["relpath"])
    return changed


def _check_splits(kept: list, labels: list, split_names: tuple) -> None:
    """DataError when a configured split would hold no image at all (a class missing from one is validate's)."""
    per_class = collections.Counter(row["label_text"] for row in kept)
    empty = [s for s in split_names if not any(row["split"] == s for row in kept)]
    if empty:
        smallest = min(labels, key=lambda name: per_class[name])
        raise DataError(
            f"split {empty[0]!r} would hold no image: each class needs at least {len(split_names)} usable images "
            f"(one per split {'/'.join(split_names)}), and class {smallest!r} has {per_class[smallest]}. Add "
            f"images (at least {len(split_names) - per_class[smallest]} more to {smallest!r}), or give fewer "
            "splits, e.g. --splits train=0.8,val=0.2"
        )


def run(
    config: IngestConfig,
    output_dir: str,
    previous_dir: Optional[str] = None,
    beam_options: Optional[PipelineOptions] = None,
    reuse: bool = False,
) -> IngestResult:
    """Ingest config.data_dir (or config.tfds_name) into `output_dir`; see the module docstring.

    reuse: take the records and verdicts of files unchanged since `previous_dir` from it instead of
    decoding them again (components/ingest/reuse.py); only when that ingest decoded with the same
    settings and code (the pipeline's driver checks).

    Raises UsageError (bad config), DataError (missing/empty/unusable data), and RuntimeError
    when the accounting invariant kept + rejected + ignored = found does not hold (a bug).
    """
    config.validate()
    start = time.monotonic()
    if fileio.exists(output_dir):
        raise UsageError(f"ingest output {output_dir!r} already exists: give a new output directory")
    previous = outputs.read_previous_splits(previous_dir) if previous_dir else {}
    # Everything the workers read or write lives in the output's temporary directory, under the
    # pipeline root: on a distributed runner the driver's own temp directory is not theirs.
    with publish_dir(output_dir) as tmp:
        work_dir = os.path.join(tmp, "_work")
        data_dir = config.data_dir
        if config.tfds_name:
            data_dir = tfds_source.materialise(config.tfds_name, config.tfds_data_dir, os.path.join(work_dir, "tfds"))
        if config.manifest:
            data_dir = config.manifest
            found = manifest.scan_manifest(config.manifest, config.split_names)
            labels = _check_manifest_classes(found, config.manifest)
        else:
            found = scan.scan_folder(data_dir)
            labels = _check_classes(found, data_dir)
        reused, to_inspect = [], found.candidates
        if reuse and previous_dir and not config.tfds_name:
            reused, to_inspect = reuse_mod.partition(found.candidates, previous_dir, config.dataset_name)
            print(
                f"[ingest] {len(reused)} unchanged file(s) reused from {previous_dir}; "
                f"{len(to_inspect)} new or changed to read",
                flush=True,
            )
        inspected = _inspect(config, to_inspect, labels, work_dir, beam_options)
        given = {c.relpath: c.given_split for c in found.candidates if c.given_split}
        plan = transforms.plan(inspected, labels, previous, config, reused, given)
        kept = plan["kept"]
        changed = _changed(kept)
        if changed:
            raise DataError(
                f"{len(changed)} file(s) changed during the ingest (e.g. {changed[0]!r}): "
                "rerun once the data folder is no longer being written"
            )
        if not kept:
            raise DataError(
                f"no usable images in {data_dir!r}: all {len(found.candidates)} candidate files "
                "were rejected (see the reasons above); fix or replace them"
            )
        _check_splits(kept, labels, config.split_names)
        rejected = [{"relpath": r, "reason": why, "detail": d} for r, why, d in found.rejected] + plan["rejected"]
        ds_dir = outputs.dataset_dir(tmp, config.dataset_name)
        shards = outputs.write_shards(kept, ds_dir, config.dataset_name, config.split_names, config.shard_bytes)
        if fileio.exists(work_dir):  # nothing is inspected when every file is reused
            fileio.rmtree(work_dir)
        outputs.write_inventory(tmp, kept, reuse_mod.inventoried_rejections(plan["rejected"]))
        outputs.write_tfds_metadata(
            ds_dir,
            config.dataset_name,
            labels,
            shards,
            description=f"Ingested by transferline from {config.tfds_name or data_dir}",
        )
        outputs.write_tables(tmp, labels, kept, rejected)
        result = _result(config, output_dir, labels, found, kept, rejected, start)
        _check_accounting(result, shards)
        stats = _stats(result, plan["inspection"], config, data_dir, previous_dir, found)
        stats["reused"] = {"from": previous_dir if reused else None, "files": len(reused)}
        outputs.write_stats(tmp, stats)
    return result


def _result(config, output_dir, labels, found, kept, rejected, start) -> IngestResult:
    counts = {name: {s: 0 for s in config.split_names} for name in labels}
    for row in kept:
        counts[row["label_text"]][row["split"]] += 1
    return IngestResult(
        output_dir=output_dir,
        dataset_dir=outputs.dataset_dir(output_dir, config.dataset_name),
        labels=list(labels),
        counts=counts,
        rejected=dict(collections.Counter(r["reason"] for r in rejected)),
        ignored=dict(collections.Counter(why for _, why in found.ignored)),
        found=found.found,
        kept=len(kept),
        seconds=time.monotonic() - start,
    )


def _check_accounting(result: IngestResult, shards: Dict[str, dict]) -> None:
    """kept + rejected + ignored = found, and every kept image is in exactly one written record."""
    accounted = result.kept + sum(result.rejected.values()) + sum(result.ignored.values())
    if accounted != result.found:
        raise RuntimeError(
            f"ingest accounting broken: kept {result.kept} + rejected {sum(result.rejected.values())}"
            f" + ignored {sum(result.ignored.values())} = {accounted} != {result.found} files found"
        )
    for split, total in result.split_totals.items():
        written = sum(shards[split]["shard_lengths"])
        if written != total:
            raise RuntimeError(f"ingest wrote {written} records to split {split!r} but planned {total}")


def _stats(
    result: IngestResult, inspection: Dict[str, int], config: IngestConfig, data_dir: str, previous_dir, found
) -> dict:
    return {
        # the folder manifest.csv's paths are under (a manifest's own folder), which the gate's skew check reads
        "source": config.tfds_name
        and f"tfds:{config.tfds_name}"
        or (manifest.folder(config.manifest) if config.manifest else data_dir),
        "manifest": config.manifest,
        "previous_ingest": previous_dir,
        "files": {
            "found": result.found,
            "kept": result.kept,
            "rejected": sum(result.rejected.values()),
            "ignored": sum(result.ignored.values()),
        },
        "per_class_per_split": result.counts,
        "per_split": result.split_totals,
        "rejected_by_reason": result.rejected,
        "ignored_by_reason": result.ignored,
        "labels": list(result.labels),
        "empty_class_folders": found.empty_class_folders,
        "symlink_loops": sorted(found.symlink_loops),
        "splits": dict(config.splits),
        "inspection_counts": inspection,
        "seconds": round(result.seconds, 3),
    }
