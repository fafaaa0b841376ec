"""Package attributes imported on first use (PEP 562), so that naming a component costs nothing.

The orchestrator reads every component's config class and checks whether its output can be
reused; only a component that actually runs needs its `run`, and with it TensorFlow, Keras, Beam
or TFMA. A package's `__init__` therefore exposes its heavy names through `lazy_attributes`.
"""

import importlib


def lazy_attributes(package: str, where: dict):
    """A module-level `__getattr__` for `package`: `where` maps each lazy name to its submodule."""

    def __getattr__(name):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
