"""Choosing the numeric precision and the distribution strategy from the machine we run on.

The decisions are pure functions of what was detected (`choose_precision`, `choose_strategy`) so
they can be tested without the hardware; `detect_gpus` and `make_strategy` touch TensorFlow.

- Precision "auto": `mixed_float16` only when every visible GPU has compute capability >= 7.0
  (Volta and later have float16 tensor cores; older GPUs run it slower than float32); on a CPU
  with bfloat16 units, whichever of float32 and `mixed_bfloat16` trains the model faster, measured
  once and cached (precision.py); float32 on other CPUs. XLA was measured slower on CPU.
- Strategy: `MirroredStrategy` over the devices `train.devices` names, or over every local GPU
  when there are several (`auto`), else the default. `check_devices` refuses, before the ingest,
  names that this machine does not have. A `TF_CONFIG` that
  describes a cluster is refused (UsageError, before the ingest): Keras 3's `Model.fit` fails under
  `MultiWorkerMirroredStrategy` (keras-team/keras#20585, open; reproduced with Keras 3.15 and TF
  2.21 on two local workers: `_maybe_symbolic_build` reduces the first distributed batch and
  raises "Attempt to convert a value (PerReplica ...)"), so a multi-worker run would only fail
  later, after the ingest and with a TensorFlow traceback.
"""

import json
import os
from typing import Callable, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from components.common.errors import UsageError

MIXED_PRECISION_MIN_CAPABILITY = (7, 0)


def detect_gpus() -> list:
    """Compute capability (major, minor) of each visible GPU; (0, 0) when TensorFlow cannot tell."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


def choose_precision(requested: str, gpu_capabilities: Sequence[Tuple[int, int]]) -> str:
    """The Keras dtype policy name to train with for `requested` ("auto", "float32", "mixed_float16")."""
    if requested != "auto":
        return requested
    if gpu_capabilities and all(tuple(c) >= MIXED_PRECISION_MIN_CAPABILITY for c in gpu_capabilities):
        return "mixed_float16"
    return "float32"


def _cluster_in(tf_config: Optional[str]) -> bool:
    if not tf_config:
        return False
    try:
        parsed = json.loads(tf_config)
    except ValueError as e:
        raise UsageError(
            f"TF_CONFIG is set but is not valid JSON ({e}): fix it, or unset it to train on one machine"
        ) from None
    return isinstance(parsed, dict) and bool(parsed.get("cluster"))


def check_tf_config(tf_config: Optional[str]) -> None:
    """UsageError when `tf_config` (the TF_CONFIG variable) is not JSON or describes a cluster."""
    if _cluster_in(tf_config):
        raise UsageError(
            "TF_CONFIG describes a cluster, but multi-worker training does not work with this Keras: Keras 3's "
            "Model.fit fails under tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585; reproduced "
            "with Keras 3.15 and TensorFlow 2.21). Unset TF_CONFIG to train on this machine (several local GPUs "
            "are still used, through MirroredStrategy)"
        )


def choose_strategy(num_gpus: int, tf_config: Optional[str], devices: Sequence[str] = ()) -> str:
    """ "mirrored" or "default" (see the module docstring); `devices`: the names `train.devices` gives."""
    check_tf_config(tf_config)
    if len(devices) > 1 or (not devices and num_gpus > 1):
        return "mirrored"
    return "default"


def _canonical(name: str) -> str:
    """`/gpu:0`, `/device:GPU:0` and `/job:localhost/replica:0/task:0/device:GPU:0` -> `GPU:0`."""
    return name.rsplit("/", 1)[-1].split("device:")[-1].upper()


def check_devices(devices: Sequence[str]) -> None:
    """UsageError naming what this machine has when a device of `train.devices` is not among them."""
    present = {_canonical(d.name) for d in tf.config.list_logical_devices()}
    missing = [name for name in devices if _canonical(name) not in present]
    if missing:
        raise UsageError(
            f"train.devices names {', '.join(missing)}, which this machine does not have (it has "
            f"{', '.join(sorted(present))}); use 'auto' or name devices from that list"
        )


def make_strategy(name: str, devices: Sequence[str] = ()) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) or None)
    if devices:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()


class Placement:
    """The precision policy and strategy for one training run; restores Keras's policy on exit."""

    def __init__(
        self, requested_precision: str, measure_cpu: Optional[Callable[[], dict]] = None, devices: Sequence[str] = ()
    ):
        """measure_cpu: for "auto" on a machine without GPUs, returns `precision.decide`'s decision;
        devices: `train.devices`' names (() for "auto")."""
        gpus = detect_gpus()
        self.precision = choose_precision(requested_precision, gpus)
        self.decision = None
        if requested_precision == "auto" and not gpus and measure_cpu is not None:
            self.decision = measure_cpu()
            self.precision = self.decision["policy"]
        check_devices(devices)
        self.devices = tuple(devices)
        self.strategy_name = choose_strategy(len(gpus), os.environ.get("TF_CONFIG"), devices)
        self.num_gpus = len(gpus)
        self._previous_policy = None
        self.strategy = None

    def __enter__(self) -> "Placement":
        self._previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        self.strategy = make_strategy(self.strategy_name, self.devices)
        return self

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def __exit__(self, *exc) -> None:
        keras.mixed_precision.set_global_policy(self._previous_policy)
