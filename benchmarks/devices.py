"""Training step rates per precision, device count and XLA: what `train.precision` and `train.devices` buy.

One command for a machine with GPUs (or a CPU split into logical devices with --logical-cpus):

    python -m benchmarks.devices [--backbone mobilenet_v2] [--alpha 0.35] [--image-size 96]
        [--batch-size 32] [--steps 8] [--repeats 3] [--precisions float32,mixed_float16,mixed_bfloat16]
        [--logical-cpus N] [--no-xla] [--output FILE]

For every device count (1, and all GPUs or all logical CPUs when there are several) x precision x
XLA off/on, the classifier the trainer builds (backbone + head, every layer training) is fitted
on synthetic batches of the global batch size under MirroredStrategy (one device:
OneDeviceStrategy), after one warm-up call (a configuration TensorFlow cannot run is reported with
its error: XLA under MirroredStrategy on logical CPUs fails with "Trying to access resource ...
located in device CPU:1 from device CPU:0", XLA's known issue with variables on several devices); each configuration is timed `--repeats` times in alternating
rounds, so a burst of load hits all of them. The JSON gives images/s per round, their median and
spread (max/min), the machine, its CPU flags, the versions and the command. `mixed_float16` on a
CPU runs (slowly): the rate says nothing about a GPU, but the run proves the path.
tests/test_train_devices.py smoke-runs it on two logical CPUs so that it does not rot.

With `--train-on FOLDER --weights FILE` it instead trains the default recipe on a class-per-folder
dataset (ingested once) for every precision x device set x `--seeds`, each in its own process
(tests/devices_child.py), and reports val and test accuracy and the training's seconds: what
a precision or a device count costs in accuracy, not only what it buys in speed.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def _split_cpu(n: int) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def _device_sets(tf) -> list:
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    pool = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return [tuple(pool[:1])] + ([tuple(pool)] if len(pool) > 1 else [])


def _build(args, devices, policy: str, xla: bool):
    import keras
    import numpy as np
    import tensorflow as tf

    from components.train.backbones import build_backbone
    from components.train.model import assemble, build_head

    keras.mixed_precision.set_global_policy(policy)
    strategy = (
        tf.distribute.MirroredStrategy(list(devices))
        if len(devices) > 1
        else tf.distribute.OneDeviceStrategy(devices[0])
    )
    with strategy.scope():
        preprocessing, network = build_backbone(args.backbone, args.image_size, "none", alpha=args.alpha)
        model = assemble(preprocessing, network, build_head(10, 0.2), args.image_size, backbone_trains_bn=True)
        model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=xla)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(args.batch_size) % 10, 10)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # trace and warm up
    return model, data


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.devices", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per configuration")
    parser.add_argument("--precisions", default="float32,mixed_float16,mixed_bfloat16")
    parser.add_argument("--logical-cpus", type=int, default=0, help="split the CPU into N devices (no GPU here)")
    parser.add_argument("--no-xla", action="store_true", help="time XLA off only")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--train-on", help="a class-per-folder dataset: train the default recipe instead")
    parser.add_argument("--weights", help="with --train-on: the backbone weights file")
    parser.add_argument("--seeds", default="0,1,2", help="with --train-on: the seeds of each configuration")
    args = parser.parse_args(argv)
    if args.train_on:
        return _write(args, argv, _trainings(args))
    if args.logical_cpus > 1:
        _split_cpu(args.logical_cpus)
    import tensorflow as tf

    configs = [
        (devices, policy, xla)
        for devices in _device_sets(tf)
        for policy in args.precisions.split(",")
        for xla in ((False,) if args.no_xla else (False, True))
    ]
    built, failed = {}, {}
    for config in configs:
        try:  # a configuration TensorFlow cannot run is a result, not the end of the benchmark
            built[config] = _build(args, *config)
        except Exception as e:
            failed[config] = (
                f"{type(e).__name__}: "
                + next(
                    (line.strip() for line in str(e).splitlines() if "Trying to access" in line or "Error" in line),
                    str(e).splitlines()[0] if str(e) else "",
                )[:400]
            )
    rounds = {config: [] for config in built}
    for _ in range(args.repeats):
        for config, (model, data) in built.items():
            started = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            rounds[config].append(round(args.steps * args.batch_size / (time.perf_counter() - started), 2))
    results = [
        {"devices": list(devices), "precision": policy, "xla": xla}
        | (
            {"error": failed[(devices, policy, xla)]}
            if (devices, policy, xla) in failed
            else {
                "images_per_s": statistics.median(rounds[(devices, policy, xla)]),
                "rounds": rounds[(devices, policy, xla)],
                "spread": round(max(rounds[(devices, policy, xla)]) / min(rounds[(devices, policy, xla)]), 3),
            }
        )
        for devices, policy, xla in configs
    ]
    return _write(args, argv, results)


def _trainings(args) -> list:
    """The default recipe on --train-on for each precision x device set x seed, one child process each."""
    import subprocess
    import tempfile

    from components.ingest import IngestConfig
    from components.ingest import run as ingest

    work = tempfile.mkdtemp(prefix="bench-devices-")
    examples = os.path.join(work, "ingest")
    ingest(IngestConfig(data_dir=args.train_on), examples)
    device_sets = [("auto", 1)] + ([(",".join(f"/cpu:{i}" for i in range(args.logical_cpus)), args.logical_cpus)]
                                   if args.logical_cpus > 1 else [])  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = []
    for devices, cpus in device_sets:
        for policy in args.precisions.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                spec = {
                    "logical_cpus": cpus,
                    "ingest": examples,
                    "output": os.path.join(work, f"{cpus}-{policy}-{seed}"),
                    "train": {"weights": args.weights, "precision": policy, "devices": devices, "seed": seed},
                }
                proc = subprocess.run(
                    [sys.executable, "-m", "tests.devices_child", json.dumps(spec)],
                    cwd=root,
                    env=dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3"),
                    capture_output=True,
                    text=True,
                )
                if proc.returncode:
                    sys.exit(f"training {spec['train']} failed:\n{proc.stderr[-3000:]}")
                facts = json.loads(proc.stdout.strip().splitlines()[-1])
                row = {
                    "devices": devices,
                    "precision": policy,
                    "seed": seed,
                    "val_accuracy": round(facts["val_accuracy"], 4),
                    "test_accuracy": round(facts["test_accuracy"], 4),
                    "train_seconds": round(facts["seconds"], 1),
                }
                print(json.dumps(row), file=sys.stderr, flush=True)
                results.append(row)
    return results


def _write(args, argv, results: list) -> dict:
    import keras
    import tensorflow as tf

    from components.train.precision import cpu_bf16_flags, cpu_model

    out = {
        "machine": f"{os.cpu_count()} x {cpu_model()}, {platform.machine()}",
        "cpu_bf16_flags": cpu_bf16_flags(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "command": "python -m benchmarks.devices " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "results": results,
    }
    print(json.dumps(out, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            f.write(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
