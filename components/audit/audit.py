"""The audit step: a review queue of likely label errors and the near-duplicates across splits.

Inputs: the ingest (every split's records) and the trained model (train_dir: what the images are
embedded with, components/audit/embeddings.py). Outputs (schemas/ARTIFACTS.md, "audit"):
audit.json (summary, config, skipped reason, `label_review`: the probe's out-of-fold accuracy,
the estimated number of label errors, what is claimed), label_issues.csv (the ranked review
queue: rank, split, path, sha256, given and suggested label, probability of each),
near_duplicates.csv (split, path, train path, similarity, same label?).

Cost: one embedding pass over every image (linear), a linear probe on 128 principal components
(linear), and the nearest train image of each val/test image (exact up to `exact_pairs_limit`
pairs, then an approximate index: O(n sqrt n)). Memory: per image a few kilobytes of embeddings.

The result is not ok when test images have near-copies in train and `leakage_severity` is
"error": the pipeline then stops with exit 3 before training, as for a data-validation error.
"""

import csv
import dataclasses
import io
import time

import numpy as np

from components.audit import embeddings, label_issues, leakage
from components.audit.config import AuditConfig
from components.common.errors import DataError
from components.common.image_results import ImageResults
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
    probe_accuracy: float | None = None  # the label probe's out-of-fold accuracy
    estimated_errors: int | None = None  # label errors the data is estimated to hold
    claims_errors: bool = False  # the probe is strong enough to call the queue likely label errors

    @property
    def ok(self) -> bool:
        return not (self.leakage_severity == "error" and self.near_duplicates.get("test"))

    def summary(self) -> str:
        if self.skipped:
            return f"audit skipped: {self.skipped}"
        leaks = ", ".join(f"{n} {split} image(s)" for split, n in self.near_duplicates.items() if n) or "none"
        head = f"audit of {self.examples} images: {self.review()}; near-copies of train images: {leaks}"
        if not self.ok:
            head += (
                f"\n  error: test images have near-copies in train (cosine >= the audit's leakage_similarity): "
                f"the test accuracy would be inflated. Remove the copies (see {Audit.NEAR_DUPLICATES}) or set "
                "audit.leakage_severity: warning"
            )
        return head

    def review(self) -> str:
        """What the label review queue is, in words that claim no more than the probe supports."""
        if self.probe_accuracy is None:
            return "no label review"
        if not self.claims_errors:
            return (
                f"label probe too weak to tell wrong labels from hard images (out-of-fold accuracy "
                f"{self.probe_accuracy:.2f}), so no label error is claimed; {Audit.LABEL_ISSUES} lists the "
                f"{self.label_issues} hardest images"
            )
        return (
            f"an estimated {self.estimated_errors} label error(s) in the data; review queue of {self.label_issues} "
            f"image(s) in {Audit.LABEL_ISSUES}, of which about {min(self.estimated_errors, self.label_issues)} "
            f"are expected to be wrong labels (probe out-of-fold accuracy {self.probe_accuracy:.2f})"
        )


