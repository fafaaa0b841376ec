"""`python -m pipeline.runs list|show RUN`: what ran, what was reused, what was pushed.

Reads the lineage store (`PIPELINE_ROOT/metadata.sqlite`) only; it takes no lock, so it works
while a run is in progress (SQLite's WAL mode lets it read beside the writer).
"""

import argparse
import datetime
import json
import os
import sys

from components.common.errors import EXIT_USAGE, PipelineError
from pipeline import artifacts, metadata

STATUS_MARK = {"complete": "ran", "cached": "reused", "failed": "FAILED", "running": "running", "interrupted": "killed"}


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    seconds = (datetime.datetime.strptime(end, fmt) - datetime.datetime.strptime(start, fmt)).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _table(headers: list, rows: list) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _pushed(store, run_id: str) -> str:
    """What this run pushed: the version directory, 'not blessed', or '-'."""
    for execution in store.executions(run_id):
        if execution["component"] != "push" or execution["status"] not in ("complete", "cached"):
            continue
        unchanged = "unchanged: " if execution["status"] == "cached" else ""
        for artifact in store.artifacts_of(execution["id"]):
            props = json.loads(artifact["properties"])
            if props.get("pushed"):
                return unchanged + artifact["uri"] + (" (FORCED)" if props.get("forced") else "")
            return unchanged + "not blessed"
    return "-"


def _metric(store, run_id: str) -> str:
    """The candidate's overall test accuracy from this run's evaluate artifact (reused or not)."""
    for execution in store.executions(run_id):
        if execution["component"] != "evaluate":
            continue
        for artifact in store.artifacts_of(execution["id"]):
            metrics = json.loads(artifact["properties"]).get("metrics") or {}
            value = metrics.get("candidate", {}).get("overall", {}).get("accuracy")
            if isinstance(value, (int, float)):
                return f"{value:.3f}"
    return "-"


def list_runs(store) -> str:
    rows = []
    for run in store.runs():
        steps = " ".join(
            f"{e['component']}:{STATUS_MARK.get(e['status'], e['status'])}" for e in store.executions(run["id"])
        )
        rows.append(
            [
                run["id"],
                run["started"][:19].replace("T", " "),
                run["status"],
                "-" if run["exit_code"] is None else run["exit_code"],
                _duration(run["started"], run["ended"]),
                _metric(store, run["id"]),
                _pushed(store, run["id"]),
                steps or "-",
            ]
        )
    if not rows:
        return "no runs recorded yet"
    return _table(["run", "started (UTC)", "status", "exit", "took", "accuracy", "pushed", "components"], rows)


def show_run(store, run_id: str) -> str:
    run = store.run(run_id)
    if run is None:
        matches = store.runs_starting_with(run_id)
        raise LookupError(
            f"{len(matches)} runs start with {run_id!r} ({', '.join(matches[:5])}): give more of the id"
            if len(matches) > 1
            else f"no run {run_id!r}"
        )
    out = [
        f"run {run['id']}: {run['status']} (exit {run['exit_code']}), started {run['started']}, "
        f"took {_duration(run['started'], run['ended'])}",
        "command: " + "\n         ".join((run["command"] or "").splitlines()),
        f"code: {run['code_version']}",
    ]
    if run["message"]:
        out.append(f"message: {run['message']}")
    rows = []
    for e in store.executions(run["id"]):
        note = e["error"] or ""
        if e["status"] == "cached":
            source = store.execution(e["cached_from"])
            note = f"reused from run {source['run_id'] if source else '?'}"
        rows.append(
            [
                e["component"],
                STATUS_MARK.get(e["status"], e["status"]),
                "-" if e["exit_code"] is None else e["exit_code"],
                "-" if e["attempt"] is None else e["attempt"],
                f"{e['seconds'] or 0:.1f}s",
                (e["fingerprint"] or "")[:12],
                e["output_uri"] or "-",
                note,
            ]
        )
    headers = ["component", "status", "exit", "try", "took", "fingerprint", "output", "note"]
    out += ["", _table(headers, rows)]
    for e in store.executions(run["id"]):
        if e["summary"]:
            out += ["", f"{e['component']}:", "  " + e["summary"].strip().replace("\n", "\n  ")]
    out += ["", f"pushed: {_pushed(store, run['id'])}"]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(add_help=False)  # accepted before or after the subcommand
    root.add_argument(
        "--pipeline-root",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the pipeline root to read (default ./pipeline_root)",
    )
    p = argparse.ArgumentParser(
        prog="python -m pipeline.runs", description="Runs recorded in a pipeline root.", parents=[root]
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per run, newest first", parents=[root])
    show = sub.add_parser(
        "show", help="every component of one run, with timings, outputs and summaries", parents=[root]
    )
    show.add_argument("run", help="run id (a unique prefix is enough)")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    args.pipeline_root = getattr(args, "pipeline_root", "./pipeline_root")
    path = artifacts.metadata_path(args.pipeline_root)
    if not os.path.exists(path):
        print(
            f"error: no lineage store at {path}: no run has used --pipeline-root {args.pipeline_root} yet",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        store = metadata.Store(path)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        print(list_runs(store) if args.command == "list" else show_run(store, args.run))
    except LookupError as e:
        print(f"error: {e.args[0]} in {path}; see python -m pipeline.runs list", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
