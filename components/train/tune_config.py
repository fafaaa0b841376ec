"""The tuner's configuration: how long to search, and over which recipe values (`components/train/tune.py`).

Kept light (no TensorFlow) like every config module: `pipeline.config` builds it from YAML and
flags, and its `validate()` runs before anything starts.
"""

import dataclasses

from components.common.errors import UsageError

# How each search-space field is sampled: ranges are (low, high), choices are the listed values.
RANGES = ("learning_rate_factor", "head_epochs", "dropout", "label_smoothing")
CHOICES = ("finetune_from", "randaugment_ops", "mixup", "cutmix")


@dataclasses.dataclass(frozen=True)
class TuneSpace:
    """The recipe values searched; an empty tuple leaves that value as the train config has it.

    Ranges, (low, high):
    learning_rate_factor: each stage's learning rate times a factor drawn on a log scale, one
      factor per stage (so the head and the fine-tune rates move independently).
    head_epochs: the epochs of each stage that freezes the backbone (an integer range).
    dropout: the head's dropout rate.
    label_smoothing: the loss's label smoothing.
    Choices, the values tried:
    finetune_from: where a fine-tune stage that unfreezes a block starts: block names, or "auto"
      for the configured block and the block boundaries at a quarter, half and three quarters of
      the backbone.
    randaugment_ops: RandAugment operations per batch (0: off).
    mixup: MixUp's Beta alpha (0: off).
    cutmix: CutMix's Beta alpha (0: off).
    """

    learning_rate_factor: tuple = (0.3, 3.0)
    head_epochs: tuple = (5, 30)
    dropout: tuple = (0.0, 0.5)
    label_smoothing: tuple = (0.0, 0.2)
    finetune_from: tuple = ("auto",)
    randaugment_ops: tuple = (0, 2)
    mixup: tuple = (0.0, 0.2)
    cutmix: tuple = (0.0, 1.0)

    def searched(self) -> dict:
        """{field: values} of the fields searched (empty tuples left out)."""
        return {f.name: tuple(getattr(self, f.name)) for f in dataclasses.fields(self) if getattr(self, f.name)}

    def validate(self, where: str = "tune.space") -> None:
        for name in RANGES:
            value = tuple(getattr(self, name))
            if value and (len(value) != 2 or not all(isinstance(v, (int, float)) for v in value)):
                raise UsageError(f"{where}.{name}={list(value)}: a range is [low, high] (or [] to leave it alone)")
            if value and not value[0] <= value[1]:
                raise UsageError(f"{where}.{name}={list(value)}: needs low <= high")
        limits = {
            "learning_rate_factor": (1e-3, 1e3),
            "head_epochs": (1, 1000),
            "dropout": (0.0, 0.9),
            "label_smoothing": (0.0, 0.5),
        }
        for name, (lo, hi) in limits.items():
            value = tuple(getattr(self, name))
            if value and not (lo <= value[0] and value[1] <= hi):
                raise UsageError(f"{where}.{name}={list(value)}: must lie within [{lo}, {hi}]")
        if self.head_epochs and not all(isinstance(v, int) for v in self.head_epochs):
            raise UsageError(f"{where}.head_epochs={list(self.head_epochs)}: whole numbers of epochs")
        if not all(isinstance(v, str) and v for v in self.finetune_from):
            raise UsageError(f"{where}.finetune_from={list(self.finetune_from)}: block names (or 'auto')")
        if not all(isinstance(v, int) and 0 <= v <= 4 for v in self.randaugment_ops):
            raise UsageError(f"{where}.randaugment_ops={list(self.randaugment_ops)}: integers from 0 (off) to 4")
        for name in ("mixup", "cutmix"):
            if not all(isinstance(v, (int, float)) and 0 <= v <= 10 for v in getattr(self, name)):
                raise UsageError(f"{where}.{name}={list(getattr(self, name))}: Beta alphas from 0 (off) to 10")


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """The search: off unless enabled; bounded by time and by trials, whichever comes first.

    enabled: search the train recipe before training (the train step then uses the best one found).
    budget_seconds: wall-clock seconds the whole search may take, the trial running when it runs
      out included (it is stopped and counted with what it reached).
    max_trials: the most trials run (the first is always the train config's own recipe).
    seed: the sampler's seed (the trials' training uses the train config's seed).
    space: the values searched (`TuneSpace`).
    """

    enabled: bool = False
    budget_seconds: float = 1800.0
    max_trials: int = 20
    seed: int = 0
    space: TuneSpace = TuneSpace()

    def validate(self) -> None:
        if not isinstance(self.budget_seconds, (int, float)) or not 10 <= self.budget_seconds <= 7 * 24 * 3600:
            raise UsageError(f"tune.budget_seconds={self.budget_seconds!r}: from 10 seconds to a week")
        if (
            isinstance(self.max_trials, bool)
            or not isinstance(self.max_trials, int)
            or not 1 <= self.max_trials <= 10000
        ):
            raise UsageError(f"tune.max_trials={self.max_trials!r}: a whole number from 1 to 10000")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"tune.seed={self.seed!r}: a whole number")
        self.space.validate()
