"""Training speed of float32 and mixed_bfloat16 per backbone, and what `precision: auto` picks here.

    python -m benchmarks.precision [--steps 8] [--out FILE]

For MobileNetV2 alpha 0.35 at 96 px and ResNet50V2 at 160 px (issue 10's two cases), times the
classifier's training steps under each policy (components/train/precision.measure_rates: one
warm-up step, then the best of two alternating rounds of --steps timed steps, batch 32) and runs `precision.decide` with a fresh cache,
as `auto` would on this CPU. Prints one JSON object: the CPU, its bfloat16 flags, per case the
img/s of both policies, their ratio and the choice. On a CPU without bfloat16 flags `auto` keeps
float32 without measuring; the rates are still measured and printed for reference.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = [("MobileNetV2", 0.35, 96), ("ResNet50V2", None, 160)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    from components.train import precision

    flags = precision.cpu_bf16_flags()
    report = {
        "cpu": precision.cpu_model(),
        "bf16_flags": flags,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "cases": [],
    }
    with tempfile.TemporaryDirectory() as cache:
        for backbone, alpha, size in CASES:
            rates = precision.measure_rates(backbone, alpha, size, args.batch_size, steps=args.steps)
            key = precision.cache_key(backbone, alpha, size, args.batch_size)
            decision = precision.decide(key, flags, lambda: rates, os.path.join(cache, "precision.json"))
            report["cases"].append(
                {
                    "backbone": backbone,
                    "alpha": alpha,
                    "image_size": size,
                    "img_per_s": {p: round(r, 2) for p, r in rates.items()},
                    "bfloat16_vs_float32": round(rates["mixed_bfloat16"] / rates["float32"], 3),
                    "auto_chose": decision["policy"],
                    "reason": decision["reason"],
                }
            )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
