"""One run from start to end: lock the root, open the lineage store, execute the DAG, report.

Kept apart from `run.py` (flag parsing) and `executor.py` (the per-component loop) so that each
reads in one screen. Everything a run writes about itself goes to `PIPELINE_ROOT/runs/<run_id>/`.
"""

import os
import sys
import time

from components.common import fileio, publish
from components.common.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_BLESSED,
    EXIT_OK,
    EXIT_TERMINATED,
    NotBlessedError,
    PipelineError,
    Terminated,
    UsageError,
)
from pipeline import artifacts, dag, demo, executor, fingerprint, library_logs, lock, metadata, report


def _log(message: str) -> None:
    print(message, flush=True)


def _given(config) -> list:
    """[(key, value, where it was given)] of every value that is not its section's default."""
    from pipeline import config as config_mod

    rows = []
    for section, cls in config_mod.section_classes().items():
        default = config_mod.to_plain(cls())
        for key, value in config.section_dict(section).items():
            where = config.sources.get(f"{section}.{key}")
            if where is not None and value != default.get(key):
                rows.append((f"{section}.{key}", value, where))
    return rows


def dry_run(config, beam_args, run_id: str, args, use_demo: bool) -> int:
    """`--dry-run`: the effective config's values that are not defaults (with where each was given) and
    what each step would do, reuse or run; nothing is run, locked or written."""
    root = config.pipeline.pipeline_root
    _log("[dry run] nothing is run or written")
    given = _given(config)
    _log(
        "effective config, values that are not the defaults:" if given else "effective config: every value is a default"
    )
    for key, value, where in given:
        _log(f"  {key}: {value}  ({where})")
    nodes = dag.select(args.only, args.stop_after)
    ctx = executor.Context(config, None, run_id, root, beam_args, config.pipeline.effective_serving_dir, log=_log)
    executor.preflight(ctx, nodes, costly=False)
    forced = set().union(*(dag.downstream(name) for name in args.force)) if args.force else set()
    if not fileio.exists(artifacts.metadata_path(root)):
        steps = [(node.name, f"run (nothing in {root} yet)") for node in nodes]
    elif use_demo and not publish.is_complete(artifacts.demo_dir(root)):
        steps = [(node.name, "run (the demo dataset is generated first)") for node in nodes]
    else:
        ctx.store = metadata.Store(artifacts.metadata_path(root))
        try:
            steps = executor.plan(ctx, nodes, forced)
        finally:
            ctx.store.close()
    _log("steps:")
    for name, what in steps:
        _log(f"  {name}: {what}")
    return EXIT_OK


def run(config, beam_args, run_id: str, args, use_demo: bool, argv: list) -> int:
    """Execute one run; returns the exit code (raises `PipelineError` for the failures it maps)."""
    root = config.pipeline.pipeline_root
    if fileio.exists(root) and not fileio.isdir(root):
        raise UsageError(f"--pipeline-root {root} is a file: give a folder (it is created when missing)")
    serving_dir = config.pipeline.effective_serving_dir
    checks = executor.Context(config, None, run_id, root, beam_args, serving_dir, log=_log)
    new_root = not fileio.exists(root)
    executor.preflight(checks, dag.select(args.only, args.stop_after), costly=new_root)
    fileio.makedirs(root)
    with lock.hold(artifacts.lock_path(root), run_id, wait=args.wait, log=_log):
        for path in artifacts.remove_stale_temporaries(root, dag.names()):
            _log(f"[pipeline] removed {path}, left half-written by a killed run")
        store = metadata.Store(artifacts.metadata_path(root))
        try:
            return _run_locked(config, beam_args, run_id, args, use_demo, argv, root, store, new_root)
        finally:
            store.close()


