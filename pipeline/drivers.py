"""Drivers: what a node resolves before it runs, outside the artifacts it reads (TFX's driver role).

A driver returns a `Resolved`: the extra state its output depends on (fingerprinted, so a change
reruns the node), the arguments its call needs, properties to record with its output (for the
next run's driver), and a fallback reuse when the fingerprint alone finds no earlier execution.
Each reads the lineage store only through `pipeline.metadata.Store`. None imports a component:
what one needs from a component (the ingest's folder scan, the trainer's outside inputs) is given to
it by its Node in `pipeline/dag.py`, the one module that names components.
"""

import dataclasses
import os
from typing import Callable, Optional

from components.common import fileio
from components.common.errors import DataError, UsageError
from pipeline import fingerprint
from schemas.artifacts import Examples, ExportedModel, Model, ModelBlessing, ServingModel, ServingVersion


@dataclasses.dataclass
class Resolved:
    extra: object = None  # state outside the artifacts that the output depends on (part of the fingerprint)
    args: dict = dataclasses.field(default_factory=dict)  # what the call needs besides the artifacts
    properties: dict = dataclasses.field(default_factory=dict)  # recorded with the output artifact
    reuse: Optional[Callable] = None  # () -> an earlier execution to reuse, when the fingerprint finds none
    fingerprint: str = ""  # the node's input fingerprint, set by the executor once `extra` is known


def normalised_path(path: str) -> str:
    """One spelling per folder: absolute, no trailing slash (URLs of other filesystems as given)."""
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def ingest_preflight(ctx, check_source: Callable) -> None:
    """The data folder or manifest must exist (`check_source`: the ingest's check), and the pipeline root
    must not sit inside the data folder (it would become a class)."""
    from pipeline import demo

    section = ctx.config["ingest"]
    data_dir, root = section.data_dir, normalised_path(ctx.root)
    if section.manifest:
        check_source(section, ctx.config.sources.get("ingest.manifest", "--manifest"))
    elif data_dir and normalised_path(data_dir) != normalised_path(demo.images_dir(root)):  # the demo's is made later
        check_source(section, ctx.config.sources.get("ingest.data_dir", "--data-dir"))
    if data_dir and "://" not in data_dir and (root + os.sep).startswith(normalised_path(data_dir) + os.sep):
        raise UsageError(
            f"the pipeline root {root} is inside the data folder {data_dir}: its outputs would be "
            "ingested as a class; put the pipeline root (--pipeline-root) outside the data folder"
        )


def train(ctx, inputs, outside: Callable) -> Resolved:
    """What the trainer reads besides its artifacts, by content (`outside(config)`: the `train.exclude`
    list, the distillation teacher): editing either file (same path) retrains, and so does another
    model named by `train.warm_start`; `auto` passes the model in production's train output."""
    from schemas.artifacts import file_sha256

    config = ctx.config["train"]
    extra, args = dict(outside(config)), {"warm_start": None}
    if config.warm_start == "auto":
        # Not part of the fingerprint: a start is a way to train on these inputs, and a train output
        # already made from them (say, the model in production itself) is reused, not warm-started again.
        args["warm_start"] = _production_train_output(ctx)
    elif config.warm_start != "none":
        model = os.path.join(config.warm_start.removesuffix("/model.keras"), "model.keras")
        extra["warm_start"] = file_sha256(model) if fileio.exists(model) else config.warm_start  # the trainer says why
    return Resolved(extra=extra or None, args=args)


def _production_train_output(ctx) -> str | None:
    """The train output behind the model this pipeline last pushed to the destination (lineage: push <-
    export <- train), or None (nothing pushed, pushed by something else, or the lineage lost it)."""
    pushed = ctx.store.latest_pushed(_destination(ctx))
    if pushed is None:
        return None
    export = ctx.store.upstream(pushed["id"], ExportedModel.TYPE)
    outputs = ctx.store.artifacts_of(export["id"]) if export is not None else []
    train = ctx.store.upstream(outputs[0]["id"], Model.TYPE) if outputs else None
    return train["output_uri"] if train is not None else None


def tune(ctx, inputs, outside: Callable) -> Resolved:
    """The search starts from the train config and trains on what the trainer reads besides its
    artifacts (`outside`: the `exclude` list, the teacher; trials never warm-start): a change to any of
    them searches again. Tuning off publishes the same empty recipe whatever they are, so then they
    are not part of its fingerprint."""
    if not ctx.config["tune"].enabled:
        return Resolved()
    inputs_of_train = outside(ctx.config["train"])
    return Resolved(extra={"train": ctx.config.section_dict("train"), "train_inputs": inputs_of_train or None})


def push_preflight(ctx) -> None:
    """The serving directory must be a folder this run can write. Nothing is created: an existing
    folder is probed with a file written and removed, a missing local one by its nearest existing
    parent's permissions (other filesystems: their writes fail at push, with the same message)."""
    serving = ctx.serving_dir
    try:
        if fileio.isdir(serving):
            probe = os.path.join(serving, f".tmp-write-check-{os.getpid()}")
            with fileio.GFile(probe, "w") as f:
                f.write("")
            fileio.remove(probe)
            return
        if fileio.exists(serving):
            raise OSError(f"{serving} is a file")
        if not fileio.local(serving):
            return
        parent = os.path.dirname(os.path.abspath(serving))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            raise OSError(f"{parent} is not a folder this process may write in")
    except (OSError, *fileio.errors()) as e:
        raise UsageError(
            f"the serving directory {serving} is not writable ({getattr(e, 'message', e)}): fix its "
            "permissions or choose another --serving-dir"
        ) from None


