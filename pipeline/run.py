"""`python -m pipeline.run`: run the pipeline (ingest -> validate -> train -> export -> evaluate -> push).

Our flags are parsed here; every other flag goes to Beam's `PipelineOptions` (so
`--direct_num_workers=2 --direct_running_mode=multi_processing`, or a Dataflow/Flink/Spark
runner's flags, reach the ingest unchanged). Beam only warns about flags it does not know and
drops them, so a flag neither we nor Beam know is turned into a usage error here instead of a
typo silently ignored.

Exit codes (README "Exit codes"): 0 pushed/complete, 1 unexpected, 2 usage/config, 3 data,
4 not blessed, 5 locked. A `PipelineError` prints its message, never a traceback; anything else
prints one line and the path of the log holding the full traceback.
"""

import argparse
import dataclasses
import datetime
import errno
import json
import logging
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
import traceback

from components.common import errors
from components.common.errors import PipelineError, UsageError
from components.common.suggest import did_you_mean

FLAG_KEYS = {  # flag dest -> config key it sets ("section.key")
    "pipeline_root": "pipeline.pipeline_root",
    "serving_dir": "pipeline.serving_dir",
    "train_fraction": "train.train_fraction",
    "data_dir": "ingest.data_dir",
    "manifest": "ingest.manifest",
    "tfds_name": "ingest.tfds_name",
    "max_side": "ingest.max_side",
    "splits": "ingest.splits",
    "backbone": "train.backbone",
    "alpha": "train.alpha",
    "image_size": "train.image_size",
    "batch_size": "train.batch_size",
    "weights": "train.weights",
    "precision": "train.precision",
    "tune": "tune.enabled",
    "tune_budget": "tune.budget_seconds",
    "model_name": "push.model_name",
}


def _splits(text: str) -> dict:
    """`train=0.8,val=0.1,test=0.1` -> {"train": 0.8, ...}."""
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FRACTION,..., e.g. train=0.8,val=0.1,test=0.1")
    return out


