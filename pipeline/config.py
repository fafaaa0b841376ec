"""The run's configuration: one section per component, from a YAML file plus CLI overrides.

Each component owns its config dataclass (`components/<name>/config.py`); this module only
knows how to build them from plain data, so a new field in a component's dataclass is at once a
YAML key and a `--set section.key=value` override, with no second list to keep in step. Values
are checked against the dataclass field types here (unknown key, wrong type) and then by the
dataclass's own `validate()` (ranges), before anything runs; every error names the key, the bad
value and what is allowed, and exits with the usage code.
"""

import dataclasses
import importlib
import types
import typing
from typing import Any, Mapping

import yaml

from components.common import fileio
from components.common.errors import UsageError
from components.common.suggest import did_you_mean

DEFAULT_PIPELINE_ROOT = "./pipeline_root"


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Settings of the orchestration itself (the `pipeline:` section of the YAML file).

    pipeline_root: the folder that holds every run's outputs, the lineage store and the run lock.
    serving_dir: where blessed models are pushed, as TF Serving's NAME/VERSION folders; None means
      `<pipeline_root>/serving`, so that the demo needs no flag. In production, point it at the
      directory TF Serving watches.
    """

    pipeline_root: str = DEFAULT_PIPELINE_ROOT
    serving_dir: str | None = None

    def validate(self) -> None:
        if not self.pipeline_root:
            raise UsageError("pipeline.pipeline_root: empty; give a directory, e.g. --pipeline-root ./pipeline_root")

    @property
    def effective_serving_dir(self) -> str:
        return self.serving_dir or self.pipeline_root.rstrip("/") + "/serving"


def sections() -> dict:
    """Section name -> "module:Class" of its dataclass: "pipeline" is ours, each DAG node names its own."""
    from pipeline import dag

    return {"pipeline": "pipeline.config:PipelineConfig", **{node.name: node.config for node in dag.NODES}}


def section_class(section: str):
    """The dataclass of a section (its module is the component's light config module)."""
    module_name, class_name = sections()[section].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def section_classes() -> dict:
    return {name: section_class(name) for name in sections()}


# --- turning plain data into typed values ----------------------------------------------------


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _bad(key: str, value, expected: str) -> UsageError:
    return UsageError(f"config key {key}: {value!r} is not valid; expected {expected}")


def _exactly(kind):
    def convert(value):
        if isinstance(value, kind):
            return value
        raise ValueError

    return convert


def _number(kind):
    """int or float from YAML data; numeric text counts too (PyYAML, YAML 1.1, reads 2e-3 as a string)."""

    def convert(value):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        if kind is int and isinstance(value, float):
            raise ValueError
        return kind(value)

    return convert


_SCALARS = {  # type -> (convert or raise ValueError, what the message says is expected)
    bool: (_exactly(bool), "true or false"),
    int: (_number(int), "an integer"),
    float: (_number(float), "a number"),
    str: (_exactly(str), "a string"),
}


def coerce(value: Any, hint, key: str):
    """Convert YAML data `value` to the type `hint` (dataclasses, lists and mappings recursively), or raise.

    The one conversion for every section: the YAML file's values and `--set` values (parsed as
    YAML first) both come through here, and the UsageError names the key, the value and the type.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):  # "0.5" is a number
            try:
                return coerce(value, arg, key)
            except UsageError as e:
                errors.append(e)
        nested = [e for e in errors if not str(e).startswith(f"config key {key}:")]  # e.g. stages[0].epochs
        raise nested[0] if nested else _bad(key, value, " or ".join(_type_name(a) for a in args))
    if origin is typing.Literal:
        if value in args:
            return value
        raise _bad(key, value, "one of " + ", ".join(repr(a) for a in args))
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _bad(key, value, f"a mapping of {hint.__name__} fields")
        return build_dataclass(hint, value, key)
    if hint in (list, tuple) or origin in (list, tuple, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            raise _bad(key, value, "a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _bad(key, value, f"a list of {len(args)} items")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        items = [coerce(v, args[0] if args else Any, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if tuple in (hint, origin) else items
    if hint is dict or origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _bad(key, value, "a mapping")
        kt, vt = args or (Any, Any)
        return {coerce(k, kt, key): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    convert, expected = _SCALARS.get(hint, (lambda v: v, ""))
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise _bad(key, value, expected) from None


def coerce_text(raw: str, hint, key: str):
    """A `--set` value: parsed as YAML (so 16, true, null, [a, b] and {k: v} mean what they say), then
    coerced; text that is no valid YAML, or whose YAML value does not fit, stays text where a string fits."""
    try:
        return coerce(yaml.safe_load(raw), hint, key)
    except (yaml.YAMLError, UsageError) as e:
        try:
            return coerce(raw, hint, key)
        except UsageError:
            if isinstance(e, yaml.YAMLError):
                raise _bad(key, raw, f"YAML for {_type_name(hint)}") from None
            raise e from None


# Keys of earlier releases: a config written for one is told what to write instead.
RENAMED = {
    "evaluate.max_tflite_accuracy_drop": "evaluate.max_format_accuracy_drop (it covers every exported format, "
    "ONNX included)",
    "export.tflite_variants": "export.formats (a list of format names, e.g. [saved_model, tflite_int8, onnx])",
}


def unknown_key(key: str, allowed) -> str:
    """Why `key` ("section.name") is refused: renamed since an earlier release, or unknown (with the
    closest allowed key, and all of them)."""
    if key in RENAMED:
        return f"{key} was renamed: write {RENAMED[key]}"
    section, _, name = key.rpartition(".")
    return f"{key}: unknown key{did_you_mean(name, allowed)}; allowed keys in {section}: {', '.join(sorted(allowed))}"


def build_dataclass(cls, data: Mapping, prefix: str):
    """Instantiate `cls` from `data`, rejecting unknown keys and converting each value by its type."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UsageError(f"config key {unknown_key(f'{prefix}.{unknown[0]}', fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: coerce(value, hints.get(name, Any), f"{prefix}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field without a value
        raise UsageError(f"config section {prefix}: {e}") from None


# --- the whole run's configuration ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The effective configuration of one run: one validated dataclass per section."""

    sections: dict
    # "section.key" -> where the value was given ("--weights", "train.weights in nightly.yaml", "--set
    # train.weights", "the demo's defaults"); keys not in it have their defaults
    sources: dict = dataclasses.field(default_factory=dict)

    def __getitem__(self, name):
        return self.sections[name]

    @property
    def pipeline(self) -> PipelineConfig:
        return self.sections["pipeline"]

    def section_dict(self, name) -> dict:
        return to_plain(self.sections[name])

    def to_dict(self) -> dict:
        return {name: to_plain(section) for name, section in self.sections.items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def to_plain(value):
    """Dataclasses, tuples and mappings as plain YAML/JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def read_yaml(path: str) -> dict:
    """Read the `--config` file: a mapping of section name to a mapping of keys."""
    if not fileio.exists(path):
        raise UsageError(f"--config {path}: file not found; give the path of a YAML file like pipeline.yaml")
    with fileio.GFile(path, "r") as f:
        try:
            data = yaml.safe_load(f.read())
        except yaml.YAMLError as e:
            raise UsageError(f"--config {path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: the top level must be a mapping of sections ({', '.join(sections())})")
    return data


def merge(base: dict, override: dict) -> dict:
    """Nested dict merge: keys of `override` win; mappings are merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[str, str, str]:
    """`section.key=value` (from `--set`) -> (section, key, raw text value)."""
    name, sep, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise UsageError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. --set train.batch_size=16")
    return section, key, value


def build(data: dict, text_overrides: list[tuple[str, str, str]] = ()) -> RunConfig:
    """Validate the merged YAML + flag data into a `RunConfig`.

    `data` holds typed values (YAML, or flags already converted by argparse); `text_overrides`
    are `--set` values still as text, converted by the field's type.
    """
    available = section_classes()
    for section in data:
        if section not in available:
            raise UsageError(
                f"config section {section!r}: unknown{did_you_mean(section, available)}; "
                f"allowed sections: {', '.join(available)}"
            )
        if not isinstance(data[section], Mapping):
            raise UsageError(f"config section {section}: {data[section]!r} is not a mapping of keys")
    data = {k: dict(v) for k, v in data.items()}
    for section, key, raw in text_overrides:
        cls = available.get(section)
        if cls is None:
            raise UsageError(
                f"--set {section}.{key}: unknown section{did_you_mean(section, available)}; "
                f"allowed: {', '.join(available)}"
            )
        hints = typing.get_type_hints(cls)
        if key not in {f.name for f in dataclasses.fields(cls)}:
            raise UsageError(f"--set {unknown_key(f'{section}.{key}', [f.name for f in dataclasses.fields(cls)])}")
        data.setdefault(section, {})[key] = coerce_text(raw, hints[key], f"{section}.{key}")
    built = {}
    for name, cls in available.items():
        section = build_dataclass(cls, data.get(name, {}), name)
        section.validate()  # every section's one validation: its UsageError names the key, value and range
        built[name] = section
    _check_sizes(built)
    return RunConfig(built)


def _check_sizes(built: dict) -> None:
    """The records must hold at least the pixels the model is trained at: refuse an ingest.max_side below
    train.image_size, which would upsample every camera photo (both are in the effective config)."""
    max_side, image_size = built["ingest"].max_side, built["train"].image_size
    if max_side is not None and image_size > max_side:
        raise UsageError(
            f"ingest.max_side={max_side} is below train.image_size={image_size}: the records would be upsampled "
            f"to train on; set ingest.max_side to at least {image_size} (--max-side; 1.3x that keeps full "
            "resolution under the default crop augmentation)"
        )
