"""The layout's rules, checked on the source: components never import each other (what passes between
them is an artifact on disk; shared code lives in components/common), components/common imports no
component, and the server (an application over pushed versions) imports no component but common."""

import ast
import pathlib

import pytest

PROJECT = pathlib.Path(__file__).resolve().parents[1]
COMPONENTS = sorted(p.name for p in (PROJECT / "components").iterdir() if (p / "__init__.py").exists())


def _imports(package: pathlib.Path) -> set:
    """Every (module name, file) imported anywhere in `package`'s .py files, or in the one file `package`
    (top-level and inside functions)."""
    found = set()
    for path in package.rglob("*.py") if package.is_dir() else [package]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update((alias.name, path.relative_to(PROJECT).as_posix()) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module, path.relative_to(PROJECT).as_posix()))
                found.update(
                    (f"{node.module}.{alias.name}", path.relative_to(PROJECT).as_posix()) for alias in node.names
                )
    return found


def _components_imported(package: pathlib.Path) -> dict:
    """{component: [files importing it]} for the components imported from `package`."""
    found = {}
    for module, path in _imports(package):
        parts = module.split(".")
        if parts[0] == "components" and len(parts) > 1 and parts[1] in COMPONENTS:
            found.setdefault(parts[1], set()).add(path)
    return found


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c != "common"])
def test_a_component_imports_only_itself_and_common(component):
    imported = _components_imported(PROJECT / "components" / component)
    assert set(imported) <= {component, "common"}, {
        c: sorted(p) for c, p in imported.items() if c not in (component, "common")
    }


def test_common_and_the_server_import_no_component():
    assert set(_components_imported(PROJECT / "components" / "common")) <= {"common"}
    assert set(_components_imported(PROJECT / "server")) <= {"common"}


def test_the_dag_is_checked_to_be_in_dependency_order():
    from pipeline import dag

    assert dag.in_dependency_order(dag.NODES) == dag.NODES
    with pytest.raises(RuntimeError, match="'audit' is listed before its inputs \\['train'\\]"):
        dag.in_dependency_order(tuple(n for n in dag.NODES if n.name != "train") + (dag.node("train"),))


def test_schemas_and_common_import_in_one_direction():
    """The contract (schemas/) may use the file-I/O, publishing and error helpers of components/common;
    components/common never imports schemas (what reads the artifact layout lives with its user)."""
    imported = {module for module, _ in _imports(PROJECT / "components" / "common")}
    assert not {m for m in imported if m == "schemas" or m.startswith("schemas.")}


# The orchestrator: what runs the graph and keeps its lineage. It reaches a component only through its
# Node in pipeline/dag.py (issue 36, item 5), so that dag.py stays the one module that names components.
ORCHESTRATOR = ("executor", "orchestrate", "drivers", "fingerprint", "metadata", "artifacts", "lock", "demo")


@pytest.mark.parametrize("module", ORCHESTRATOR)
def test_the_orchestrator_imports_no_component(module):
    imported = {name for name, _ in _imports(PROJECT / "pipeline" / f"{module}.py")}
    named = {m.split(".")[1] for m in imported if m.startswith("components.")}
    assert named <= {"common"}, f"pipeline/{module}.py imports components {sorted(named - {'common'})}"
