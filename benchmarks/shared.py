"""Where the benchmarks find the real photos and the pretrained backbone: `../shared` beside the
project, read in place and never copied in (a light module: `--help` loads no TensorFlow)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SIGN_DIGITS = os.path.join(SHARED, "datasets", "sign-language-digits")
PRETRAINED = os.path.join(SHARED, "weights", "mobilenetv2_0.35_96_cifar6_notop.keras")