def ingest(ctx, inputs, listing_of: Callable, root_of: Callable) -> Resolved:
    """The listing of the data folder or the manifest's files (`listing_of`: the ingest's own scan) or the
    TFDS name, and the previous ingest that split stability keeps."""
    section = ctx.config["ingest"]
    previous = _trusted_previous_ingest(ctx)
    if section.tfds_name:
        return Resolved(extra={"tfds_name": section.tfds_name}, args={"previous": previous, "reuse": False})
    listing = listing_of(section)
    basis = fingerprint.component(
        "ingest", "components/ingest", {**ctx.config.section_dict("ingest"), "data_dir": "*"}, {}
    )
    # What a record's bytes depend on: an earlier ingest's records are reused only when this matches.
    decoding = {key: ctx.config.section_dict("ingest")[key] for key in ("min_side", "max_pixels", "max_side")}
    records_basis = fingerprint.digest({"decoding": decoding, "code": fingerprint.code_version("components/ingest")})
    reuse = bool(section.incremental and previous and _properties_of(ctx, previous).get("records") == records_basis)
    damage = Examples(previous).damage() if reuse else ""  # sizes of every file: a deleted or cut shard
    if damage:
        ctx.log(
            f"[pipeline] ingest: not reusing the records of {previous}, which is damaged ({damage}): reading every file"
        )
        reuse = False
    return Resolved(
        extra={"data_dir": fingerprint.digest(listing)},
        args={"previous": previous, "reuse": reuse},
        properties={"listing": listing, "basis": basis, "records": records_basis},
        reuse=lambda: _touched_but_unchanged(ctx, listing, basis, root_of(section)),
    )


def _trusted_previous_ingest(ctx) -> str | None:
    """The last successful ingest, whose manifest.csv keeps every known image in its split.

    Split stability rests on that one file, so the lineage's latest ingest must still be there,
    complete, with its manifest as published (sha256); otherwise the run stops rather than let
    images change split silently.
    """
    previous = ctx.store.latest_output("ingest", complete=lambda uri: True)
    if previous is None:
        return None
    damage = Examples(previous).damage(deep=True, only={Examples.MANIFEST})
    if damage:
        raise DataError(
            f"the previous ingest, whose manifest.csv keeps every known image in its split, is damaged: {damage}. "
            f"Restore {previous} from a backup; or, to start a new split memory on purpose (images may change "
            "split, and test metrics are then not comparable with earlier runs), use a new --pipeline-root"
        )
    return previous


def _properties_of(ctx, uri: str) -> dict:
    """The lineage's properties of the Examples artifact at `uri` ({} when it is not among the recent ones)."""
    for _execution_id, output, props in ctx.store.recent_outputs(Examples.TYPE, limit=5):
        if output == uri:
            return props
    return {}


def _touched_but_unchanged(ctx, listing: dict, basis: str, data_dir: str):
    """An earlier ingest of the same config whose files differ from now only in times, not content."""
    for execution_id, uri, props in ctx.store.recent_outputs(Examples.TYPE, limit=5):
        if props.get("basis") != basis or not Examples(uri).is_complete():
            continue
        manifest = {row["path"]: row["sha256"] for row in Examples(uri).manifest()}
        if fingerprint.proven_unchanged(props["listing"], listing, data_dir, manifest):
            ctx.log("[pipeline] ingest: files were touched but their content is unchanged (sha256)")
            return ctx.store.execution(execution_id)
    return None


def validate(ctx, inputs) -> Resolved:
    """The ingest before the one being validated: the drift checks compare with it."""
    previous = ctx.store.latest_output(
        "ingest", complete=lambda uri: Examples(uri).is_complete(), before=inputs["ingest"].uri
    )
    return Resolved(args={"previous": previous})


def _destination(ctx) -> str:
    return ServingModel(normalised_path(ctx.serving_dir), ctx.config["push"].model_name).uri


def evaluate(ctx, inputs) -> Resolved:
    """The baseline: the model in production at this push destination.

    That is the latest model this pipeline pushed there (lineage), else the newest version in
    the serving directory (pushed by something else). A candidate that is the model already
    serving fingerprints like no baseline, and reuses the evaluation that put it there:
    evaluating a model against itself and pushing it again would change only the version number.
    """
    candidate = inputs["export"]
    pushed = ctx.store.latest_pushed(_destination(ctx))
    if pushed is not None and ServingVersion(pushed["uri"]).exists():
        if pushed["properties"].get("export_fingerprint") == candidate.fingerprint:
            return Resolved(
                args={"baseline": pushed["uri"]}, reuse=lambda: ctx.store.upstream(pushed["id"], ModelBlessing.TYPE)
            )
        return Resolved(extra={"baseline": pushed["fingerprint"]}, args={"baseline": pushed["uri"]})
    latest = ServingModel(ctx.serving_dir, ctx.config["push"].model_name).latest()
    if latest is None:
        return Resolved(args={"baseline": None})
    stamp = fingerprint.digest({"serving_version": latest.uri, "mtime": latest.mtime_ns()})
    return Resolved(extra={"baseline": stamp}, args={"baseline": latest.uri})


def push(ctx, inputs) -> Resolved:
    """The destination, which decides reuse as much as the model does; the export, for the next baseline."""
    destination = _destination(ctx)
    return Resolved(
        extra={"destination": destination},
        properties={"export_fingerprint": inputs["export"].fingerprint, "destination": destination},
    )