def build_parser() -> argparse.ArgumentParser:
    from pipeline import dag

    p = argparse.ArgumentParser(
        prog="python -m pipeline.run",
        description="Ingest a folder of labelled images, train, evaluate and push an image classifier. "
        "Flags not listed here are passed to Apache Beam (e.g. --runner, --direct_num_workers).",
        epilog="Exit codes: 0 success (pushed), 1 unexpected failure, 2 usage/config error, "
        "3 data unusable or validation failed, 4 not blessed (nothing pushed), 5 pipeline root locked.",
        allow_abbrev=False,
    )
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="FILE", help="YAML config, one section per component (see pipeline.yaml)")
    g.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override any config key, e.g. --set train.label_smoothing=0.1 (repeatable)",
    )
    g.add_argument(
        "--pipeline-root",
        metavar="DIR",
        help="where every output, the lineage store and the lock live",
    )
    g.add_argument(
        "--stop-after",
        choices=dag.names(),
        metavar="COMPONENT",
        help=f"run up to and including this component ({', '.join(dag.names())})",
    )
    g.add_argument(
        "--only",
        choices=dag.names(),
        metavar="COMPONENT",
        help="run only this component, its inputs taken from the latest successful run, or with --run-id "
        "from that run (reused if unchanged: add --force COMPONENT to rerun it)",
    )
    g.add_argument(
        "--force",
        choices=dag.names(),
        metavar="COMPONENT",
        action="append",
        default=[],
        help="rerun this component and everything downstream even if unchanged (repeatable)",
    )
    g.add_argument(
        "--verify",
        action="store_true",
        help="before reusing an earlier output, compare every file's "
        "sha256 with what was published (sizes are always compared)",
    )
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print the effective config (every value that is not a default, and where it was given) and "
        "which steps would run or be reused; run, lock and write nothing",
    )
    g.add_argument(
        "--wait",
        action="store_true",
        help="if another run holds the pipeline root, wait for it instead of exiting with code 5",
    )
    g = p.add_argument_group("scheduled runs (one step per task: docs/orchestration.md)")
    g.add_argument(
        "--run-id",
        metavar="ID",
        type=safe_run_id,
        help="run as (or attach to) run ID, e.g. a scheduler's run id; with --only, the step's inputs come "
        "from this run's earlier steps. Characters other than letters, digits and . _ - become _",
    )
    g.add_argument(
        "--attempt",
        type=int,
        metavar="N",
        help="the scheduler's try number of this task, kept in the run's lineage (pipeline.runs show)",
    )
    g.add_argument(
        "--report",
        action="store_true",
        help="with --run-id: end that run (status and exit code from its steps) and write its report, "
        "whatever its steps did; the last task of a scheduled run",
    )
    g.add_argument(
        "--print-graph",
        action="store_true",
        help="print the component graph as JSON (steps, their inputs, exit codes) and exit; what the "
        "scheduler generators read",
    )
    g = p.add_argument_group("data (default: the built-in demo dataset)")
    g.add_argument("--data-dir", metavar="PATH", help="folder with one sub-folder per class (any Beam filesystem)")
    g.add_argument(
        "--manifest",
        metavar="FILE",
        help="instead of --data-dir: a CSV (path,label[,split]), Vertex AI JSON Lines or Hugging Face "
        "metadata.jsonl naming each image and its label (docs/data.md)",
    )
    g.add_argument("--tfds-name", metavar="NAME", help="ingest this TFDS image-classification dataset instead")
    g.add_argument("--max-side", type=int, metavar="N", help="downscale images whose longer side exceeds N at ingest")
    g.add_argument(
        "--splits",
        type=_splits,
        metavar="train=F,val=F,test=F",
        help="split fractions per class",
    )
    g = p.add_argument_group("training")
    g.add_argument("--backbone", metavar="NAME", help="keras.applications backbone, e.g. mobilenet_v2")
    g.add_argument("--alpha", type=float, metavar="A", help="width multiplier (MobileNet backbones)")
    g.add_argument("--image-size", type=int, metavar="PX", help="square input size of the model in pixels")
    g.add_argument("--batch-size", type=int, metavar="N", help="training batch size")
    g.add_argument(
        "--epochs",
        metavar="N[,N...]",
        help="epochs per training stage: one number for every stage, "
        "or one per stage in order (e.g. 3,5); a stage's warmup is shortened to fit",
    )
    g.add_argument(
        "--weights", metavar="imagenet|none|PATH", help="backbone weights: imagenet, none, or a .weights.h5/.keras file"
    )
    g.add_argument(
        "--train-fraction",
        type=float,
        metavar="F",
        help="train on this stratified fraction of the "
        "train split (e.g. 0.05 = 20x less data); val and test stay whole",
    )
    g.add_argument("--precision", metavar="auto|float32|mixed_float16|mixed_bfloat16", help="training precision policy")
    g = p.add_argument_group("tuning (off by default)")
    g.add_argument(
        "--tune",
        action="store_const",
        const=True,
        help="search the training recipe on the train and val splits before training",
    )
    g.add_argument("--tune-budget", type=float, metavar="SECONDS", help="wall-clock seconds the search may take")
    g = p.add_argument_group("serving")
    g.add_argument(
        "--serving-dir", metavar="DIR", help="TF Serving model base directory (default <pipeline-root>/serving)"
    )
    g.add_argument("--model-name", metavar="NAME", help="model name: pushes go to SERVING_DIR/NAME/VERSION")
    g.add_argument(
        "--force-push",
        action="store_true",
        help="EMERGENCY ONLY: push even if the gate did not bless the model (recorded as forced)",
    )
    _show_config_defaults(p)
    return p