def _csv(rows: list, header: list) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def run(
    config: AuditConfig, train_dir: str, ingest_dir: str, output_dir: str, cache_dir: str | None = None
) -> AuditResult:
    """Audit `ingest_dir`'s images with the model in `train_dir`; publish to `output_dir` (must not exist).

    cache_dir: where embeddings are kept per image and embedder across runs (components/common/
    image_results.py); None keeps none."""
    config.validate()
    start = time.time()
    examples = Examples(ingest_dir)
    names = examples.labels()
    skipped = "" if config.enabled else "audit.enabled is false"
    issues, duplicates, counts, total, probe, embedded = [], [], {}, 0, None, None
    if not skipped:
        embed, image_size, about, note = embeddings.embedder(train_dir, config.embed_with)
        if note:
            print(f"[audit] {note}", flush=True)
        # Only the frozen backbone's embeddings recur: a trained model's are new every night, and keeping
        # them would write kilobytes per image to the cache for nothing.
        keeps = cache_dir and config.embed_with == "backbone" and not note
        kept = ImageResults(cache_dir, {"audit_embeddings": about}) if keeps else None
        splits = {}
        for split in Examples.SPLITS:
            try:
                splits[split] = embeddings.embed_split(examples, split, embed, image_size, config.batch_size, kept)
            except DataError:  # a split this ingest does not have
                continue
        embedded = {"with": about, "note": note or None, "reused": sum(d.pop("reused") for d in splits.values())}
        if "train" not in splits:
            raise DataError(f"{ingest_dir} has no train split to audit")
        total = sum(len(data["labels"]) for data in splits.values())
        for key in ("grid", "pooled"):  # centred on the mean over every image, then unit length
            mean = sum(data[key].sum(axis=0, dtype=np.float64) for data in splits.values()) / total
            for data in splits.values():
                embeddings.centered_unit(data[key], mean.astype(np.float32))
        if config.label_issues:
            issues, probe = _label_issues(splits, names, config)
        for data in splits.values():
            del data["pooled"]  # the probe's input; what follows needs only the grid and thumbnails
        duplicates, counts = _near_duplicates(splits, config)
    claims = probe is not None and probe.accuracy >= config.min_probe_accuracy
    result = AuditResult(
        output_dir,
        skipped,
        len(issues),
        total,
        counts,
        config.leakage_severity,
        round(time.time() - start, 2),
        probe and round(probe.accuracy, 4),
        probe and probe.estimated_errors,
        claims,
    )
    with publish_dir(output_dir) as tmp:
        out = Audit(tmp)
        write_text_atomic(
            out.path(Audit.LABEL_ISSUES),
            _csv(
                issues,
                [
                    "rank",
                    "split",
                    "path",
                    "sha256",
                    "given_label",
                    "suggested_label",
                    "given_probability",
                    "suggested_probability",
                ],
            ),
        )
        write_text_atomic(
            out.path(Audit.NEAR_DUPLICATES),
            _csv(
                duplicates,
                [
                    "split",
                    "path",
                    "sha256",
                    "train_path",
                    "train_sha256",
                    "similarity",
                    "pixel_correlation",
                    "same_label",
                ],
            ),
        )
        write_json(
            out.path(Audit.SUMMARY),
            {
                "skipped": skipped or None,
                "ok": result.ok,
                "examples": total,
                "label_issues": len(issues),
                "label_review": probe
                and {
                    "queue": len(issues),
                    "queue_kind": "likely_label_errors" if claims else "hardest_images",
                    "probe_out_of_fold_accuracy": result.probe_accuracy,
                    "probe_folds": probe.folds,
                    "estimated_label_errors": probe.estimated_errors,
                    "claimed_label_errors": probe.estimated_errors if claims else 0,
                    "expected_label_errors_in_queue": min(probe.estimated_errors, len(issues)) if claims else None,
                    "summary": result.review(),
                },
                "near_duplicates": counts,
                "config": dataclasses.asdict(config),
                "embedded_with": train_dir,
                "embeddings": embedded,
                "seconds": result.seconds,
            },
        )
    return result


def _near_duplicates(splits: dict, config: AuditConfig) -> tuple:
    """(rows, {split: count}): each val/test image whose nearest train image by grid cosine is at least
    `leakage_similarity` close, confirmed by a thumbnail correlation of at least `leakage_pixel_correlation`."""
    rows, counts = [], {}
    train = splits["train"]
    for split, data in splits.items():
        if split == "train":
            continue
        index, similarity = leakage.search(data["grid"], train["grid"], config.nearest, config.exact_pairs_limit)
        correlation = np.einsum("ij,ij->i", data["thumbnail"], train["thumbnail"][index])
        close = np.nonzero(
            (similarity >= config.leakage_similarity) & (correlation >= config.leakage_pixel_correlation)
        )[0]
        counts[split] = int(len(close))
        for i in close[np.argsort(-similarity[close], kind="stable")]:
            j = int(index[i])
            rows.append(
                {
                    "split": split,
                    "path": data["filename"][i],
                    "sha256": data["sha256"][i],
                    "train_path": train["filename"][j],
                    "train_sha256": train["sha256"][j],
                    "similarity": round(float(similarity[i]), 6),
                    "pixel_correlation": round(float(correlation[i]), 6),
                    "same_label": bool(data["labels"][i] == train["labels"][j]),
                }
            )
    return rows, counts


def _label_issues(splits: dict, names: list, config: AuditConfig) -> tuple:
    """(the ranked queue over every split's images, the probe or None): a wrong label in test corrupts the
    evaluation too."""
    order = list(splits)
    vectors = np.concatenate([splits[s]["pooled"] for s in order])
    labels = np.concatenate([splits[s]["labels"] for s in order])
    where = [(s, i) for s in order for i in range(len(splits[s]["labels"]))]
    if len(np.unique(labels)) < 2 or np.bincount(labels).min() < 2:
        return [], None
    probe = label_issues.probe(vectors, labels, config.folds)
    probabilities = probe.probabilities
    rows = []
    for rank, k in enumerate(label_issues.ranked_issues(labels, probabilities), start=1):
        split, i = where[k]
        suggested = int(probabilities[k].argmax())
        rows.append(
            {
                "rank": rank,
                "split": split,
                "path": splits[split]["filename"][i],
                "sha256": splits[split]["sha256"][i],
                "given_label": names[labels[k]],
                "suggested_label": names[suggested],
                "given_probability": round(float(probabilities[k, labels[k]]), 6),
                "suggested_probability": round(float(probabilities[k, suggested]), 6),
            }
        )
    return rows, probe
