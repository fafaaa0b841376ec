"""Runs the selected DAG nodes in order: fingerprint, reuse or execute, record lineage, report progress.

For each node: resolve its inputs (this run's upstream outputs, or with `--only` the latest
successful ones), compute its input fingerprint, and either reuse an earlier complete execution
with the same fingerprint (its published output still present) or run the component into a
fresh `<component>/<run_id>/`. The execution is recorded as `running` before the component
starts, so lineage tells a killed run apart from a finished one; because components publish by
rename, a rerun after a kill finds only complete outputs and reuses them.
"""
import csv
import dataclasses
import json
import os
import time

import tensorflow as tf

from components.common import publish
from components.common.errors import NotBlessedError, UsageError
from pipeline import artifacts, dag, fingerprint


@dataclasses.dataclass
class Input:
    uri: str
    fingerprint: str
    execution_id: int


@dataclasses.dataclass
class Context:
    """What the DAG's adapters may read: config, options and the resolved per-run paths."""

    config: object  # pipeline.config.RunConfig
    store: object  # pipeline.metadata.Store
    run_id: str
    root: str
    beam_options: object
    serving_dir: str
    force_push: bool = False
    baseline_dir: str | None = None
    train_work_dir: str | None = None
    reuse: dict = dataclasses.field(default_factory=dict)  # component -> earlier execution to reuse
    listing: dict | None = None  # the data folder's listing, when the ingest reads a folder
    log: object = print

    def train_input(self, ingest_dir: str) -> str:
        """The ingest the trainer reads: as ingested, or its train split cut to --train-fraction."""
        fraction = self.config.pipeline.train_fraction
        if fraction >= 1.0:
            return ingest_dir
        from components.common import subsample

        out = os.path.join(self.root, "train", "_subsample", fingerprint.digest([ingest_dir, fraction])[:16])
        if not publish.is_complete(out):
            if tf.io.gfile.exists(out):
                tf.io.gfile.rmtree(out)
            counts = subsample.run(ingest_dir, fraction, out)
            self.log(f"[pipeline] train: training on {counts['train_after']} of {counts['train_before']} "
                     f"train images (--train-fraction {fraction:g}, stratified per class)")
        return out

    def previous_output(self, component: str, before: str | None = None) -> str | None:
        """The latest complete output of `component` other than `before` (None if there is none)."""
        rows = self.store.db.execute(
            "SELECT output_uri FROM executions WHERE component=? AND status IN ('complete','cached') "
            "ORDER BY id DESC",
            (component,),
        ).fetchall()
        for row in rows:
            uri = row["output_uri"]
            if uri and uri != before and publish.is_complete(uri):
                return uri
        return None


def _plain(result) -> dict:
    """A component result as JSON-able properties for the lineage store."""
    if dataclasses.is_dataclass(result):
        data = dataclasses.asdict(result)
    elif isinstance(result, dict):
        data = dict(result)
    else:
        data = {k: v for k, v in vars(result).items() if not k.startswith("_")} if hasattr(result, "__dict__") else {}
    return json.loads(json.dumps(data, default=str))


def _summary(result) -> str:
    summary = getattr(result, "summary", None)
    return summary() if callable(summary) else ""


def _model_name(config) -> str:
    return getattr(config["push"], "model_name", "model") if config["push"] is not None else "model"


def _latest_version_dir(serving_dir: str, model_name: str) -> str | None:
    model_dir = os.path.join(serving_dir, model_name)
    if not tf.io.gfile.isdir(model_dir):
        return None
    versions = [int(n.rstrip("/")) for n in tf.io.gfile.listdir(model_dir) if n.rstrip("/").isdigit()]
    return os.path.join(model_dir, str(max(versions))) if versions else None


def resolve_baseline(ctx: Context, candidate: Input) -> tuple:
    """(baseline directory or None, its fingerprint for caching).

    The baseline is the latest model this pipeline pushed (lineage), else the newest version in
    the serving directory (pushed by something else). A candidate compared with itself (the
    pushed model came from this very export) fingerprints like no baseline: nothing changed.
    """
    row = ctx.store.latest_pushed()
    if row is not None and tf.io.gfile.exists(row["uri"]):
        props = json.loads(row["properties"])
        if props.get("export_fingerprint") == candidate.fingerprint:
            _reuse_gate_of_serving_model(ctx, row)
            return row["uri"], None
        return row["uri"], row["fingerprint"]
    version_dir = _latest_version_dir(ctx.serving_dir, _model_name(ctx.config))
    if version_dir is None:
        return None, None
    return version_dir, fingerprint.digest({"serving_version": version_dir, "mtime": tf.io.gfile.stat(version_dir).mtime_nsec})