def _show_config_defaults(parser) -> None:
    """A flag that sets a config key has no argparse default (None = not given, so a config file's value
    stands); its help, and docs/cli.md (`config_default`), show the key's own default instead."""
    from pipeline import config as config_mod

    for action in parser._actions:
        key = FLAG_KEYS.get(action.dest)
        if key is None:
            continue
        section, name = key.split(".")
        field = config_mod.section_class(section).__dataclass_fields__[name]
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        if default is None or default is dataclasses.MISSING:
            action.help += f" (config key {key})"
            continue
        plain = config_mod.to_plain(default)
        # as the flag is written: `train=0.8,val=0.1,test=0.1`, not a Python dict
        action.config_default = ",".join(f"{k}={v}" for k, v in plain.items()) if isinstance(plain, dict) else plain
        note = " (a download from Keras's servers; offline, give a file)" if key == "train.weights" else ""
        action.help += f" (default {action.config_default}{note}; config key {key})"


def _only_runner(args: list) -> bool:
    """Whether `args` only name the runner (`--runner=X` or `--runner X`): nothing for Beam to check."""
    flags = [a for i, a in enumerate(args) if not (i and args[i - 1] == "--runner" and not a.startswith("-"))]
    return all(a == "--runner" or a.startswith("--runner=") for a in flags)


def beam_args(args: list) -> list:
    """The flags we do not own, checked: a flag Apache Beam does not know either is a usage error.

    Beam (seconds to import) is loaded for the check only when there is more than `--runner`, so a
    run whose every component is reused never loads it; the ingest builds its `PipelineOptions`.
    """
    if _only_runner(args):
        return list(args)
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.common.beam_runner import check_options, ignored_by_direct_runner, load_runner_options

    load_runner_options(args)

    for i, arg in enumerate(args):  # a bare word that is no flag's value, e.g. a stray `foo`
        if not arg.startswith("-") and (i == 0 or not args[i - 1].startswith("--") or "=" in args[i - 1]):
            raise UsageError(f"unexpected argument {arg!r}: pipeline.run takes flags only (see --help)")
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)  # its "Discarding unparseable args" warning becomes our error below
    try:
        options = PipelineOptions(args)
        known = options.get_all_options(retain_unknown_options=False)
        unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    finally:
        beam_log.setLevel(level)
    if unknown:
        typed = [a.split("=")[0] for a in args if a.startswith("--")]  # as the user spelled it (Beam uses _)
        flag = next((a for a in typed if a[2:].replace("-", "_") == unknown[0]), f"--{unknown[0]}")
        ours = [s for action in build_parser()._actions for s in action.option_strings]
        close = did_you_mean(flag, [*ours, *(f"--{name}" for name in known)], lambda s: s.replace("_", "-"))
        raise UsageError(
            f"unknown flag {flag}{close}: it is neither a pipeline.run flag nor an Apache Beam pipeline option; "
            "see python -m pipeline.run --help for ours and Beam's PipelineOptions for the runner's"
        )
    check_options(options)
    for flag, group in ignored_by_direct_runner(options):
        print(
            f"warning: {flag} is an Apache Beam option ({group}) that only a remote runner such as Dataflow "
            "reads; the DirectRunner ignores it. Labels come from the class folders (one sub-folder per class).",
            file=sys.stderr,
        )
    return list(args)


