r"""The component graph: what runs in which order, and everything each node's orchestration needs.

    ingest -> validate -> tune -> train -> audit -> export -> evaluate -> push
       \_________________________/\________/\______________/\________/
        every later step also reads the ingest (splits, labels); train reads the recipe tune chose
        (tuning off: the train config's own); audit and export read train; push reads export + evaluate

Each node declares, as a TFX component spec with its driver does: the upstream outputs it reads,
its config section, the artifact kind it publishes (`schemas.artifacts`), the driver that resolves
state outside the artifacts before it runs (`pipeline/drivers.py`: the data folder's listing, the
baseline, the push destination), how its component's `run` is called, and which exit code a
result that is not ok maps to. `pipeline/executor.py` is a loop over these that knows no
component by name: a new component is its folder plus one `Node(...)` line below.
"""

import dataclasses
import functools
import importlib
from typing import Callable, Optional

from components.common.errors import DataError, NotBlessedError
from pipeline import artifacts, drivers
from schemas import artifacts as kinds


@dataclasses.dataclass(frozen=True)
class Node:
    """One component in the graph.

    name: the component's name: its config section, its folder in the pipeline root, its CLI name.
    inputs: upstream node names whose output artifacts this node reads.
    artifact: the `schemas.artifacts` class of what it publishes (its lineage type, its reuse check).
    call: (run, ctx, inputs {name: uri}, output_dir, resolved) -> the component's result.
    config: "module:Class" of its config dataclass.
    resolve: the driver, (ctx, inputs {name: executor.Input}) -> drivers.Resolved; None: nothing outside.
    failure: (summary, output_uri) -> the PipelineError a result that is not ok stops the run with;
      None: a result that is not ok lets the run go on (the evaluation: the push decides).
    preflight: (ctx) -> None, raising UsageError: what can be checked without the data, cheaply (no
      TensorFlow), run for every selected node before the first one starts (drivers.py).
    costly_preflight: the same for checks that load heavy libraries (building the backbone): run for
      every selected node just before the first node that executes, so a fully cached run skips them.
    module: where its `run` lives (default `components.<name>`).
    """

    name: str
    inputs: tuple
    artifact: type
    call: Callable
    config: str
    resolve: Optional[Callable] = None
    failure: Optional[Callable] = None
    preflight: Optional[Callable] = None
    costly_preflight: Optional[Callable] = None
    module: str = ""

    @property
    def entry_module(self) -> str:
        return self.module or f"components.{self.name}"

    @property
    def package(self) -> str:
        """The folder of the code it runs (`components/<package>`), whose sources are in its fingerprint."""
        return "/".join(self.entry_module.split(".")[:2])


