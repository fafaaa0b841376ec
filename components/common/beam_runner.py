"""Run Beam pipelines without the network: the DirectRunner's FnApiRunner path, chosen explicitly.

Beam >= 2.68's `DirectRunner` first tries the Prism runner, which it downloads from GitHub, and
falls back only after that fails (minutes offline, and a surprise network call online). When the
user asked for the DirectRunner (or no runner), we build the same `FnApiRunner` that the
DirectRunner falls back to, with the options in its provision info exactly as DirectRunner does,
so `--direct_num_workers=2 --direct_running_mode=multi_processing` keep working. Any other
`--runner` (Dataflow, Flink, Spark, Prism) is left to Beam.

A runner's own options (DaskRunner's `--dask_client_address`, ...) are registered with
`PipelineOptions` only once its module is imported, so `load_runner_options` imports the module
that `--runner` names before the flags are checked.

`--direct_running_mode=multi_threading` is refused (`check_options`): that mode moves elements
through Beam's `TimeBasedBufferingClosableOutputStream`, whose background flush thread sends the
buffer and then clears it while the bundle thread keeps writing to it, so every element written
during a send is silently dropped. Under load 1 of 3 ingests of 20k photos lost 238 records
(measured); `multi_processing` and one worker use size-flushed streams and were exact.
tests/test_beam_threading.py reproduces the race in Beam itself and fails once Beam fixes it,
which is the signal to lift the refusal.
"""

import importlib
from typing import Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)

from components.common.errors import UsageError

_DIRECT_NAMES = {None, "DirectRunner", "SwitchingDirectRunner", "FnApiRunner"}
# Runners on which TFMA's metric combiners fail: Beam 2.77's DaskRunner hands a combiner's
# merge_accumulators a key where an accumulator belongs ("'str' object has no attribute
# 'len_inputs'" in TFMA's tf_metric_wrapper; tests/test_distributed_runners.py).
_NO_TFMA = ("apache_beam.runners.dask.dask_runner.DaskRunner",)
# Runners Beam ships but leaves out of StandardOptions.ALL_KNOWN_RUNNERS (its create_runner then
# wants the fully qualified class name); the short name works here as for the others.
_UNLISTED_RUNNERS = ("apache_beam.runners.dask.dask_runner.DaskRunner",)


def _fn_api_runner(options: PipelineOptions):
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def runner_name(args: list) -> Optional[str]:
    """The value of `--runner` in command-line `args` (either spelling), or None."""
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(args):
            return args[i + 1]
    return None


def _runner_path(name: str) -> str:
    """The fully qualified class of runner `name`, resolved as Beam's `create_runner` does."""
    known = {path.rsplit(".", 1)[-1].lower(): path for path in (*StandardOptions.ALL_KNOWN_RUNNERS, *_UNLISTED_RUNNERS)}
    return known.get(name.lower(), known.get(name.lower() + "runner", name))


def load_runner_options(args: list) -> None:
    """Import the module of the runner `args` name, so its PipelineOptions subclass is registered.

    Resolves the name as Beam's `create_runner` does (a known short name such as `DaskRunner`, or a
    fully qualified class). UsageError, with what to install, when the runner's module cannot load.
    """
    name = runner_name(args)
    if name in _DIRECT_NAMES:
        return
    path = _runner_path(name)
    if "." not in path:
        return  # Beam itself reports an unknown runner, listing the known ones
    try:
        importlib.import_module(path.rsplit(".", 1)[0])
    except (ImportError, AttributeError) as e:  # dask_runner without dask fails with AttributeError
        extra = {
            "dask": "transferline[dask] (dask[distributed])",
            "dataflow": "apache-beam[gcp]",
            "interactive": "apache-beam[interactive]",
        }
        hint = next((v for k, v in extra.items() if k in path.lower()), "the package that provides it")
        raise UsageError(
            f"--runner={name}: its module {path.rsplit('.', 1)[0]} cannot be loaded ({e}); "
            f"install {hint} in this environment"
        ) from e


def tfma_options(options: Optional[PipelineOptions]) -> PipelineOptions:
    """`options` for a TFMA run, or the local runner's where their runner cannot run TFMA (saying so)."""
    name = options.view_as(StandardOptions).runner if options is not None else None
    if name in _DIRECT_NAMES or _runner_path(name) not in _NO_TFMA:
        return options if options is not None else PipelineOptions([])
    print(
        f"[evaluate] TFMA runs on the local runner, not {name}: that runner fails on TFMA's metric "
        "combiners in this Apache Beam (see docs/scale.md, 'Distributed runners'); the evaluation's input is "
        "the test split's predictions, small enough for one machine",
        flush=True,
    )
    return PipelineOptions([])


def check_options(options: PipelineOptions) -> None:
    """UsageError for Beam options known to lose data here (see the module docstring)."""
    direct = options.view_as(StandardOptions).runner in _DIRECT_NAMES
    if direct and options.view_as(DirectOptions).direct_running_mode == "multi_threading":
        raise UsageError(
            "--direct_running_mode=multi_threading is refused: in this Apache Beam its background flush "
            "(TimeBasedBufferingClosableOutputStream) drops elements written while it sends, so records are "
            "silently lost under load. Use --direct_num_workers=2 --direct_running_mode=multi_processing for "
            "parallel workers, or leave the mode out for one worker"
        )


# Option groups that only a remote runner reads (Dataflow's project, region, job labels, workers):
# given with the DirectRunner they change nothing, which a user who guessed a flag (`--labels
# labels.csv`) must be told.
_REMOTE_ONLY = (GoogleCloudOptions, WorkerOptions)


def ignored_by_direct_runner(options: PipelineOptions) -> list:
    """`[(flag, group)]` of the options given that only a remote runner reads, when the runner is local."""
    if options.view_as(StandardOptions).runner not in _DIRECT_NAMES:
        return []
    given = options.get_all_options(drop_default=True)
    ignored = []
    for group in _REMOTE_ONLY:
        parser = _DestParser()
        group._add_argparse_args(parser)
        ignored += [(f"--{dest}", group.__name__) for dest in sorted(parser.dests) if dest in given]
    return ignored


class _DestParser:
    """Collects the `dest` of every argument an options group registers (its `_add_argparse_args`)."""

    def __init__(self):
        self.dests = set()

    def add_argument(self, *names, **kwargs):
        self.dests.add(kwargs.get("dest") or names[0].lstrip("-").replace("-", "_"))

    def add_argument_group(self, *args, **kwargs):
        return self


def make_pipeline(options: Optional[PipelineOptions] = None) -> beam.Pipeline:
    """A `beam.Pipeline` for `options`; the local, offline FnApiRunner for the DirectRunner."""
    options = options if options is not None else PipelineOptions([])
    check_options(options)
    name = options.view_as(StandardOptions).runner
    if name in _DIRECT_NAMES:
        return beam.Pipeline(runner=_fn_api_runner(options), options=options)
    if _runner_path(name) in _UNLISTED_RUNNERS:
        module, cls = _runner_path(name).rsplit(".", 1)
        return beam.Pipeline(runner=getattr(importlib.import_module(module), cls)(), options=options)
    return beam.Pipeline(options=options)
