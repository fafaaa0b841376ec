"""`precision: auto` on CPUs with bfloat16 units: measured per machine, backbone and size, then cached.

Whether `mixed_bfloat16` pays on a CPU depends on the model: on an Intel Xeon with AMX,
ResNet50V2 at 160 px trained 1.78x faster than float32 but MobileNetV2 alpha 0.35 at 96 px only
0.72x (depthwise convolutions gain nothing from the matrix units and pay for the casts). No rule
of thumb predicts that, so on a CPU whose flags show bfloat16 support (`amx_bf16`, `avx512_bf16`)
`auto` times a few training steps of the real classifier under both policies and takes
`mixed_bfloat16` only when it is at least MARGIN (1.15) times as fast as float32.
The decision is cached in `$XDG_CACHE_HOME/transferline/precision.json` (default `~/.cache`), keyed
by CPU model, TensorFlow version, backbone, width, size and batch size, so it is measured once
(delete the file to measure again, e.g. after a measurement on a busy machine).
GPUs keep `mixed_float16` from compute capability 7.0 (devices.choose_precision); other CPUs
keep float32 without measuring. `TRANSFERLINE_PRECISION_AUTO=float32` makes `auto` mean float32 on
every CPU without measuring (the test suite sets it, so no test depends on the CPU it runs on).

`decide` is pure (tested without the hardware); `measure_rates` builds models and times them.
"""

import json
import os
import platform
import time
from typing import Callable, Dict, Optional

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
ENV = "TRANSFERLINE_PRECISION_AUTO"  # "measure" (default) or "float32"
POLICIES = ("float32", "mixed_bfloat16")
# bfloat16 is taken only from this speed-up: below it the gain is within what repeated measurements
# of the same model on one machine spread over (benchmarks/devices.py --repeats), and a reduced
# precision that is not clearly faster is not worth its accuracy risk (docs/training.md, "Precision and devices").
MARGIN = 1.15


def _cpuinfo() -> str:
    """/proc/cpuinfo ("" where there is none: then no flags and the platform's name)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_bf16_flags(cpuinfo: Optional[str] = None) -> list:
    """The bfloat16 flags of this CPU (from /proc/cpuinfo; empty elsewhere)."""
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def cpu_model(cpuinfo: Optional[str] = None) -> str:
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "transferline", "precision.json")


def _read_cache(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a missing or damaged cache is measured again


def _write_cache(path: str, data: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs a measurement next time


def decide(key: str, flags: list, measure: Callable[[], Dict[str, float]], path: Optional[str] = None) -> dict:
    """{"policy", "reason", "rates" (img/s per policy), "cached"} for a CPU run of `key`.

    measure: returns img/s per policy in POLICIES; called only on a bfloat16 CPU with no cached answer.
    """
    if os.environ.get(ENV, "measure") == "float32":
        return {"policy": "float32", "reason": f"{ENV}=float32", "rates": None, "cached": False}
    if not flags:
        return {"policy": "float32", "reason": "CPU without bfloat16 units", "rates": None, "cached": False}
    path = path or cache_path()
    cache = _read_cache(path)
    cached = cache.get(key, {}).get("rates")
    if isinstance(cached, dict) and set(cached) == set(POLICIES):  # rates are kept; the margin is applied now
        return {**_choose(cached, flags), "cached": True}
    rates = {p: round(r, 2) for p, r in measure().items()}
    decision = _choose(rates, flags)
    cache[key] = decision
    _write_cache(path, cache)
    return {**decision, "cached": False}


def _choose(rates: dict, flags: list) -> dict:
    """mixed_bfloat16 only when it trained at least MARGIN times as fast as float32."""
    ratio = rates["mixed_bfloat16"] / rates["float32"]
    policy = "mixed_bfloat16" if ratio >= MARGIN else "float32"
    return {
        "policy": policy,
        "rates": rates,
        "margin": MARGIN,
        "reason": f"measured on this CPU ({', '.join(flags)}): mixed_bfloat16 trained {ratio:.2f}x as fast as "
        f"float32; {policy} (bfloat16 is chosen from {MARGIN:g}x)",
    }


def cache_key(backbone: str, alpha, image_size: int, batch_size: int) -> str:
    import tensorflow as tf

    return f"{cpu_model()}|tf {tf.__version__}|{backbone}|alpha {alpha}|{image_size}px|batch {batch_size}"


def measure_rates(
    backbone: str, alpha, image_size: int, batch_size: int, steps: int = 4, rounds: int = 2
) -> Dict[str, float]:
    """Training img/s of the classifier (backbone + head, all trainable) under each policy in POLICIES.

    Both models are built first, then timed in alternating rounds and the best round of each kept,
    so a burst of load from another process does not decide the comparison on its own.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from components.train.backbones import build_backbone
    from components.train.model import assemble, build_head

    images = np.random.default_rng(0).uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(batch_size) % 2, 2)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    previous = keras.mixed_precision.global_policy()
    models, rates = {}, {policy: 0.0 for policy in POLICIES}
    try:
        for policy in POLICIES:
            keras.mixed_precision.set_global_policy(policy)
            preprocessing, network = build_backbone(backbone, image_size, "none", alpha=alpha)
            models[policy] = assemble(preprocessing, network, build_head(2, 0.0), image_size, backbone_trains_bn=False)
            models[policy].compile(optimizer="adam", loss="categorical_crossentropy")
            models[policy].fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # trace and warm up
        for _ in range(rounds):
            for policy in POLICIES:
                started = time.perf_counter()
                models[policy].fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
                rates[policy] = max(rates[policy], steps * batch_size / (time.perf_counter() - started))
    finally:
        keras.mixed_precision.set_global_policy(previous)
        keras.backend.clear_session()
    return rates
