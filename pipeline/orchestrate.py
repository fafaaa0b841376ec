"""One run from start to end: lock the root, open the lineage store, execute the DAG, report.

Kept apart from `run.py` (flag parsing) and `executor.py` (the per-component loop) so that each
reads in one screen. Everything a run writes about itself goes to `PIPELINE_ROOT/runs/<run_id>/`.
"""
import os
import sys
import time

import tensorflow as tf

from components.common import publish
from components.common.errors import EXIT_OK, PipelineError
from pipeline import artifacts, dag, demo, executor, fingerprint, lock, metadata


def _log(message: str) -> None:
    print(message, flush=True)


def run(config, beam_options, run_id: str, args, use_demo: bool, argv: list) -> int:
    """Execute one run; returns the exit code (raises `PipelineError` for the failures it maps)."""
    root = config.pipeline.pipeline_root
    tf.io.gfile.makedirs(root)
    with lock.hold(artifacts.lock_path(root), run_id, wait=args.wait, log=_log):
        for path in artifacts.remove_stale_temporaries(root):
            _log(f"[pipeline] removed {path}, left half-written by a killed run")
        store = metadata.Store(artifacts.metadata_path(root))
        try:
            return _run_locked(config, beam_options, run_id, args, use_demo, argv, root, store)
        finally:
            store.close()


def _run_locked(config, beam_options, run_id, args, use_demo, argv, root, store) -> int:
    started = time.monotonic()
    store.start_run(run_id, " ".join(["python -m pipeline.run", *argv]), config.to_dict(), fingerprint.code_version())
    run_dir = artifacts.run_dir(root, run_id)
    tf.io.gfile.makedirs(run_dir)
    publish.write_text_atomic(os.path.join(run_dir, "config.yaml"), config.to_yaml())
    _log(f"[pipeline] run {run_id} in {root} (effective config: {os.path.join(run_dir, 'config.yaml')})")
    try:
        if use_demo:
            demo.ensure_dataset(root, log=_log)
        forced = set().union(*(dag.downstream(name) for name in args.force)) if args.force else set()
        if args.only:
            forced.add(args.only) if args.only in forced else None
        ctx = executor.Context(
            config=config, store=store, run_id=run_id, root=root, beam_options=beam_options,
            serving_dir=config.pipeline.effective_serving_dir, force_push=args.force_push, log=_log,
        )
        executor.execute(ctx, dag.select(args.only, args.stop_after), forced)
    except PipelineError as e:
        store.end_run(run_id, "failed", e.exit_code, str(e))
        _log(f"[pipeline] run {run_id} ended with exit code {e.exit_code} after {time.monotonic() - started:.1f} s")
        raise
    except BaseException as e:
        store.end_run(run_id, "failed", 1, f"{type(e).__name__}: {e}")
        raise
    store.end_run(run_id, "complete", EXIT_OK)
    _log(f"[pipeline] run {run_id} complete in {time.monotonic() - started:.1f} s")
    sys.stdout.flush()
    return EXIT_OK
