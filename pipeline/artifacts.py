"""The pipeline root's layout, in one place.

```
PIPELINE_ROOT/
  <component>/<run_id>/     one published output per execution (see schemas/ARTIFACTS.md)
  train/_work/<key>/        training state that survives a killed run, keyed by the train fingerprint
  tune/_work/<key>/         the search's journal and its trials' training state, the same way
  demo/                     the built-in demo dataset, generated once (no --data-dir/--tfds-name)
  runs/<run_id>/            config.yaml (effective config), report.html, summary.txt, error.log
  metadata.sqlite           lineage: runs, executions, artifacts, fingerprints (pipeline/metadata.py)
  .lock                     held while a run uses this root (pipeline/lock.py)
```

Outputs are published by the components themselves (write to a temporary sibling, rename);
a killed run can leave such temporaries behind, and `remove_stale_temporaries` clears them once
the next run holds the lock (no other run can be writing them then).
"""

import os

from components.common import fileio


def output_dir(root: str, component: str, run_id: str) -> str:
    return os.path.join(root, component, run_id)


def work_dir(root: str, component: str, key: str) -> str:
    return os.path.join(root, component, "_work", key)


def image_results_dir(root: str) -> str:
    """Where per-image results are kept across runs (components/common/image_results.py)."""
    return os.path.join(root, "cache", "image_results")


def run_dir(root: str, run_id: str) -> str:
    return os.path.join(root, "runs", run_id)


def demo_dir(root: str) -> str:
    return os.path.join(root, "demo")


def metadata_path(root: str) -> str:
    return os.path.join(root, "metadata.sqlite")


def lock_path(root: str) -> str:
    return os.path.join(root, ".lock")


def remove_stale_temporaries(root: str, components) -> list[str]:
    """Delete `.tmp-*` directories a killed run left in the folders of `components`; returns them."""
    removed = []
    for component in components:
        folder = os.path.join(root, component)
        if not fileio.isdir(folder):
            continue
        for name in fileio.listdir(folder):
            if name.startswith(".tmp-"):
                path = os.path.join(folder, name.rstrip("/"))
                fileio.rmtree(path)
                removed.append(path)
    return removed
