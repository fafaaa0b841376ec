"""The child process of tests/test_train_devices.py: one training scenario in a fresh TensorFlow.

TensorFlow splits a CPU into logical devices only before it first touches a device, so every
scenario runs in its own process: `python -m tests.devices_child SPEC_JSON`. SPEC: logical_cpus,
ingest, output, work (optional: a resumable work directory), train (TrainConfig fields, nested as
in the YAML config), kill_in_stage (optional: SIGKILL the process after the second batch of that
stage, as the OOM killer would), export and evaluate (optional: output dirs). The last stdout line
is a JSON object of what happened.
"""

import json
import os
import signal
import sys

import tensorflow as tf


def main(spec: dict) -> dict:
    if spec.get("logical_cpus", 1) > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * spec["logical_cpus"])
    import keras

    import components.evaluate
    import components.export
    from components.evaluate.config import EvaluateConfig
    from components.train import TrainConfig, run
    from pipeline.config import build_dataclass

    seen = {"optimizers": set(), "variable_dtypes": set(), "compute_dtypes": set(), "batches": 0}

    class Probe(keras.callbacks.Callback):
        stage = -1

        def on_train_begin(self, logs=None):
            Probe.stage += 1

        def on_train_batch_end(self, batch, logs=None):
            seen["batches"] += 1
            seen["optimizers"].add(type(self.model.optimizer).__name__)
            seen["variable_dtypes"].add(self.model.trainable_weights[-1].dtype)
            seen["compute_dtypes"].add(self.model.layers[-2].compute_dtype)
            if spec.get("kill_in_stage") == Probe.stage and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    config = build_dataclass(TrainConfig, spec["train"], "train")
    result = run(config, spec["ingest"], spec["output"], work_dir=spec.get("work"), callbacks=[Probe()])
    facts = {
        "strategy": result.strategy,
        "replicas": result.replicas,
        "precision": result.precision,
        "stages": [[s.name, s.epochs_run, s.val_accuracy, s.cached_features] for s in result.stages],
        "val_accuracy": result.best_val_accuracy,
        "test_accuracy": result.test_accuracy,
        "seconds": result.seconds,
        "class_weights": result.class_weights,
        "excluded": result.excluded,
        **{k: sorted(v) if isinstance(v, set) else v for k, v in seen.items()},
    }
    if spec.get("export"):
        exported = components.export.run(
            components.export.ExportConfig(representative_examples=8), spec["output"], spec["ingest"], spec["export"]
        )
        facts["parity"] = exported.parity
        from schemas.artifacts import ExportedModel

        facts["formats"] = ExportedModel(exported.output_dir).format_entries()
        if spec.get("evaluate"):
            evaluated = components.evaluate.run(
                EvaluateConfig(min_accuracy=0.5, max_format_accuracy_drop=0.1),
                exported.output_dir,
                spec["ingest"],
                None,
                spec["evaluate"],
            )
            facts["blessed"] = evaluated.blessed
            facts["checks"] = [[c.name, c.model, c.value, c.passed] for c in evaluated.checks]
    return facts


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1])), default=str), flush=True)
