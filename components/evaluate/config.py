"""What the evaluation gate may be told; validated once before anything is evaluated."""

import dataclasses

from components.common.errors import UsageError


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Gate thresholds and evaluation settings.

    min_accuracy: value threshold on overall accuracy (test split).
    min_class_recall: optional value threshold on every class's recall (None: not checked).
    min_macro_f1: optional value threshold on macro-averaged F1 (None: not checked).
    max_accuracy_drop_vs_baseline: change threshold: the candidate may be at most this much less
      accurate than the baseline (the model now in serving) on the same split; 0.0 = no worse
      (TFX's usual "absolute -1e-10" change threshold). Never finer than one test image (1/n).
    max_format_accuracy_drop: each exported format other than the SavedModel (the TFLite variants,
      ONNX: components/common/formats/) may lose at most this much accuracy against the float
      SavedModel (0.01 = one point); never finer than one test image either.
    comparison: how those two drops are judged (components/evaluate/gate.py). "paired_test": a
      drop beyond the tolerance fails only when McNemar's exact test on the same images finds the
      model significantly worse at `significance`; "absolute": any drop beyond the tolerance fails.
    significance: the level of the paired test (one-sided).
    confidence_level: of the interval reported with every check (Wilson, bootstrap or Wald).
    min_coverage: optional: with an abstention threshold exported, the share of the split's images
      the model must still answer (not "unknown"); None: not checked.
    block_on_unloadable_baseline: a baseline that cannot be loaded (or has other labels) fails the
      gate; set False to judge the candidate on value thresholds alone in that case.
    skew_examples: how many of the split's original files (by their manifest paths, where still
      readable and unchanged) are also scored through the bytes-in signature, as users send them
      (components/evaluate/serving_skew.py); 0: not checked.
    max_serving_skew: the largest share of those whose answer may differ from their record's before the
      gate fails as training/serving skew.
    top_k: k of the top-k accuracy metric.
    split: the ingest split evaluated.
    batch_size: images per prediction batch.
    """

    min_accuracy: float = 0.5
    min_class_recall: float | None = None
    min_macro_f1: float | None = None
    max_accuracy_drop_vs_baseline: float = 0.0
    max_format_accuracy_drop: float = 0.01
    comparison: str = "paired_test"
    significance: float = 0.05
    confidence_level: float = 0.95
    min_coverage: float | None = None
    block_on_unloadable_baseline: bool = True
    skew_examples: int = 200
    max_serving_skew: float = 0.02
    top_k: int = 3
    split: str = "test"
    batch_size: int = 128

    def validate(self) -> None:
        for name in (
            "min_accuracy",
            "min_class_recall",
            "min_macro_f1",
            "max_accuracy_drop_vs_baseline",
            "max_format_accuracy_drop",
            "min_coverage",
            "max_serving_skew",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise UsageError(f"evaluate.{name}: {value} must be between 0 and 1")
        if self.comparison not in ("paired_test", "absolute"):
            raise UsageError(f"evaluate.comparison: {self.comparison!r}; allowed: 'paired_test' or 'absolute'")
        for name in ("significance", "confidence_level"):
            if not 0 < getattr(self, name) < 1:
                raise UsageError(f"evaluate.{name}: {getattr(self, name)} must be in (0, 1)")
        if self.top_k < 1:
            raise UsageError(f"evaluate.top_k: {self.top_k} must be >= 1")
        if isinstance(self.skew_examples, bool) or not isinstance(self.skew_examples, int) or self.skew_examples < 0:
            raise UsageError(f"evaluate.skew_examples: {self.skew_examples!r} must be an integer >= 0")
        if self.batch_size < 1:
            raise UsageError(f"evaluate.batch_size: {self.batch_size} must be >= 1")
        if not self.split:
            raise UsageError("evaluate.split: empty; name an ingested split, e.g. test")