def component_function(spec: str) -> Callable:
    """The component function named "module:function", imported when first called: how the rest of the
    orchestrator reaches a component without importing one (a run that reuses a step's output never
    loads what that step computes with: TensorFlow, Beam, TFMA)."""
    module, name = spec.split(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return call


# What the drivers need from the components, given to them here (pipeline/drivers.py imports none).
_source_listing = component_function("components.ingest.source:listing")
_train_outside = component_function("components.train.outside:digests")
DEMO_IMAGES = component_function("components.ingest.demo:generate_demo")  # the built-in demo's folder


def _train_preflight(ctx) -> None:
    """Backbone, alpha, image size, weights file and every stage's unfreeze block (components/train/preflight.py)."""
    component_function("components.train.preflight:check")(ctx.config["train"])


def _beam_options(args: list):
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(args)


def _validation_failed(summary: str, uri: str) -> DataError:
    return DataError(
        f"data validation failed: {summary.strip()}\n(details in "
        f"{kinds.ExampleAnomalies(uri).path(kinds.ExampleAnomalies.ANOMALIES)})"
    )


def _audit_failed(summary: str, uri: str) -> DataError:
    return DataError(
        f"the audit stopped the run: {summary.strip()}\n(details in "
        f"{kinds.Audit(uri).path(kinds.Audit.NEAR_DUPLICATES)})"
    )


def _not_pushed(summary: str, uri: str) -> NotBlessedError:
    return NotBlessedError(summary.strip() or "the model was not pushed: the evaluation gate did not bless it")


def _tuned(train_config, tune_uri: str):
    """The train config with the tuner's chosen recipe applied (unchanged when tuning is off)."""
    from components.train.tune import recipe_config

    return recipe_config(train_config, kinds.Hyperparameters(tune_uri).recipe()["train"])


def in_dependency_order(nodes: tuple) -> tuple:
    """`nodes`, checked to list every node after its inputs: `downstream` and `select` walk them once, in
    order, and would silently miss a node listed before what it reads."""
    seen = set()
    for n in nodes:
        early = [name for name in n.inputs if name not in seen]
        if early:
            raise RuntimeError(
                f"pipeline/dag.py: node {n.name!r} is listed before its inputs {early}; "
                "NODES must be in dependency order"
            )
        seen.add(n.name)
    return nodes


NODES = in_dependency_order(
    (
        Node(
            "ingest",
            (),
            kinds.Examples,
            config="components.ingest.config:IngestConfig",
            resolve=functools.partial(
                drivers.ingest, listing_of=_source_listing, root_of=component_function("components.ingest.source:root")
            ),
            preflight=functools.partial(
                drivers.ingest_preflight, check_source=component_function("components.ingest.source:check")
            ),
            call=lambda run, ctx, i, out, r: run(
                ctx.config["ingest"],
                out,
                previous_dir=r.args["previous"],
                beam_options=_beam_options(ctx.beam_args),
                reuse=r.args["reuse"],
            ),
        ),
        Node(
            "validate",
            ("ingest",),
            kinds.ExampleAnomalies,
            config="components.validate.config:ValidateConfig",
            resolve=drivers.validate,
            failure=_validation_failed,
            call=lambda run, ctx, i, out, r: run(ctx.config["validate"], i["ingest"], r.args["previous"], out),
        ),
        Node(
            "tune",
            ("ingest",),
            kinds.Hyperparameters,
            config="components.train.tune_config:TuneConfig",
            module="components.train.tune",
            costly_preflight=_train_preflight,
            resolve=functools.partial(drivers.tune, outside=_train_outside),
            call=lambda run, ctx, i, out, r: run(
                ctx.config["tune"],
                ctx.config["train"],
                i["ingest"],
                out,
                work_dir=artifacts.work_dir(ctx.root, "tune", r.fingerprint[:16]),
            ),
        ),
        Node(
            "train",
            ("ingest", "tune"),
            kinds.Model,
            config="components.train.config:TrainConfig",
            costly_preflight=_train_preflight,
            resolve=functools.partial(drivers.train, outside=_train_outside),
            call=lambda run, ctx, i, out, r: run(
                _tuned(ctx.config["train"], i["tune"]),
                i["ingest"],
                out,
                work_dir=artifacts.work_dir(ctx.root, "train", r.fingerprint[:16]),
                warm_start_dir=r.args["warm_start"],
                cache_dir=artifacts.image_results_dir(ctx.root),
            ),
        ),
        Node(
            "audit",
            ("train", "ingest"),
            kinds.Audit,
            config="components.audit.config:AuditConfig",
            failure=_audit_failed,
            call=lambda run, ctx, i, out, r: run(
                ctx.config["audit"], i["train"], i["ingest"], out, cache_dir=artifacts.image_results_dir(ctx.root)
            ),
        ),
        Node(
            "export",
            ("train", "ingest"),
            kinds.ExportedModel,
            config="components.export.config:ExportConfig",
            call=lambda run, ctx, i, out, r: run(ctx.config["export"], i["train"], i["ingest"], out),
        ),
        Node(
            "evaluate",
            ("export", "ingest"),
            kinds.ModelBlessing,
            config="components.evaluate.config:EvaluateConfig",
            resolve=drivers.evaluate,
            call=lambda run, ctx, i, out, r: run(
                ctx.config["evaluate"],
                i["export"],
                i["ingest"],
                r.args["baseline"],
                out,
                beam_options=_beam_options(ctx.beam_args),
                cache_dir=artifacts.image_results_dir(ctx.root),
            ),
        ),
        Node(
            "push",
            ("export", "evaluate"),
            kinds.ServingVersion,
            config="components.push.config:PushConfig",
            resolve=drivers.push,
            failure=_not_pushed,
            preflight=drivers.push_preflight,
            call=lambda run, ctx, i, out, r: run(
                ctx.config["push"], i["export"], i["evaluate"], ctx.serving_dir, force=ctx.force_push
            ),
        ),
    )
)


def describe() -> dict:
    """The graph as data (`pipeline.run --print-graph`), what the scheduler generators read: each step, the
    steps it reads, and whether a result that is not ok stops the run; with the exit codes a step ends
    with. Imports no TensorFlow."""
    from components.common import errors

    return {
        "steps": [
            {"name": n.name, "inputs": list(n.inputs), "stops_the_run_when_not_ok": n.failure is not None}
            for n in NODES
        ],
        "exit_codes": {
            "ok": errors.EXIT_OK,
            "unexpected": errors.EXIT_FAILURE,
            "usage": errors.EXIT_USAGE,
            "data": errors.EXIT_DATA,
            "not_blessed": errors.EXIT_NOT_BLESSED,
            "locked": errors.EXIT_LOCKED,
            "interrupted": errors.EXIT_INTERRUPTED,
            "terminated": errors.EXIT_TERMINATED,
        },
    }


def names() -> tuple:
    return tuple(node.name for node in NODES)


def node(name: str) -> Node:
    return next(n for n in NODES if n.name == name)


def entry_point(node: Node):
    """The component's `run`. Its module is imported when `run` is first called, not here: a run that
    reuses a component's output never loads what that component computes with (TensorFlow, Beam, TFMA).
    """

    return component_function(f"{node.entry_module}:run")


def downstream(name: str) -> set:
    """`name` and every node that reads its output, directly or not (what --force reruns)."""
    out = {name}
    for n in NODES:
        if out & set(n.inputs):
            out.add(n.name)
    return out


def select(only: str | None, stop_after: str | None) -> list:
    """The nodes this run executes, in order: all, up to `stop_after`, or just `only`."""
    if only:
        return [n for n in NODES if n.name == only]
    if stop_after:
        return list(NODES[: names().index(stop_after) + 1])
    return list(NODES)