def _reuse_gate_of_serving_model(ctx: Context, pushed) -> None:
    """The candidate is the model already serving: reuse the evaluate and push that put it there.

    Evaluating a model against itself and pushing it again as a new version would change
    nothing but the version number, so both steps count as unchanged.
    """
    db = ctx.store.db
    push = db.execute("SELECT e.* FROM executions e JOIN events v ON v.execution_id=e.id WHERE v.artifact_id=? "
                      "AND v.kind='output' AND e.status='complete' ORDER BY e.id LIMIT 1", (pushed["id"],)).fetchone()
    if push is None:
        return
    for artifact in ctx.store.artifacts_of(push["id"], kind="input"):
        if artifact["type"] == "ModelBlessing":
            evaluate = db.execute("SELECT e.* FROM executions e JOIN events v ON v.execution_id=e.id "
                                  "WHERE v.artifact_id=? AND v.kind='output' AND e.status='complete' "
                                  "ORDER BY e.id LIMIT 1", (artifact["id"],)).fetchone()
            if evaluate is not None:
                ctx.reuse = {"evaluate": evaluate, "push": push}


def _ingest_basis(section: dict) -> str:
    """The ingest's fingerprint with the data left out: which earlier ingests a listing may be compared with."""
    return fingerprint.component("ingest", section, {}, {"data_dir": "*"})


def _touched_but_unchanged(ctx: Context, section: dict):
    """An earlier ingest of the same config whose files differ from now only in times, not content."""
    basis = _ingest_basis(section)
    rows = ctx.store.db.execute(
        "SELECT a.uri, a.properties, v.execution_id FROM artifacts a JOIN events v ON v.artifact_id=a.id "
        "JOIN executions e ON e.id=v.execution_id WHERE a.type='Examples' AND v.kind='output' "
        "AND e.status='complete' ORDER BY a.id DESC LIMIT 5").fetchall()
    for row in rows:
        props = json.loads(row["properties"])
        if props.get("basis") != basis or not publish.is_complete(row["uri"]):
            continue
        with tf.io.gfile.GFile(os.path.join(row["uri"], "manifest.csv")) as f:
            manifest = {r["path"]: r["sha256"] for r in csv.DictReader(f)}
        if fingerprint.proven_unchanged(props["listing"], ctx.listing, ctx.config["ingest"].data_dir, manifest):
            ctx.log("[pipeline] ingest: files were touched but their content is unchanged (sha256)")
            return ctx.store.db.execute("SELECT * FROM executions WHERE id=?", (row["execution_id"],)).fetchone()
    return None


def _extra_state(ctx: Context, node, inputs: dict):
    """State outside the artifacts that a node's output depends on."""
    if node.name == "ingest":
        section = ctx.config["ingest"]
        if section.data_dir:
            ctx.listing = fingerprint.folder_listing(section.data_dir)
            return {"data_dir": fingerprint.digest(ctx.listing)}
        return {"tfds_name": section.tfds_name}
    if node.name == "train" and ctx.config.pipeline.train_fraction < 1.0:
        return {"train_fraction": ctx.config.pipeline.train_fraction}
    if node.name == "evaluate":
        ctx.baseline_dir, baseline_fp = resolve_baseline(ctx, inputs["export"])
        return {"baseline": baseline_fp}
    if node.name == "push":
        return {"serving_dir": os.path.abspath(ctx.serving_dir) if "://" not in ctx.serving_dir else ctx.serving_dir}
    return None


def _pushed_uri(result) -> str | None:
    for key in ("version_dir", "pushed_dir", "path", "uri"):
        value = getattr(result, key, None)
        if isinstance(value, str):
            return value
    return None


def _reusable(node, row) -> bool:
    """An earlier execution's output can be reused only while it is still there, complete."""
    uri = row["output_uri"]
    if node.name == "push":
        return not uri or tf.io.gfile.exists(uri)
    return bool(uri) and publish.is_complete(uri)


def _artifact_fingerprint(ctx: Context, execution) -> str:
    """The fingerprint of what an execution wrote (for one that reused outputs: of those outputs)."""
    artifacts = ctx.store.artifacts_of(execution["id"])
    return artifacts[0]["fingerprint"] if artifacts else execution["fingerprint"]


def _resolve_inputs(ctx: Context, node, produced: dict) -> dict:
    inputs = {}
    for name in node.inputs:
        if name in produced:
            inputs[name] = produced[name]
            continue
        row = ctx.store.latest_complete(name)
        if row is None or not _reusable(dag.NODES[dag.NAMES.index(name)], row):
            raise UsageError(
                f"{node.name} needs the output of {name}, and no earlier run produced one in "
                f"{ctx.root}: run the pipeline without --only first (or with --stop-after {name})"
            )
        inputs[name] = Input(row["output_uri"], _artifact_fingerprint(ctx, row), row["id"])
    return inputs