def _run_locked(config, beam_args, run_id, args, use_demo, argv, root, store, costly_checked) -> int:
    started = time.monotonic()
    attached = store.start_run(
        run_id, " ".join(["python -m pipeline.run", *argv]), config.to_dict(), fingerprint.code_version()
    )
    run_dir = artifacts.run_dir(root, run_id)
    fileio.makedirs(run_dir)
    publish.write_text_atomic(os.path.join(run_dir, "config.yaml"), config.to_yaml())
    joined = "attached to run" if attached else "run"
    _log(f"[pipeline] {joined} {run_id} in {root} (effective config: {os.path.join(run_dir, 'config.yaml')})")
    # A scheduler's task runs one step of a run it names; the run's last task (--report) ends it.
    step_of_scheduled_run = args.run_id is not None and args.only is not None
    status, code = ("step done", EXIT_OK) if step_of_scheduled_run else ("complete", EXIT_OK)
    try:
        with library_logs.to_file(os.path.join(run_dir, "library.log")):
            if use_demo:
                demo.ensure_dataset(root, log=_log)
            forced = set().union(*(dag.downstream(name) for name in args.force)) if args.force else set()
            ctx = executor.Context(
                config=config,
                store=store,
                run_id=run_id,
                root=root,
                beam_args=beam_args,
                serving_dir=config.pipeline.effective_serving_dir,
                force_push=args.force_push,
                verify=args.verify,
                log=_log,
                in_run=args.run_id is not None,
                attempt=args.attempt,
            )
            executor.execute(ctx, dag.select(args.only, args.stop_after), forced, costly_checked)
    except PipelineError as e:
        status, code = ("not blessed" if isinstance(e, NotBlessedError) else "failed"), e.exit_code
        store.end_run(run_id, status, code, str(e))
        raise
    except (KeyboardInterrupt, Terminated) as e:
        status = "interrupted"
        code = EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
        store.end_run(run_id, status, code, "stopped by SIGTERM" if isinstance(e, Terminated) else "stopped by Ctrl-C")
        raise
    except BaseException as e:
        status, code = "failed", EXIT_FAILURE
        store.end_run(run_id, status, code, f"{type(e).__name__}: {e}")
        raise
    else:
        store.end_run(
            run_id, status, code, f"{args.only} done; the run's --report task ends it" if step_of_scheduled_run else ""
        )
    finally:
        if step_of_scheduled_run:
            _log(
                f"[pipeline] run {run_id}: {args.only} {status} (exit code {code}) in {time.monotonic() - started:.1f} s"
            )
        else:
            _finish(store, run_id, config, run_dir, status, code, started)
    return code


def end_scheduled_run(config, run_id: str) -> int:
    """`--report --run-id ID`: end a run whose steps a scheduler ran one per task: its status and exit
    code from what each step recorded (the first step that stopped it, in the graph's order; a step
    never run), and its report, whatever happened (Airflow's `trigger_rule=all_done`)."""
    root = config.pipeline.pipeline_root
    never = (
        f"no step of run {run_id} is recorded in {root}: its first step was refused before it started (that "
        "task's log says why), or this task was given another --pipeline-root or --config"
    )
    if not fileio.exists(artifacts.metadata_path(root)):
        raise UsageError(never)
    started = time.monotonic()
    with lock.hold(artifacts.lock_path(root), run_id, wait=True, log=_log):
        store = metadata.Store(artifacts.metadata_path(root))
        try:
            row = store.run(run_id)
            if row is None or row["id"] != run_id:
                raise UsageError(never)
            status, code, message = outcome(store, run_id)
            store.end_run(run_id, status, code, message)
            _log(f"[pipeline] run {run_id}: {status}" + (f": {message}" if message else ""))
            _finish(store, run_id, config, artifacts.run_dir(root, run_id), status, code, started)
        finally:
            store.close()
    return code


def outcome(store, run_id: str) -> tuple:
    """(status, exit code, message) of a run from its steps' latest executions, in the graph's order."""
    latest = {e["component"]: e for e in store.executions(run_id)}
    missing = []
    for node in dag.NODES:
        execution = latest.get(node.name)
        if execution is None:
            missing.append(node.name)
            continue
        code = execution["exit_code"] or (EXIT_FAILURE if execution["status"] in ("failed", "interrupted") else 0)
        if code:
            why = (execution["error"] or execution["summary"] or "").strip().splitlines()
            status = "not blessed" if code == EXIT_NOT_BLESSED else "failed"
            return status, code, f"{node.name} exited {code}" + (f": {why[0]}" if why else "")
    if missing:
        return "incomplete", EXIT_FAILURE, f"no step recorded for {', '.join(missing)}"
    return "complete", EXIT_OK, ""


def _finish(store, run_id, config, run_dir, status, code, started) -> None:
    """Write the report and print the text summary (also after a failure: it shows how far it got)."""
    outputs = {
        e["component"]: e["output_uri"]
        for e in store.executions(run_id)
        if e["status"] in ("complete", "cached") and e["output_uri"]
    }
    text = report.write(store, run_id, config, outputs, run_dir, status, fingerprint.code_version())
    _log("")
    _log(text)
    _log(f"report: {os.path.join(run_dir, 'report.html')}")
    _log(f"[pipeline] run {run_id} {status} (exit code {code}) in {time.monotonic() - started:.1f} s")
    sys.stdout.flush()
