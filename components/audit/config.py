"""What the audit looks for and how strictly; validated once before anything is embedded."""

import dataclasses

from components.common.errors import UsageError

EMBED_WITH = ("trained", "backbone")
SEVERITIES = ("warning", "error")
NEAREST = ("auto", "exact", "approximate")


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """Audit settings (docs/trust.md, "Audit").

    enabled: run the audit (it embeds every image once with the trained model: seconds per
      thousand images at 96 px on a CPU); false publishes an empty audit saying so.
    label_issues: rank the label review queue by confident learning (cleanlab) on out-of-fold
      probabilities of a linear probe (`folds`-fold cross-validated logistic regression on the top
      principal components of the pooled embeddings; components/audit/label_issues.py).
    folds: cross-validation folds for those probabilities (at most 3 above 20,000 images).
    min_probe_accuracy: below this out-of-fold accuracy the probe cannot tell a wrong label from a
      hard image, so the queue is reported as the hardest images and no label error is claimed.
      Measured: 0.92-0.94 on the sign-language folder, where the queue holds 13 of 16 planted errors;
      0.53-0.60 on folders where the queue was 19-35% of the (clean) images.
    review_size: entries of the ranked label-issue queue shown in the report (all go to the CSV).
    leakage_similarity: a test (or val) image whose grid embedding (components/audit/embeddings.py)
      has cosine similarity >= this with a train image is a near-duplicate across splits: leakage that inflates test accuracy, which
      the ingest's exact-hash dedupe cannot see (a re-encoded, resized or re-saved copy).
    leakage_pixel_correlation: and whose 16x16 grey thumbnail correlates at least this much with
      that train image's (the confirmation that it is the same picture, not a similar one).
    leakage_severity: "warning" (default) reports near-copies; "error" stops the run (exit 3, like a
      data-validation error) when test images have near-copies in train: a setting for release
      pipelines that must never publish an inflated test accuracy.
    batch_size: images per embedding batch.
    nearest: how each val/test image's nearest train image is found: "exact" (all pairs), "approximate"
      (a faiss inverted-file index), or "auto": exact up to `exact_pairs_limit` query-train pairs
      (about 50,000 images split 80/10/10), approximate above.
    exact_pairs_limit: see `nearest`.
    embed_with: what embeds the images: "trained" (the fine-tuned model) or "backbone" (the pretrained
      backbone it started from, weights given as a file): the same vectors every night, so each
      image is embedded once and kept across runs (components/audit/embeddings.py).
    """

    enabled: bool = True
    label_issues: bool = True
    folds: int = 5
    review_size: int = 24
    leakage_similarity: float = 0.97
    leakage_pixel_correlation: float = 0.98
    leakage_severity: str = "warning"
    batch_size: int = 256
    min_probe_accuracy: float = 0.85
    nearest: str = "auto"
    exact_pairs_limit: int = 500_000_000
    embed_with: str = "trained"

    def validate(self) -> None:
        if self.folds < 2:
            raise UsageError(f"audit.folds: {self.folds} must be >= 2")
        if self.review_size < 0:
            raise UsageError(f"audit.review_size: {self.review_size} must be >= 0")
        if not 0 < self.leakage_similarity <= 1:
            raise UsageError(f"audit.leakage_similarity: {self.leakage_similarity} must be in (0, 1]")
        if not -1 <= self.leakage_pixel_correlation <= 1:
            raise UsageError(f"audit.leakage_pixel_correlation: {self.leakage_pixel_correlation} must be in [-1, 1]")
        if self.leakage_severity not in SEVERITIES:
            raise UsageError(f"audit.leakage_severity: {self.leakage_severity!r}; allowed: {list(SEVERITIES)}")
        if not 0 <= self.min_probe_accuracy <= 1:
            raise UsageError(f"audit.min_probe_accuracy: {self.min_probe_accuracy} must be in [0, 1]")
        if self.nearest not in NEAREST:
            raise UsageError(f"audit.nearest: {self.nearest!r}; allowed: {list(NEAREST)}")
        if self.exact_pairs_limit < 0:
            raise UsageError(f"audit.exact_pairs_limit: {self.exact_pairs_limit} must be >= 0")
        if self.embed_with not in EMBED_WITH:
            raise UsageError(f"audit.embed_with: {self.embed_with!r}; allowed: {list(EMBED_WITH)}")
        if self.batch_size < 1:
            raise UsageError(f"audit.batch_size: {self.batch_size} must be >= 1")
