"""The configuration and command-line references, written from the code (`python -m pipeline.docs`).

Each config key's row comes from its dataclass: the name and type from the field, the default from
the dataclass, the description from the class docstring's `name: ...` entry (its first sentence),
and the allowed values from the code that enforces them: the field's `validate()` is called with
an out-of-range value and the `UsageError` it raises says what is allowed. So the reference cannot
promise a range the code does not check, and a field without a docstring entry fails the generator.
Each CLI's flags come from its own `argparse` parser.
"""

import argparse
import dataclasses
import importlib
import inspect
import re
import types
import typing

from components.common.errors import UsageError
from components.train.config import TrainConfig
from pipeline import config

# A section whose default instance is not valid on its own is probed from a valid one.
_VALID_BASE = {"ingest": {"data_dir": "images"}}
_PROBES = {int: (-(10**9), 10**9), float: (-1e9, 1e9), str: ("\x01", " ")}
# argparse has no public list of a parser's arguments: `_actions`; these two are no flags of the command
_NOT_FLAGS = (argparse._HelpAction, argparse._SubParsersAction)
# A list of dataclasses that is empty by default is documented from an example list.
_EXAMPLE_ITEMS = {"train.stages": lambda: TrainConfig().effective_stages()}
CLIS = ("pipeline.run", "pipeline.validate", "pipeline.predict", "pipeline.runs", "pipeline.serve", "pipeline.schedule")


def docstring_entries(cls) -> dict:
    """`{field: text}` from `cls`'s docstring, whose entries read `name: text` (or `a / b: text` for
    several fields) at the start of a line, continued on indented lines."""
    entries, current = {}, None
    lines = [
        line
        for base in reversed(cls.__mro__)
        for line in ["", *(base.__doc__ and inspect.cleandoc(base.__doc__) or "").splitlines()]
    ]
    for line in lines:
        head = re.match(r"^([a-z_][a-z0-9_]*(?: / [a-z_][a-z0-9_]*)*): (.*)", line)
        if head:
            current = head.group(1).split(" / ")
            for name in current:
                entries[name] = head.group(2)
        elif current and line.startswith(" ") and line.strip():
            for name in current:
                entries[name] += " " + line.strip()
        else:
            current = None
    return entries


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not that of "e.g." or "i.e.")."""
    match = re.match(r"(.+?(?<!e\.g)(?<!i\.e)\.)(?:\s+[A-Z(`\"]|$)", text)
    return (match.group(1) if match else text.rstrip(".") + ".").replace("|", "\\|")


def _plain(hint):
    """The type a value of `hint` has when it is set (Optional[X] -> X)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _type_text(hint) -> str:
    """`int`, `float (or null)`, `tuple`, `Mapping[str, float]`, `TuneSpace`: no `|`, which would split a table cell."""
    plain = _plain(hint)
    if plain is not hint:
        return _type_text(plain) + " (or null)"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(hint))
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    text = text or str(hint).replace("typing.", "")
    return re.sub(r"\b[a-z_.]+\.([A-Z]\w*)", r"\1", text)


def _tail(message: str, value) -> str:
    """What `message` says after the probed `value`: the allowed values, in the code's own words."""
    shown = repr(value)
    at = message.find(shown)
    if at < 0:
        return ""
    return message[at + len(shown) :].lstrip(":;, ").strip()


def allowed(rebuild, instance, field: dataclasses.Field, hint) -> str:
    """The allowed values of `field`, as `validate()` states them when given a value outside them."""
    plain = _plain(hint)
    said = []
    for probe in _PROBES.get(plain, ()):
        try:
            rebuild(dataclasses.replace(instance, **{field.name: probe})).validate()
        except UsageError as e:
            tail = _tail(str(e), probe)
            echoed = str(probe).strip() and str(probe).strip() in tail  # the message quotes the bad value
            if tail and tail not in said and "000000" not in tail and not echoed:
                said.append(tail)
    if not said:
        said.append({bool: "true or false", str: "any text"}.get(plain, "see the description"))
    if plain is not hint:
        said.append("or null")
    return "; ".join(said)


def _default_text(value) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(below)"
    return f"`{config.to_plain(value)!r}`".replace("'", '"') if value != "" else '`""`'


def rows(cls, instance, prefix: str, rebuild) -> list:
    """Table rows for every field of the dataclass `cls` under `prefix`, nested dataclasses after."""
    hints = typing.get_type_hints(cls)
    entries = docstring_entries(cls)
    out, nested = [], []
    for field in dataclasses.fields(cls):
        key = prefix + field.name
        if field.name not in entries:
            raise SystemExit(f"{cls.__module__}.{cls.__name__} has no docstring entry `{field.name}: ...` for {key}")
        value = getattr(instance, field.name)
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        out.append(
            f"| `{key}` | {_type_text(hints[field.name])} | {_default_text(default)} | "
            f"{allowed(rebuild, instance, field, hints[field.name])} | {first_sentence(entries[field.name])} |"
        )
        items = value or _EXAMPLE_ITEMS.get(key, lambda: None)()
        if dataclasses.is_dataclass(value):
            nested.append((type(value), value, key + ".", _within(rebuild, instance, field.name)))
        elif isinstance(items, tuple) and items and dataclasses.is_dataclass(items[0]):
            nested.append((type(items[0]), items[0], key + "[].", _within_first(rebuild, instance, field.name, items)))
    for child in nested:
        out += rows(*child)
    return out