def config_from_args(args) -> tuple:
    """(RunConfig, demo: bool) from the demo defaults, --config, the flags and --set, validated.

    Later sources win: demo defaults (only without a data flag or key) < config file < flags < --set.
    """
    from pipeline import config as config_mod
    from pipeline import demo

    data = config_mod.read_yaml(args.config) if args.config else {}
    flags, sources = {}, {}  # sources: "section.key" -> where its value was given, as a user would write it
    for section, values in data.items():
        for name in values if isinstance(values, dict) else ():
            sources[f"{section}.{name}"] = f"{section}.{name} in {args.config}"
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None:
            section, name = key.split(".")
            flags.setdefault(section, {})[name] = value
            sources[key] = "--" + dest.replace("_", "-")
    ingest = config_mod.merge(data, flags).get("ingest", {})
    sources_keys = ("data_dir", "manifest", "tfds_name")
    set_data = any(o.startswith(tuple(f"ingest.{k}=" for k in sources_keys)) for o in args.overrides)
    use_demo = not any(ingest.get(k) for k in sources_keys) and not set_data
    if use_demo and args.config:
        raise UsageError(
            f"--config {args.config} names no data: set ingest.data_dir (a folder with one sub-folder per class), "
            "ingest.manifest or ingest.tfds_name in it, or pass --data-dir FOLDER; the built-in demo runs only "
            "from a command that gives no config"
        )
    if use_demo:
        root = (
            config_mod.merge(data, flags).get("pipeline", {}).get("pipeline_root") or config_mod.DEFAULT_PIPELINE_ROOT
        )
        defaults = demo.defaults(root)
        for section, values in defaults.items():
            for name in values:
                sources.setdefault(f"{section}.{name}", "the demo's defaults")
        data = config_mod.merge(defaults, data)
    data = config_mod.merge(data, flags)
    if args.epochs is not None:
        data.setdefault("train", {})["stages"] = _stages_with_epochs(data.get("train", {}), args.epochs)
        sources["train.stages"] = "--epochs"
    overrides = [config_mod.parse_override(text) for text in args.overrides]
    for section, name, _raw in overrides:
        sources[f"{section}.{name}"] = f"--set {section}.{name}"
    try:
        built = config_mod.build(data, overrides)
    except UsageError as e:
        raise UsageError(_naming_the_source(str(e), sources)) from None
    return dataclasses.replace(_normalised_paths(built), sources=sources), use_demo


def _naming_the_source(message: str, sources: dict) -> str:
    """`message` followed by where the value it names was given, when that is not already said (a
    `--min-accuracy`-style flag or a config file's line, rather than only the key)."""
    named = sorted((key for key in sources if re.search(rf"\b{re.escape(key)}\b", message)), key=len, reverse=True)
    if not named or sources[named[0]] in message:
        return message
    return f"{message} (given as {sources[named[0]]})"


# Config values that name a file or folder, and the words that are not paths there.
_PATH_KEYS = {
    ("ingest", "data_dir"): (),
    ("ingest", "manifest"): (),
    ("ingest", "tfds_data_dir"): (),
    ("pipeline", "pipeline_root"): (),
    ("pipeline", "serving_dir"): (),
    ("train", "weights"): ("imagenet", "none"),
    ("train", "exclude"): (),
    ("train", "warm_start"): ("auto", "none"),
    ("train", "distill.teacher"): (),
}


def _normalised_paths(config):
    """The same file spelled another way (relative, trailing slash) is the same input: absolute paths
    in the effective config, so fingerprints, lineage, the report and the model card name one file one
    way, and a saved config means the same from any working directory."""
    from pipeline.drivers import normalised_path

    for (section, key), words in _PATH_KEYS.items():
        owner, _, name = key.rpartition(".")
        holder = getattr(config[section], owner) if owner else config[section]
        value = getattr(holder, name, None)
        if not isinstance(value, str) or not value or value in words:
            continue
        holder = dataclasses.replace(holder, **{name: normalised_path(value)})
        changed = dataclasses.replace(config[section], **{owner: holder}) if owner else holder
        config.sections[section] = changed
    return config


