"""`python -m pipeline.validate MODEL DATA`: check a model against thresholds before a release (CI).

MODEL is a SavedModel or export directory, a model file (`.tflite`, `.onnx`), or NAME[/VERSION] of a pushed model
(with --serving-dir). DATA is an ingest output (its --split is used) or a folder of class
subfolders named like the model's classes. Metrics come from TensorFlow Model Analysis, the
checks are the evaluation gate's value thresholds. Exit codes: 0 every threshold holds,
4 a threshold failed, 2 usage error (bad flag, model not found), 3 unusable data, 1 unexpected.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from components.common import formats
from components.common.errors import EXIT_NOT_BLESSED, EXIT_OK, UsageError
from components.evaluate.config import EvaluateConfig
from pipeline.cli import Parser, exits_with_codes

# TensorFlow, TFMA and the model loader are imported by `main` after the arguments are parsed:
# `--help` and a usage error answer at once instead of after their seconds of import.


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m pipeline.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", help="SavedModel/export dir, model file (.tflite, .onnx), or NAME[/VERSION] with --serving-dir"
    )
    parser.add_argument("data", help="ingest output directory, or a folder of <class name>/ image folders")
    parser.add_argument("--serving-dir", help="TF Serving directory holding NAME/VERSION/")
    parser.add_argument(
        "--model-format",
        choices=tuple(formats.FORMATS),
        help="with an export or pushed version, score this format of it (default: the SavedModel)",
    )
    parser.add_argument("--split", default="test", help="split of an ingest output to use (default: test)")
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=EvaluateConfig.min_accuracy,
        help=f"overall accuracy must be at least this (default: {EvaluateConfig.min_accuracy})",
    )
    parser.add_argument("--min-class-recall", type=float, help="every class's recall must be at least this")
    parser.add_argument("--min-macro-f1", type=float, help="macro-averaged F1 must be at least this")
    parser.add_argument("--top-k", type=int, default=EvaluateConfig.top_k, help="k of the top-k accuracy (default: 3)")
    parser.add_argument(
        "--baseline",
        metavar="MODEL",
        help="the model in production (same forms as MODEL; NAME[/VERSION] with --serving-dir): the candidate "
        "must be no worse on the same images, by the gate's paired test (evaluate.comparison)",
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=EvaluateConfig.max_accuracy_drop_vs_baseline,
        help="with --baseline: how much less accurate than it the model may be "
        f"(default: {EvaluateConfig.max_accuracy_drop_vs_baseline}, evaluate.max_accuracy_drop_vs_baseline)",
    )
    parser.add_argument("--output-dir", help="keep metrics.json, report.json and TFMA's output here (must not exist)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# The config keys this command's flags set, for messages that name a key.
_FLAG_OF = {
    "evaluate.min_accuracy": "--min-accuracy",
    "evaluate.min_class_recall": "--min-class-recall",
    "evaluate.min_macro_f1": "--min-macro-f1",
    "evaluate.top_k": "--top-k",
    "evaluate.split": "--split",
    "evaluate.max_accuracy_drop_vs_baseline": "--max-accuracy-drop",
}


def _report_text(result, model) -> str:
    from components.evaluate.tfma_metrics import OVERALL

    overall = result.metrics["candidate"][OVERALL]
    lines = [
        f"model {model.path} ({model.kind}): {int(overall.get('example_count') or 0)} images",
        f"accuracy {overall.get('accuracy')}  top-k accuracy {overall.get('top_k_accuracy')}  "
        f"macro F1 {overall.get('macro_f1')}",
    ]
    for name in model.labels:
        lines.append(
            f"  {name}: precision {overall.get(f'precision/{name}')} recall {overall.get(f'recall/{name}')} "
            f"f1 {overall.get(f'f1/{name}')}"
        )
    for check in result.checks:
        verdict = "PASS" if check.passed else "FAIL"
        measured = f" on {check.examples} images" if check.examples else ""
        if check.interval:
            measured += f", interval {check.interval[0]:.4f} to {check.interval[1]:.4f} (evaluate.confidence_level)"
        lines.append(
            f"{verdict} {check.metric} [{check.slice}] {check.value} {check.threshold} ({check.name}{measured})"
            + (f": {check.reason}" if check.reason else "")
        )
    lines.append("PASSED: every threshold holds" if result.blessed else "FAILED: see the FAIL lines above")
    return "\n".join(lines)


@exits_with_codes
def main(argv=None) -> int:
    args = parse_args(argv)
    from components.evaluate.standalone import evaluate_model
    from pipeline import library_logs
    from pipeline.opened_model import OpenedModel

    output_dir = args.output_dir or tempfile.mkdtemp(prefix="validate-")
    try:
        config = EvaluateConfig(
            min_accuracy=args.min_accuracy,
            min_class_recall=args.min_class_recall,
            min_macro_f1=args.min_macro_f1,
            top_k=args.top_k,
            split=args.split,
            max_accuracy_drop_vs_baseline=args.max_accuracy_drop,
        )
        try:
            config.validate()
        except UsageError as e:  # it names the config key; the user typed a flag
            key = str(e).split(":")[0]
            raise UsageError(f"{e} (given as {_FLAG_OF[key]})" if key in _FLAG_OF else str(e)) from None
        if args.output_dir and os.path.exists(args.output_dir):
            raise UsageError(f"--output-dir {args.output_dir} exists; give a new path")
        os.makedirs(output_dir, exist_ok=True)
        with library_logs.to_file(os.path.join(output_dir, "library.log")):  # TFMA's and Beam's, off the console
            model = OpenedModel(args.model, args.serving_dir, model_format=args.model_format)
            baseline = OpenedModel(args.baseline, args.serving_dir) if args.baseline else None
            result = evaluate_model(config, model, args.data, output_dir, baseline)
        if args.json:
            print(
                json.dumps(
                    {
                        "model": model.path,
                        "passed": result.blessed,
                        "metrics": result.metrics,
                        "checks": [c.as_dict() for c in result.checks],
                    },
                    indent=2,
                )
            )
        else:
            print(_report_text(result, model))
        return EXIT_OK if result.blessed else EXIT_NOT_BLESSED
    finally:
        if not args.output_dir:
            shutil.rmtree(output_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
