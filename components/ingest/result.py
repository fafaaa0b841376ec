"""What one ingest returns: the counts a user wants at the end, and where the outputs are."""

import dataclasses
from typing import Dict, Sequence

from components.common.outcome import Outcome


@dataclasses.dataclass(frozen=True)
class IngestResult(Outcome):
    """Counts of one ingest run and its output paths.

    counts: {label_text: {split: images}}; rejected: {reason: files}; ignored: {why: files}.
    found: every file the scan saw; kept + sum(rejected) + sum(ignored) == found.
    output_dir: the published ingest directory; dataset_dir: its TFDS dataset folder.
    """

    output_dir: str
    dataset_dir: str
    labels: Sequence[str]
    counts: Dict[str, Dict[str, int]]
    rejected: Dict[str, int]
    ignored: Dict[str, int]
    found: int
    kept: int
    seconds: float

    @property
    def split_totals(self) -> Dict[str, int]:
        totals: Dict[str, int] = {}
        for per_split in self.counts.values():
            for split, n in per_split.items():
                totals[split] = totals.get(split, 0) + n
        return totals

    def summary(self) -> str:
        """A short human-readable summary: per class per split, rejects by reason, time."""
        splits = list(self.split_totals)
        width = max([len("class")] + [len(name) for name in self.labels])
        lines = [
            f"ingest: {self.found} files found, {self.kept} kept, {sum(self.rejected.values())} rejected, "
            f"{sum(self.ignored.values())} ignored, {len(self.labels)} classes, {self.seconds:.1f} s",
            "  " + "class".ljust(width) + "".join(f"{s:>8}" for s in splits),
        ]
        for name in self.labels:
            per_split = self.counts.get(name, {})
            lines.append("  " + name.ljust(width) + "".join(f"{per_split.get(s, 0):>8}" for s in splits))
        lines.append("  " + "total".ljust(width) + "".join(f"{self.split_totals[s]:>8}" for s in splits))
        if self.rejected:
            lines.append("  rejected: " + ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items())))
        if self.ignored:
            lines.append("  ignored: " + ", ".join(f"{r} {n}" for r, n in sorted(self.ignored.items())))
        lines.append(f"  output: {self.output_dir}")
        return "\n".join(lines)