def _stages_with_epochs(train: dict, text: str) -> list:
    """The train stages (configured, else the trainer's defaults for these weights) with new epochs."""
    from pipeline import config as config_mod

    try:
        epochs = [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--epochs {text!r}: expected an integer, or one integer per stage like 3,5") from None
    section = config_mod.build_dataclass(config_mod.section_class("train"), train, "train")
    stages = [config_mod.to_plain(s) for s in section.effective_stages()]
    if len(epochs) not in (1, len(stages)):
        raise UsageError(
            f"--epochs {text!r}: give one number, or one per stage ({len(stages)} stages: "
            + ", ".join(str(s.get("name")) for s in stages)
            + ")"
        )
    for i, stage in enumerate(stages):
        stage["epochs"] = epochs[0] if len(epochs) == 1 else epochs[i]
        if isinstance(stage.get("warmup_epochs"), (int, float)) and stage["epochs"] >= 1:
            stage["warmup_epochs"] = min(stage["warmup_epochs"], stage["epochs"] - 1)  # warmup must fit
    return stages


def safe_run_id(text: str) -> str:
    """A run id usable as a folder name on every filesystem: a scheduler's
    `manual__2026-12-07T09:13:05.623123+00:00` becomes `manual__2026-12-07T09_13_05.623123_00_00`."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", text.strip())
    if not safe.strip("._") or len(safe) > 200:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1-200 characters, not only dots or underscores")
    return safe


def new_run_id() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def _terminate(signum, frame):
    raise errors.Terminated()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    run_id = new_run_id()
    log_dir = root = None
    try:
        parser = build_parser()
        args, rest = parser.parse_known_args(argv)
        if args.print_graph:
            from pipeline import dag

            print(json.dumps(dag.describe(), indent=1))
            return errors.EXIT_OK
        options = beam_args(rest)
        if args.only and args.stop_after:
            raise UsageError("--only runs one component: it cannot be combined with --stop-after")
        if args.report and (args.run_id is None or args.only or args.stop_after):
            raise UsageError(
                "--report ends one scheduled run: give it with --run-id ID, without --only or --stop-after"
            )
        if args.run_id is not None:
            run_id = args.run_id
        config, use_demo = config_from_args(args)
        if use_demo and not args.report:
            print(
                "[pipeline] no --data-dir, --manifest, --tfds-name or --config given: running the built-in demo (generated "
                "images, a small model trained from scratch); pass --data-dir FOLDER (one sub-folder per class) "
                "to train on your own images",
                flush=True,
            )
        from pipeline import orchestrate

        if args.dry_run:
            return orchestrate.dry_run(config, options, run_id, args, use_demo)
        root = config.pipeline.pipeline_root
        log_dir = os.path.join(root, "runs", run_id)
        if args.report:
            return orchestrate.end_scheduled_run(config, run_id)
        return orchestrate.run(config, options, run_id, args, use_demo, argv)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(
            "interrupted (Ctrl-C): the run is recorded as interrupted; rerun the same command to go on", file=sys.stderr
        )
        return errors.EXIT_INTERRUPTED
    except errors.Terminated:
        print(
            "terminated (SIGTERM): the run is recorded as interrupted and the lock released; rerun the same "
            "command to go on",
            file=sys.stderr,
        )
        return errors.EXIT_TERMINATED
    except Exception as e:  # a bug or an unforeseen environment problem: one line + where the traceback is
        where = _write_traceback(log_dir)
        where = f"full traceback in {where}" if where else "no room to write the traceback"
        if _disk_full(e):
            print(
                f"no space left on the device holding {root or 'the output'}: free space there (or give a "
                "--pipeline-root on another disk) and rerun the same command; what finished is reused and "
                f"nothing half-written was kept ({where})",
                file=sys.stderr,
            )
        else:  # Beam re-raises a worker's error with the worker's traceback in the message: first line only
            first = (str(e).strip().splitlines() or [""])[0]
            print(f"unexpected error: {type(e).__name__}: {first} ({where})", file=sys.stderr)
        return errors.EXIT_FAILURE


def _disk_full(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a full disk or quota; Beam passes worker errors on as text."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(error) for text in ("No space left on device", "Disk quota exceeded")):
            return True
        error = error.__cause__ or error.__context__
    return False


def _write_traceback(log_dir):
    """Append the current traceback to the run's error.log (a temp file before the run has a folder); the path,
    or None when even that cannot be written (e.g. the disk is full)."""
    text = traceback.format_exc()
    try:
        try:
            os.makedirs(log_dir, exist_ok=True)
            path = os.path.join(log_dir, "error.log")
        except (OSError, TypeError):
            fd, path = tempfile.mkstemp(prefix="transferline-error-", suffix=".log")
            os.close(fd)
        with open(path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(sys.argv)}\n{text}\n")
    except OSError:
        return None
    return path


if __name__ == "__main__":
    sys.exit(main())
