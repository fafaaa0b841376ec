"""Run Beam pipelines without the network: the DirectRunner's FnApiRunner path, chosen explicitly.

Beam >= 2.68's `DirectRunner` first tries the Prism runner, which it downloads from GitHub, and
falls back only after that fails (minutes offline, and a surprise network call online). When the
user asked for the DirectRunner (or no runner), we build the same `FnApiRunner` that the
DirectRunner falls back to, with the options in its provision info exactly as DirectRunner does,
so `--direct_num_workers=2 --direct_running_mode=multi_processing` keep working. Any other
`--runner` (Dataflow, Flink, Spark, Prism) is left to Beam.
"""
from typing import Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

_DIRECT_NAMES = {None, "DirectRunner", "SwitchingDirectRunner", "FnApiRunner"}


def _fn_api_runner(options: PipelineOptions):
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def make_pipeline(options: Optional[PipelineOptions] = None) -> beam.Pipeline:
    """A `beam.Pipeline` for `options`; the local, offline FnApiRunner for the DirectRunner."""
    options = options if options is not None else PipelineOptions([])
    runner_name = options.view_as(StandardOptions).runner
    if runner_name in _DIRECT_NAMES:
        return beam.Pipeline(runner=_fn_api_runner(options), options=options)
    return beam.Pipeline(options=options)