def _within(rebuild, instance, name):
    return lambda value: rebuild(dataclasses.replace(instance, **{name: value}))


def _within_first(rebuild, instance, name, items):
    return lambda value: rebuild(dataclasses.replace(instance, **{name: (value, *items[1:])}))


def configuration_md() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m pipeline.docs` from the config dataclasses; do not edit by hand. -->",
        "",
        "Every key below is a YAML key of its section (`pipeline.yaml` is a commented example) and can be",
        "set on the command line with `--set SECTION.KEY=VALUE` (the value is read as YAML). A bad value",
        "stops the run before any work with exit code 2, naming the key and what is allowed. The",
        "allowed values are those the code checks; the description is the first sentence of the field's",
        "entry in its dataclass's docstring, where the rest of it is.",
    ]
    for section, cls in config.section_classes().items():
        instance = cls(**_VALID_BASE.get(section, {}))
        out += [
            "",
            f"## `{section}`",
            "",
            f"`{cls.__module__}.{cls.__name__}`: {first_sentence(inspect.getdoc(cls).splitlines()[0])}",
            "",
            "| key | type | default | allowed | description |",
            "| --- | --- | --- | --- | --- |",
            *rows(cls, instance, f"{section}.", lambda value: value),
        ]
    return "\n".join(out) + "\n"


def parser_of(module_name: str):
    return importlib.import_module(module_name).build_parser()


def _flag_rows(parser) -> list:
    out = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, _NOT_FLAGS):
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0:
            name += f" `{action.metavar or action.dest.upper()}`"
        if action.choices and not isinstance(action.choices, dict):
            name += " (" + ", ".join(f"`{c}`" for c in action.choices) + ")"
        default = getattr(action, "config_default", action.default)  # pipeline.run: the config key's default
        unset = default is None or default is False or default == argparse.SUPPRESS
        shown = "" if unset or not action.option_strings else f"`{default}`"
        help_text = (action.help or "").replace("|", "\\|").replace("%%", "%")
        out.append(f"| {name.replace('|', chr(92) + '|')} | {shown} | {help_text} |")
    return out


def cli_md() -> str:
    out = [
        "# Command-line reference",
        "",
        "<!-- Generated by `python -m pipeline.docs` from each command's argparse parser; do not edit by hand. -->",
        "",
        'Every command takes `--help`. Exit codes are the same for all of them (README, "Exit codes").',
    ]
    for name in CLIS:
        parser = parser_of(name)
        out += ["", f"## `python -m {name}`", "", parser.description or "", ""]
        out += ["| argument | default | meaning |", "| --- | --- | --- |", *_flag_rows(parser)]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    helps = {a.dest: a.help for a in action._choices_actions}
                    about = helps.get(sub) or ""
                    out += ["", f"### `python -m {name} {sub}`", "", about[:1].upper() + about[1:], ""]
                    out += ["| argument | default | meaning |", "| --- | --- | --- |", *_flag_rows(subparser)]
        if parser.epilog:
            out += ["", parser.epilog]
    return "\n".join(out) + "\n"


def _yaml_value(value) -> str:
    import yaml

    text = yaml.safe_dump(config.to_plain(value), default_flow_style=True, width=10**6).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _yaml_rows(cls, indent: int, prefix: str) -> list:
    """`key: default` under its description for every field of `cls`; a nested dataclass as a nested
    mapping, a list of dataclasses that is empty by default followed by its defaults as a commented example."""
    import textwrap

    entries, pad, out = docstring_entries(cls), "  " * indent, []
    for field in dataclasses.fields(cls):
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        about = first_sentence(entries[field.name]).replace(chr(92) + "|", "|")
        out += textwrap.wrap(about, 100, initial_indent=pad + "# ", subsequent_indent=pad + "# ")
        if dataclasses.is_dataclass(default):
            out += [f"{pad}{field.name}:", *_yaml_rows(type(default), indent + 1, f"{prefix}{field.name}.")]
            continue
        out.append(f"{pad}{field.name}: {_yaml_value(default)}")
        example = _EXAMPLE_ITEMS.get(prefix + field.name)
        if default is None and example:
            out.append(f"{pad}# e.g., what null means here:")
            out.append(f"{pad}# {field.name}:")
            out += [f"{pad}#   - {_yaml_value(item)}" for item in example()]
    return out


def example_yaml() -> str:
    """pipeline.yaml: every key of every section at its default, so that a config copied from it and
    edited changes only what its owner edits (a nightly job built from it trains as documented)."""
    out = [
        "# Example config for `python -m pipeline.run --config pipeline.yaml`.",
        "# Generated by `python -m pipeline.docs` from the config dataclasses; do not edit by hand: copy it.",
        "#",
        "# Every key is shown at its default: this file as it is changes nothing but needs your data, so set",
        "# ingest.data_dir (or pass --data-dir). Flags on the command line override this file, and",
        "# `--set SECTION.KEY=VALUE` overrides any key. Values are checked before anything runs: an unknown",
        "# key, a wrong type or a value out of range stops with exit code 2 and a message naming the key.",
        "# docs/configuration.md says what each key allows; the effective config of every run is saved as",
        "# PIPELINE_ROOT/runs/<run_id>/config.yaml.",
    ]
    for section, cls in config.section_classes().items():
        out += ["", f"{section}:", *_yaml_rows(cls, 1, f"{section}.")]
    return "\n".join(out) + "\n"
