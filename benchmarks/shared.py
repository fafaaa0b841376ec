"""Where the benchmarks find the real photos and the pretrained backbone: `../shared` beside the
project, read in place and never copied in (a light module: `--help` loads no TensorFlow)."""

import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SIGN_DIGITS = os.path.join(SHARED, "datasets", "sign-language-digits")
PRETRAINED = os.path.join(SHARED, "weights", "mobilenetv2_0.35_96_cifar6_notop.keras")


def stamp(doc: str, module: str, argv=None) -> dict:
    """The fields every result file opens with, and that docs/benchmarks.md names each run by
    (benchmarks/page.py): what was measured (the docstring's first paragraph), the command, the
    date and the machine."""
    args = sys.argv[1:] if argv is None else argv
    return {
        "what": doc.split("\n\n")[0],
        "command": " ".join([f"python -m benchmarks.{module}", *args]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
    }
