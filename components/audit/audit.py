"""The audit step: a review queue of likely label errors and the near-duplicates across splits.

Inputs: the ingest (every split's records) and the trained model (train_dir: what the images are
embedded with, components/audit/embeddings.py). Outputs (schemas/ARTIFACTS.md, "audit"):
audit.json (summary, config, skipped reason), label_issues.csv (rank, split, path, sha256, given
and suggested label, probability of each), near_duplicates.csv (split, path, train path,
similarity, same label?). The result is not ok when test images have near-copies in train and
`leakage_severity` is "error": the pipeline then stops with exit 3 before training, as for a
data-validation error.
"""
import csv
import dataclasses
import io
import time

import numpy as np

from components.audit import embeddings, label_issues, leakage
from components.audit.config import AuditConfig
from components.common.errors import DataError
from components.common.outcome import Outcome
from components.common.publish import publish_dir, write_json, write_text_atomic
from schemas.artifacts import Audit, Examples


@dataclasses.dataclass(frozen=True)
class AuditResult(Outcome):
    output_dir: str
    skipped: str  # why the audit did not run ("" when it did)
    label_issues: int
    examples: int
    near_duplicates: dict  # split -> count of its images with a near-copy in train
    leakage_severity: str
    seconds: float

    @property
    def ok(self) -> bool:
        return not (self.leakage_severity == "error" and self.near_duplicates.get("test"))

    def summary(self) -> str:
        if self.skipped:
            return f"audit skipped: {self.skipped}"
        leaks = ", ".join(f"{n} {split} image(s)" for split, n in self.near_duplicates.items() if n) or "none"
        head = (f"audit of {self.examples} images: {self.label_issues} likely label error(s) to review "
                f"({Audit.LABEL_ISSUES}); near-copies of train images: {leaks}")
        if not self.ok:
            head += (f"\n  error: test images have near-copies in train (cosine >= the audit's leakage_similarity): "
                     f"the test accuracy would be inflated. Remove the copies (see {Audit.NEAR_DUPLICATES}) or set "
                     "audit.leakage_severity: warning")
        return head


def _csv(rows: list, header: list) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def run(config: AuditConfig, train_dir: str, ingest_dir: str, output_dir: str) -> AuditResult:
    """Audit `ingest_dir`'s images with the model in `train_dir`; publish to `output_dir` (must not exist)."""
    config.validate()
    start = time.time()
    examples = Examples(ingest_dir)
    names = examples.labels()
    skipped = "" if config.enabled else "audit.enabled is false"
    issues, duplicates, counts, total = [], [], {}, 0
    if not skipped:
        embed, image_size = embeddings.embedder(train_dir)
        splits = {}
        for split in Examples.SPLITS:
            try:
                splits[split] = embeddings.embed_split(examples, split, embed, image_size, config.batch_size)
            except DataError:  # a split this ingest does not have
                continue
        if "train" not in splits:
            raise DataError(f"{ingest_dir} has no train split to audit")
        total = sum(len(data["labels"]) for data in splits.values())
        for key in ("grid", "pooled"):  # centred on the mean over every image, then unit length
            mean = np.concatenate([data[key] for data in splits.values()]).mean(axis=0)
            for data in splits.values():
                data[key] = embeddings.centered_unit(data[key], mean)
        if config.label_issues:
            issues = _label_issues(splits, names, config)
        duplicates, counts = _near_duplicates(splits, config)
    result = AuditResult(output_dir, skipped, len(issues), total, counts, config.leakage_severity,
                         round(time.time() - start, 2))
    with publish_dir(output_dir) as tmp:
        out = Audit(tmp)
        write_text_atomic(out.path(Audit.LABEL_ISSUES), _csv(issues, [
            "rank", "split", "path", "sha256", "given_label", "suggested_label", "given_probability",
            "suggested_probability"]))
        write_text_atomic(out.path(Audit.NEAR_DUPLICATES), _csv(duplicates, [
            "split", "path", "sha256", "train_path", "train_sha256", "similarity", "pixel_correlation", "same_label"]))
        write_json(out.path(Audit.SUMMARY), {
            "skipped": skipped or None, "ok": result.ok, "examples": total, "label_issues": len(issues),
            "near_duplicates": counts, "config": dataclasses.asdict(config), "embedded_with": train_dir,
            "seconds": result.seconds})
    return result


def _near_duplicates(splits: dict, config: AuditConfig) -> tuple:
    """(rows, {split: count}): each val/test image whose nearest train image by grid cosine is at least
    `leakage_similarity` close, confirmed by a thumbnail correlation of at least `leakage_pixel_correlation`."""
    rows, counts = [], {}
    train = splits["train"]
    for split, data in splits.items():
        if split == "train":
            continue
        index, similarity = leakage.nearest(data["grid"], train["grid"])
        correlation = np.einsum("ij,ij->i", data["thumbnail"], train["thumbnail"][index])
        close = np.nonzero((similarity >= config.leakage_similarity)
                           & (correlation >= config.leakage_pixel_correlation))[0]
        counts[split] = int(len(close))
        for i in close[np.argsort(-similarity[close], kind="stable")]:
            j = int(index[i])
            rows.append({"split": split, "path": data["filename"][i], "sha256": data["sha256"][i],
                         "train_path": train["filename"][j], "train_sha256": train["sha256"][j],
                         "similarity": round(float(similarity[i]), 6),
                         "pixel_correlation": round(float(correlation[i]), 6),
                         "same_label": bool(data["labels"][i] == train["labels"][j])})
    return rows, counts


def _label_issues(splits: dict, names: list, config: AuditConfig) -> list:
    """The ranked queue over every split's images (a wrong label in test corrupts the evaluation too)."""
    order = list(splits)
    vectors = np.concatenate([splits[s]["pooled"] for s in order])
    labels = np.concatenate([splits[s]["labels"] for s in order])
    where = [(s, i) for s in order for i in range(len(splits[s]["labels"]))]
    if len(np.unique(labels)) < 2 or np.bincount(labels).min() < 2:
        return []
    probabilities = label_issues.out_of_sample_probabilities(vectors, labels, config.folds)
    rows = []
    for rank, k in enumerate(label_issues.ranked_issues(labels, probabilities), start=1):
        split, i = where[k]
        suggested = int(probabilities[k].argmax())
        rows.append({"rank": rank, "split": split, "path": splits[split]["filename"][i],
                     "sha256": splits[split]["sha256"][i], "given_label": names[labels[k]],
                     "suggested_label": names[suggested],
                     "given_probability": round(float(probabilities[k, labels[k]]), 6),
                     "suggested_probability": round(float(probabilities[k, suggested]), 6)})
    return rows
