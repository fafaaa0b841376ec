"""`python -m pipeline.docs [--check]`: regenerate the documentation written from the code.

What the code defines is documented from the code, so it cannot drift: docs/configuration.md
(every config key), docs/cli.md (every command's flags) and the example config pipeline.yaml
(every key at its default) are written whole by `pipeline.reference`; docs/benchmarks.md is written
whole from the benchmarks' JSON results by `benchmarks.page`; the table of export formats in schemas/ARTIFACTS.md comes from the format
registry (components/common/formats/) and sits between `<!-- generated:NAME -->` and
`<!-- /generated:NAME -->` markers, the rest of that file being written by hand. `--check` writes
nothing and exits 1 naming every stale file (tests/test_docs_generated.py runs it); exit 0 when all
are fresh.
"""

import argparse
import pathlib
import re
import sys

from components.common import formats
from pipeline import reference

ROOT = pathlib.Path(__file__).resolve().parents[1]


def formats_table() -> str:
    rows = [
        "| name (`export.formats`) | file in an export | in a pushed version | parity with Keras | defined in |",
        "| --- | --- | --- | --- | --- |",
    ]
    for fmt in formats.FORMATS.values():
        pushed = "the version directory itself" if fmt.reference else f"`assets.extra/{fmt.path}`"
        module = fmt.write.__module__.replace(".", "/") + ".py"
        rows.append(
            f"| `{fmt.name}` | `{fmt.path}{'/' if fmt.reference else ''}` | {pushed} | "
            f"{'checked' if fmt.parity else 'judged by the gate'} | `{module}` |"
        )
    return "\n".join(rows)


def checks_table() -> str:
    """docs/data.md's table of data-validation anomalies, from components/validate/checks.py's `CODES`,
    each config key named in it followed by its default."""
    from components.validate import checks
    from components.validate.config import ValidateConfig

    defaults = ValidateConfig()

    def with_defaults(text: str) -> str:
        return re.sub(
            r"`(\w+)`",
            lambda m: (
                f"`{m.group(1)}` (default {getattr(defaults, m.group(1))})"
                if hasattr(defaults, m.group(1))
                else m.group(0)
            ),
            text,
        )

    rows = ["| code | severity | when |", "| --- | --- | --- |"]
    for code in checks.CODES.values():
        severity = code.severity if code.severity in ("error", "warning") else with_defaults(f"`{code.severity}`")
        rows.append(f"| `{code.name}` | {severity} | {with_defaults(code.when).replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


GENERATED = {
    ROOT / "schemas" / "ARTIFACTS.md": {"formats": formats_table},
    ROOT / "docs" / "data.md": {"checks": checks_table},
}
WHOLE = {
    ROOT / "docs" / "configuration.md": reference.configuration_md,
    ROOT / "docs" / "cli.md": reference.cli_md,
    ROOT / "pipeline.yaml": reference.example_yaml,
    ROOT / "docs" / "benchmarks.md": lambda: _benchmarks_page().benchmarks_md(),
}


def _benchmarks_page():
    """benchmarks/page.py, imported when the page is made: it lives beside the package, in the checkout."""
    from benchmarks import page

    return page


def render(text: str, parts: dict) -> str:
    """`text` with each generated part replaced by its current content."""
    for name, make in parts.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"no <!-- generated:{name} --> ... <!-- /generated:{name} --> markers")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated part is stale")
    args = parser.parse_args(argv)
    stale = []
    made = {path: (lambda path=path, parts=parts: render(path.read_text(), parts)) for path, parts in GENERATED.items()}
    for path, make in {**made, **WHOLE}.items():
        text = path.read_text() if path.exists() else ""
        fresh = make()
        if fresh != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python -m pipeline.docs", file=sys.stderr)
        return 1
    print(("regenerated: " + ", ".join(stale)) if stale else "all generated docs are fresh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