def execute(ctx: Context, nodes: list, forced: set) -> dict:
    """Run `nodes` in order; returns {name: result or None when reused}. Raises the first failure."""
    produced, results = {}, {}
    run_started = time.monotonic()
    for node in nodes:
        run = dag.entry_point(node.name)
        if run is None or ctx.config[node.name] is None:
            ctx.log(f"[pipeline] {node.name}: not part of this version of transferline; the run ends here")
            break
        inputs = _resolve_inputs(ctx, node, produced)
        section = ctx.config.section_dict(node.name)
        fp = fingerprint.component(node.name, section, {k: v.fingerprint for k, v in inputs.items()},
                                   _extra_state(ctx, node, inputs))
        if node.name == "train":
            ctx.train_work_dir = artifacts.train_work_dir(ctx.root, fp[:16])
        hit = None if node.name in forced else (ctx.reuse.get(node.name) or ctx.store.find_complete(node.name, fp))
        if hit is None and node.name == "ingest" and ctx.listing is not None and node.name not in forced:
            hit = _touched_but_unchanged(ctx, section)
        if hit is not None and _reusable(node, hit):
            ctx.store.record_cached(ctx.run_id, node.name, fp, hit)
            produced[node.name] = Input(hit["output_uri"], _artifact_fingerprint(ctx, hit), hit["id"])
            results[node.name] = None
            ctx.log(f"[pipeline] {node.name}: unchanged, reusing {hit['output_uri'] or 'the earlier result'} "
                    f"(run {hit['run_id']})")
            if node.name == "push" and not any(
                json.loads(a["properties"]).get("pushed") for a in ctx.store.artifacts_of(hit["id"])
            ):
                raise NotBlessedError(f"the model was not pushed (unchanged since run {hit['run_id']}): "
                                      f"{(hit['summary'] or '').strip()}")
            continue
        out = artifacts.output_dir(ctx.root, node.name, ctx.run_id)
        execution_id = ctx.store.start_execution(ctx.run_id, node.name, fp, out if node.name != "push" else "")
        for name, value in inputs.items():
            for artifact in ctx.store.artifacts_of(value.execution_id):
                ctx.store.add_input(execution_id, artifact["id"])
        ctx.log(f"[pipeline] {node.name}: started ({time.monotonic() - run_started:.1f} s into the run)")
        started = time.monotonic()
        try:
            result = node.call(run, ctx, {k: v.uri for k, v in inputs.items()}, out)
        except NotBlessedError as e:  # a normal outcome of push: recorded as such, then exit code 4
            seconds = time.monotonic() - started
            ctx.store.add_artifact(execution_id, "", "PushedModel", fp,
                                   {"pushed": False, "reason": str(e), "export_fingerprint": inputs["export"].fingerprint})
            ctx.store.finish_execution(execution_id, "complete", seconds, summary=f"not pushed: {e}")
            ctx.log(f"[pipeline] {node.name}: done in {seconds:.1f} s: NOT pushed")
            raise
        except BaseException as e:
            ctx.store.finish_execution(execution_id, "failed", time.monotonic() - started, error=f"{type(e).__name__}: {e}")
            raise
        seconds = time.monotonic() - started
        summary = _summary(result)
        properties = _plain(result)
        if node.name == "ingest" and ctx.listing is not None:  # for _touched_but_unchanged next time
            properties.update(listing=ctx.listing, basis=_ingest_basis(section))
        if node.name == "push":
            out = _pushed_uri(result) if getattr(result, "pushed", True) else ""
            properties["export_fingerprint"] = inputs["export"].fingerprint
            properties.setdefault("pushed", bool(out))
            ctx.store.db.execute("UPDATE executions SET output_uri=? WHERE id=?", (out or "", execution_id))
        ctx.store.add_artifact(execution_id, out, _artifact_type(node.name), fp, properties)
        ctx.store.finish_execution(execution_id, "complete", seconds, summary=summary)
        produced[node.name] = Input(out, fp, execution_id)
        results[node.name] = result
        ctx.log(f"[pipeline] {node.name}: done in {seconds:.1f} s")
        if summary:
            ctx.log("  " + summary.strip().replace("\n", "\n  "))
        if node.name == "push" and not properties.get("pushed"):
            raise NotBlessedError(f"the model was not pushed: {summary.strip() or 'the evaluation gate did not bless it'}")
    return results


def _artifact_type(name: str) -> str:
    return {"ingest": "Examples", "validate": "ExampleAnomalies", "train": "Model", "export": "ExportedModel",
            "evaluate": "ModelBlessing", "push": "PushedModel"}[name]
