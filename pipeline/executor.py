"""Runs the selected DAG nodes in order: resolve, fingerprint, reuse or execute, record lineage.

For each node (`pipeline/dag.py` says everything that differs between them): resolve its inputs
(this run's upstream outputs; with `--only`, those recorded earlier in the same run when a
scheduler gave its `--run-id`, else the latest successful ones), run its driver,
compute its input fingerprint, and either reuse an earlier complete execution with the same
fingerprint (its published output still complete) or run the component into a fresh
`<component>/<run_id>/`. The execution is recorded as `running` before the component starts, so
lineage tells a killed run apart from a finished one; because components publish by rename, a
rerun after a kill finds only complete outputs and reuses them. A result that is not ok stops
the run with the node's own error (and so its exit code), after its outcome is recorded.
"""

import dataclasses
import json
import time
from typing import Optional

from components.common.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    DataError,
    PipelineError,
    Terminated,
    UsageError,
)
from pipeline import artifacts, dag, drivers, fingerprint


@dataclasses.dataclass
class Input:
    uri: str
    fingerprint: str
    execution_id: int


@dataclasses.dataclass
class Context:
    """What drivers and calls may read: config, options, the lineage store and the run's paths."""

    config: object  # pipeline.config.RunConfig
    store: object  # pipeline.metadata.Store
    run_id: str
    root: str
    beam_args: list  # Beam's flags (pipeline/run.py checked them); the ingest builds its PipelineOptions
    serving_dir: str
    force_push: bool = False
    verify: bool = False  # compare every reused file's sha256 too, not only its size
    log: object = print
    in_run: bool = False  # inputs not produced in this process come from this run's lineage only (--run-id)
    attempt: Optional[int] = None  # the scheduler's try number of this step (--attempt), kept in the lineage


def _damage(ctx: Context, node, execution) -> str:
    """Why an earlier output cannot be reused ("" when it can: complete, every file as published)."""
    uri = execution["output_uri"]
    return node.artifact(uri).damage(deep=ctx.verify) if uri else ""


def _usable(ctx: Context, node, execution):
    """`execution` when its output can be reused; None (saying why, when it is damaged) otherwise."""
    if execution is None:
        return None
    damage = _damage(ctx, node, execution)
    if damage:
        ctx.log(
            f"[pipeline] WARNING {node.name}: the earlier output of run {execution['run_id']} is damaged "
            f"({damage}); running {node.name} again"
        )
        return None
    return execution


def _artifact_fingerprint(ctx: Context, execution) -> str:
    """The fingerprint of what an execution wrote (for one that reused outputs: of those outputs)."""
    written = ctx.store.artifacts_of(execution["id"])
    return written[0]["fingerprint"] if written else execution["fingerprint"]


def _resolve_inputs(ctx: Context, node, produced: dict) -> dict:
    inputs = {}
    for name in node.inputs:
        if name in produced:
            inputs[name] = produced[name]
            continue
        row = ctx.store.latest_complete(name, ctx.run_id if ctx.in_run else None)
        if row is None and ctx.in_run:
            raise UsageError(
                f"{node.name} needs the output of {name}, and run {ctx.run_id} has none yet: run "
                f"--only {name} --run-id {ctx.run_id} first (a scheduler runs the steps in the graph's order)"
            )
        if row is None:
            raise UsageError(
                f"{node.name} needs the output of {name}, and no earlier run produced one in "
                f"{ctx.root}: run the pipeline without --only first (or with --stop-after {name})"
            )
        damage = _damage(ctx, dag.node(name), row)
        if damage:
            raise DataError(
                f"{node.name} needs the output of {name}, and the latest one is damaged: {damage}. "
                f"Run the pipeline without --only (or with --stop-after {name}) to produce it again"
            )
        inputs[name] = Input(row["output_uri"], _artifact_fingerprint(ctx, row), row["id"])
    return inputs


def _ok(ctx: Context, execution) -> bool:
    """Whether an earlier execution's outcome was ok (records older than the `ok` flag: push's `pushed`)."""
    for artifact in ctx.store.artifacts_of(execution["id"]):
        props = json.loads(artifact["properties"] or "{}")
        if not props.get("ok", props.get("pushed", True)):
            return False
    return True


def _reuse(ctx: Context, node, fp: str, hit) -> Input:
    failure = None
    if node.failure is not None and not _ok(ctx, hit):
        failure = node.failure(
            f"unchanged since run {hit['run_id']}: {(hit['summary'] or '').strip()}", hit["output_uri"]
        )
    ctx.store.record_cached(
        ctx.run_id, node.name, fp, hit, exit_code=failure.exit_code if failure else 0, attempt=ctx.attempt
    )
    ctx.log(
        f"[pipeline] {node.name}: unchanged, reusing {hit['output_uri'] or 'the earlier result'} (run {hit['run_id']})"
    )
    if failure is not None:
        raise failure
    return Input(hit["output_uri"], _artifact_fingerprint(ctx, hit), hit["id"])


