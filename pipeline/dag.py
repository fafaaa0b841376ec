r"""The component graph: what runs in which order and which artifact feeds which.

    ingest -> validate -> train -> export -> evaluate -> push
       \________________/\________/\_______/\________/
        every later step also reads the ingest (splits, labels); push reads export + evaluate

Each node says which upstream outputs it reads and how to call its component's `run` entry
(schemas/ARTIFACTS.md). Nothing else lives here: caching, lineage and progress are in
`pipeline/executor.py`, so this file stays readable in one screen.
"""
import dataclasses
import importlib
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    inputs: tuple  # upstream node names whose output artifacts this node reads
    call: Callable  # (run_fn, ctx, inputs: {name: uri}, output_dir) -> result


def _ingest(run, ctx, inputs, out):
    return run(ctx.config["ingest"], out, previous_dir=ctx.previous_output("ingest"), beam_options=ctx.beam_options)


def _validate(run, ctx, inputs, out):
    return run(ctx.config["validate"], inputs["ingest"], ctx.previous_output("ingest", before=inputs["ingest"]), out)


def _train(run, ctx, inputs, out):
    return run(ctx.config["train"], ctx.train_input(inputs["ingest"]), out, work_dir=ctx.train_work_dir)


def _export(run, ctx, inputs, out):
    return run(ctx.config["export"], inputs["train"], inputs["ingest"], out)


def _evaluate(run, ctx, inputs, out):
    return run(ctx.config["evaluate"], inputs["export"], inputs["ingest"], ctx.baseline_dir, out)


def _push(run, ctx, inputs, out):
    return run(ctx.config["push"], inputs["export"], inputs["evaluate"], ctx.serving_dir, force=ctx.force_push)


NODES = (
    Node("ingest", (), _ingest),
    Node("validate", ("ingest",), _validate),
    Node("train", ("ingest",), _train),  # runs after validate, which stops the run on bad data
    Node("export", ("train", "ingest"), _export),
    Node("evaluate", ("export", "ingest"), _evaluate),
    Node("push", ("export", "evaluate"), _push),
)
NAMES = tuple(node.name for node in NODES)


def entry_point(name: str):
    """The component's `run` function, or None when that component is not in this tree yet."""
    try:
        module = importlib.import_module(f"components.{name}")
    except ModuleNotFoundError:
        return None
    return getattr(module, "run", None)


def downstream(name: str) -> set:
    """`name` and every node that reads its output, directly or not (what --force reruns)."""
    out = {name}
    for node in NODES:
        if out & set(node.inputs):
            out.add(node.name)
    return out


def select(only: str | None, stop_after: str | None) -> list:
    """The nodes this run executes, in order: all, up to `stop_after`, or just `only`."""
    if only:
        return [n for n in NODES if n.name == only]
    if stop_after:
        return list(NODES[: NAMES.index(stop_after) + 1])
    return list(NODES)