def _run(ctx: Context, node, run, inputs: dict, resolved, started_run: float) -> Input:
    fp = resolved.fingerprint
    out = artifacts.output_dir(ctx.root, node.name, ctx.run_id)
    execution_id = ctx.store.start_execution(ctx.run_id, node.name, fp, "", attempt=ctx.attempt)
    for value in inputs.values():
        for artifact in ctx.store.artifacts_of(value.execution_id):
            ctx.store.add_input(execution_id, artifact["id"])
    ctx.log(f"[pipeline] {node.name}: started ({time.monotonic() - started_run:.1f} s into the run)")
    started = time.monotonic()
    try:
        result = node.call(run, ctx, {k: v.uri for k, v in inputs.items()}, out, resolved)
    except BaseException as e:
        stopped = isinstance(e, (KeyboardInterrupt, Terminated))
        ctx.store.finish_execution(
            execution_id,
            "interrupted" if stopped else "failed",
            time.monotonic() - started,
            error=f"{type(e).__name__}: {e}",
            exit_code=exit_code_of(e),
        )
        raise
    seconds = time.monotonic() - started
    summary = result.summary()
    properties = {**result.properties(), **resolved.properties, "ok": result.ok}
    failure = node.failure(summary, result.output_dir) if node.failure is not None and not result.ok else None
    ctx.store.add_artifact(execution_id, result.output_dir, node.artifact.TYPE, fp, properties)
    ctx.store.finish_execution(
        execution_id,
        "complete",
        seconds,
        summary=summary,
        output_uri=result.output_dir,
        exit_code=failure.exit_code if failure else 0,
    )
    ctx.log(f"[pipeline] {node.name}: done in {seconds:.1f} s" + ("" if result.ok else ": NOT ok"))
    if summary:
        ctx.log("  " + summary.strip().replace("\n", "\n  "))
    if failure is not None:
        raise failure
    return Input(result.output_dir, fp, execution_id)


def exit_code_of(error: BaseException) -> int:
    """The exit code `pipeline.run` ends with for `error` (docs/cli.md's table)."""
    if isinstance(error, PipelineError):
        return error.exit_code
    if isinstance(error, Terminated):
        return EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILURE


def _decide(ctx: Context, node, inputs: dict, forced: set) -> tuple:
    """(the node's resolved driver output with its input fingerprint, the earlier execution to reuse or None)."""
    resolved = node.resolve(ctx, inputs) if node.resolve else drivers.Resolved()
    resolved.fingerprint = fingerprint.component(
        node.name,
        node.package,
        ctx.config.section_dict(node.name),
        {k: v.fingerprint for k, v in inputs.items()},
        resolved.extra,
    )
    if node.name in forced:
        return resolved, None
    hit = _usable(ctx, node, ctx.store.find_complete(node.name, resolved.fingerprint))
    if hit is None and resolved.reuse is not None:
        hit = _usable(ctx, node, resolved.reuse())
    return resolved, hit


def preflight(ctx: Context, nodes: list, costly: bool) -> None:
    """Every check that needs no data, before anything is written (the pipeline root, its lock and
    lineage store included): a refused run leaves the disk as it was. `ctx.store` is not used.

    costly: also the checks that build something (a backbone, a weights file): for a new pipeline
    root, where nothing can be reused; otherwise `execute` runs them before the first execution, so
    that a run whose every step is reused does not pay for them."""
    for node in nodes:
        if node.preflight is not None:
            node.preflight(ctx)
    for node in nodes if costly else ():
        if node.costly_preflight is not None:
            node.costly_preflight(ctx)


def execute(ctx: Context, nodes: list, forced: set, costly_checked: bool = False) -> dict:
    """Run `nodes` in order; returns {name: Input of its output}. Raises the first failure."""
    produced = {}
    started_run = time.monotonic()
    costly_checks = [] if costly_checked else [n.costly_preflight for n in nodes if n.costly_preflight is not None]
    for node in nodes:
        run = dag.entry_point(node)
        inputs = _resolve_inputs(ctx, node, produced)
        resolved, hit = _decide(ctx, node, inputs, forced)
        if hit is not None:
            produced[node.name] = _reuse(ctx, node, resolved.fingerprint, hit)
        else:
            while costly_checks:  # before the first execution; a fully cached run needs none of them
                costly_checks.pop(0)(ctx)
            produced[node.name] = _run(ctx, node, run, inputs, resolved, started_run)
    return produced


def plan(ctx: Context, nodes: list, forced: set) -> list:
    """[(node name, what a run would do)] without running or recording anything (`pipeline.run --dry-run`).

    A node is reused when an earlier complete execution has its input fingerprint and an undamaged
    output, exactly as `execute` decides; one that would run gives its successors a new input, whose
    fingerprint (and so whether they could be reused) is known only once it has run."""
    produced, steps, runs = {}, [], []
    for node in nodes:
        try:
            inputs = _resolve_inputs(ctx, node, produced)
            if any(name in runs for name in node.inputs):
                steps.append((node.name, f"run (after {', '.join(n for n in node.inputs if n in runs)})"))
                runs.append(node.name)
                continue
            _resolved, hit = _decide(ctx, node, inputs, forced)
        except PipelineError as e:
            steps.append((node.name, f"cannot run: {e}"))
            runs.append(node.name)
            continue
        if hit is not None:
            produced[node.name] = Input(hit["output_uri"], _artifact_fingerprint(ctx, hit), hit["id"])
            steps.append((node.name, f"reuse {hit['output_uri'] or 'the earlier result'} (run {hit['run_id']})"))
        else:
            why = "forced" if node.name in forced else "no earlier run had these inputs and this config"
            steps.append((node.name, f"run ({why})"))
            runs.append(node.name)
    return steps
