"""Search the train recipe on the train and validation splits, within a time budget.

`run(config: TuneConfig, train_config: TrainConfig, ingest_dir, output_dir, work_dir=None) -> TuneResult`

inputs   ingest_dir (schemas/ARTIFACTS.md "ingest"): the train and val splits only. The test split
         is never opened: it stays the unbiased estimate of whatever recipe is chosen.
outputs  output_dir, published atomically: best_recipe.yaml (the chosen values, the train config
         they give, the default recipe's and the best trial's validation accuracy, how much of
         the gain selection noise alone would give, the budget used) and trials.csv (every trial's
         values, validation accuracy, seconds and status).
state    work_dir: the study's journal and each trial's training state; a killed search resumes:
         the finished trials are kept, the interrupted one runs again, the budget counts on.

Optuna, not KerasTuner (TFX's Tuner): the search has to end at a wall-clock budget, which
Optuna's `optimize(timeout=...)` does between trials and a batch-level check here does inside
one; its median pruner stops a trial whose validation accuracy after an epoch is below the median
of earlier trials at that epoch; its journal file makes a search resumable; and its objective
is any function, here the trainer's own staged run (`trainer.candidates`), so a trial trains
exactly as the train step will. The first trial is always the train config's own recipe, so
the search can only report a gain over it, and the frozen head stage's backbone features are
extracted once for all trials.
"""

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from typing import Optional

import yaml

from components.common import fileio
from components.common.errors import UsageError
from components.common.outcome import Outcome
from components.common.publish import publish_dir
from components.train.config import StageConfig, TrainConfig
from components.train.tune_config import TuneConfig
from schemas.artifacts import Hyperparameters

BEST_RECIPE, TRIALS = Hyperparameters.BEST_RECIPE, Hyperparameters.TRIALS
JOURNAL = "study.journal"
STUDY = "recipe"  # the one study in a work dir


@dataclasses.dataclass(frozen=True)
class TuneResult(Outcome):
    output_dir: str
    tuned: bool
    trials: int = 0
    completed: int = 0
    best_trial: Optional[int] = None
    best_val_accuracy: Optional[float] = None
    default_val_accuracy: Optional[float] = None
    chosen: dict = dataclasses.field(default_factory=dict)
    used_seconds: float = 0.0
    budget_seconds: float = 0.0

    def summary(self) -> str:
        if not self.tuned:
            return "tuning off: the train config's recipe is used"
        if self.best_trial in (None, 0):
            return (
                f"{self.trials} trials in {self.used_seconds:.0f} s of {self.budget_seconds:.0f}: the train "
                f"config's own recipe stays best (val accuracy {_fmt(self.default_val_accuracy)})"
            )
        return (
            f"{self.trials} trials ({self.completed} complete) in {self.used_seconds:.0f} s of "
            f"{self.budget_seconds:.0f}: trial {self.best_trial} chosen, val accuracy "
            f"{_fmt(self.best_val_accuracy)} against {_fmt(self.default_val_accuracy)} for the default recipe"
        )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class _BudgetSpent(Exception):
    """Raised inside a trial's training when the search's deadline passes."""


def _is_block(unfreeze) -> bool:
    return isinstance(unfreeze, str) and unfreeze not in ("none", "all")


def _candidate_blocks(train_config: TrainConfig, listed: tuple) -> list:
    """The fine-tune start blocks tried: the listed ones, or for "auto" the configured block(s) and
    the block boundaries at 1/4, 1/2 and 3/4 of the backbone (its order, from the input)."""
    configured = [s.unfreeze for s in train_config.effective_stages() if _is_block(s.unfreeze)]
    if not configured or not listed:
        return []
    if "auto" not in listed:
        return list(dict.fromkeys([*configured, *listed]))
    from components.train.backbones import build_backbone
    from components.train.stages import block_names

    _, backbone = build_backbone(train_config.backbone, train_config.image_size, "none", alpha=train_config.alpha)
    blocks = [b for b in block_names(backbone) if b.startswith(("block", "conv", "stage", "expanded"))] or block_names(
        backbone
    )
    picked = [blocks[min(len(blocks) - 1, round(f * len(blocks)))] for f in (0.25, 0.5, 0.75)]
    return list(dict.fromkeys([*configured, *picked, *(b for b in listed if b != "auto")]))


class _Space:
    """The search space over one train config: suggests a candidate config per trial, and the
    parameter values that reproduce the train config itself (the first trial)."""

    def __init__(self, config: TuneConfig, train_config: TrainConfig, blocks: list):
        self.base = train_config
        self.searched = config.space.searched()
        self.blocks = blocks
        self.augments = any(s.augment for s in train_config.effective_stages())

    def defaults(self) -> dict:
        base, params = self.base, {}
        for stage in base.effective_stages():
            if "learning_rate_factor" in self.searched:
                params[f"learning_rate_factor.{stage.name}"] = 1.0
            if stage.freezes_backbone and "head_epochs" in self.searched:
                params[f"epochs.{stage.name}"] = stage.epochs
            if _is_block(stage.unfreeze) and self.blocks:
                params[f"finetune_from.{stage.name}"] = stage.unfreeze
        for name in ("dropout", "label_smoothing"):
            if name in self.searched:
                params[name] = getattr(base, name)
        if self.augments:
            for name in ("randaugment_ops", "mixup", "cutmix"):
                if name in self.searched:
                    params[name] = getattr(base.augment, name)
        return params

    def _range(self, name: str, default):
        lo, hi = self.searched[name]
        return min(lo, default), max(hi, default)  # the default recipe is always inside the space

    def _choices(self, name: str, default) -> list:
        return sorted(set(self.searched[name]) | {default})

    def suggest(self, trial) -> TrainConfig:
        base, stages = self.base, []
        for stage in base.effective_stages():
            changes = {}
            if "learning_rate_factor" in self.searched:
                lo, hi = self._range("learning_rate_factor", 1.0)
                factor = trial.suggest_float(f"learning_rate_factor.{stage.name}", lo, hi, log=True)
                changes["learning_rate"] = min(1.0, stage.learning_rate * factor)
            if stage.freezes_backbone and "head_epochs" in self.searched:
                lo, hi = self._range("head_epochs", stage.epochs)
                epochs = trial.suggest_int(f"epochs.{stage.name}", lo, hi)
                changes.update(epochs=epochs, warmup_epochs=min(stage.warmup_epochs, epochs - 1))
            if _is_block(stage.unfreeze) and self.blocks:
                changes["unfreeze"] = trial.suggest_categorical(f"finetune_from.{stage.name}", self.blocks)
            stages.append(dataclasses.replace(stage, **changes))
        changes = {"stages": tuple(stages)}
        for name in ("dropout", "label_smoothing"):
            if name in self.searched:
                changes[name] = trial.suggest_float(name, *self._range(name, getattr(base, name)))
        if self.augments:
            augment = {
                name: trial.suggest_categorical(name, self._choices(name, getattr(base.augment, name)))
                for name in ("randaugment_ops", "mixup", "cutmix")
                if name in self.searched
            }
            changes["augment"] = dataclasses.replace(base.augment, **augment)
        return dataclasses.replace(base, **changes)


def _recipe(config: TrainConfig) -> dict:
    """The train config values a tuner may change, as plain YAML data (the train step reads them)."""
    return {
        "stages": [dataclasses.asdict(s) for s in config.effective_stages()],
        "dropout": config.dropout,
        "label_smoothing": config.label_smoothing,
        "augment": {k: config.augment.__dict__[k] for k in ("randaugment_ops", "mixup", "cutmix")},
    }


def _fingerprint(config: TuneConfig, train_config: TrainConfig, ingest_dir: str) -> str:
    payload = {"tune": dataclasses.asdict(config), "train": dataclasses.asdict(train_config), "ingest": ingest_dir}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def selection_noise(best: float, completed: int, n_val: int) -> dict:
    """How much validation gain picking the best of `completed` trials gives when every recipe is equally
    good: each trial's accuracy on `n_val` images has a binomial standard error, and the best of k
    draws sits about Phi^-1((k - 0.375) / (k + 0.25)) standard errors (Blom) above their mean."""
    sigma = math.sqrt(max(best * (1 - best), 1e-12) / max(n_val, 1))
    expected_max = statistics.NormalDist().inv_cdf((completed - 0.375) / (completed + 0.25)) if completed > 1 else 0.0
    return {
        "val_images": n_val,
        "standard_error": round(sigma, 4),
        "expected_gain_from_noise": round(sigma * expected_max, 4),
    }


def _disabled(output_dir: str) -> TuneResult:
    with publish_dir(output_dir) as tmp:
        with fileio.GFile(os.path.join(tmp, BEST_RECIPE), "w") as f:
            yaml.safe_dump({"tuned": False, "train": {}}, f, sort_keys=False)
        with fileio.GFile(os.path.join(tmp, TRIALS), "w") as f:
            f.write("trial,status,val_accuracy,seconds\n")
    return TuneResult(output_dir, tuned=False)


def run(
    config: TuneConfig,
    train_config: TrainConfig,
    ingest_dir: str,
    output_dir: str,
    work_dir: Optional[str] = None,
) -> TuneResult:
    """Search `train_config`'s recipe within `config`'s budget and publish the best one at `output_dir`.

    Tuning off: publishes a recipe that changes nothing, at once (no TensorFlow is loaded).
    """
    config.validate()
    train_config.validate()
    if fileio.exists(output_dir):
        raise UsageError(f"{output_dir} already exists: the tuner publishes a new directory; choose another path")
    if not config.enabled:
        return _disabled(output_dir)
    temporary = work_dir is None
    work_dir = tempfile.mkdtemp(prefix="tune-work-") if temporary else work_dir
    try:
        result = _search(config, train_config, ingest_dir, output_dir, work_dir)
    except BaseException:
        if temporary:  # a work dir of the caller's is kept, so that the search resumes
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    fileio.rmtree(work_dir)  # published: the study is in trials.csv
    return result


def _read(path: str) -> str:
    with fileio.GFile(path) as f:
        return f.read()


def _study(config: TuneConfig, fingerprint: str, work_dir: str):
    """The study in `work_dir` (resumed when it was made for the same search; else started over), its
    interrupted trials failed and queued again."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marker = os.path.join(work_dir, "fingerprint")
    if fileio.exists(work_dir) and (not fileio.exists(marker) or _read(marker) != fingerprint):
        fileio.rmtree(work_dir)
    fileio.makedirs(work_dir)
    with fileio.GFile(marker, "w") as f:
        f.write(fingerprint)
    if fileio.local(work_dir):
        journal = os.path.join(work_dir, JOURNAL)
    else:  # Optuna's journal locks a local file: a killed search on a remote root starts its study over
        journal = os.path.join(tempfile.mkdtemp(prefix="tune-journal-"), JOURNAL)
        print(f"[tune] {work_dir} is not on the local disk: the study's journal is kept at {journal}", flush=True)
    storage = JournalStorage(JournalFileBackend(journal))
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    study_id = storage.get_study_id_from_name(STUDY)
    trials = study.get_trials(deepcopy=False)
    # A finished trial cannot be changed (Optuna refuses), so the retry, not the trial, records it.
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        interrupted = trial.state == TrialState.RUNNING or (
            trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted")
        )
        if interrupted and trial.number not in retried:
            if trial.state == TrialState.RUNNING:  # killed: its process is gone
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
            recipe = trial.user_attrs.get("recipe", "searched")
            study.enqueue_trial(trial.params, user_attrs={"recipe": recipe, "retry_of": trial.number})
            print(f"[tune] trial {trial.number} was interrupted: it runs again", flush=True)
    return study


def _search(config, train_config, ingest_dir, output_dir, work_dir) -> TuneResult:
    import keras
    import optuna
    from optuna.trial import TrialState

    from components.train import trainer
    from schemas.artifacts import Examples

    started = time.time()
    study = _study(config, _fingerprint(config, train_config, ingest_dir), work_dir)
    space = _Space(config, train_config, _candidate_blocks(train_config, config.space.finetune_from))
    earlier = study.get_trials(deepcopy=False)
    used_before = sum(t.user_attrs.get("seconds", 0.0) for t in earlier)
    deadline = started + max(0.0, config.budget_seconds - used_before)
    if not earlier:
        study.enqueue_trial(space.defaults(), user_attrs={"recipe": "default"})

    startup = {}  # stage index -> the longest wait seen from a stage's start to its first batch (tracing)

    class Monitor(keras.callbacks.Callback):
        """Reports each epoch's validation accuracy to the pruner, and stops the trial at the deadline:
        after any batch, and before a stage whose start (tracing the model, which no callback can
        interrupt) earlier trials measured to end past the deadline."""

        def __init__(self, trial):
            super().__init__()
            self.trial, self.step, self.stage, self.stage_started = trial, 0, -1, None

        def on_train_begin(self, logs=None):
            self.stage += 1
            self.stage_started = time.time()
            if self.stage_started + startup.get(self.stage, 0.0) > deadline:
                raise _BudgetSpent()

        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            if self.stage_started is not None:
                startup[self.stage] = max(startup.get(self.stage, 0.0), now - self.stage_started)
                self.stage_started = None
            if now > deadline:
                raise _BudgetSpent()

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_accuracy")
            if value is not None:
                self.trial.report(float(value), self.step)
                self.step += 1
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after {self.step} epochs")

    with trainer.candidates(train_config, ingest_dir) as fit:

        def objective(trial):
            candidate = space.suggest(trial)
            trial_started = time.time()
            try:
                # The trial's training state is keyed by its values: a trial run again after an
                # interruption resumes the training where the interrupted one stopped.
                key = hashlib.sha256(json.dumps(trial.params, sort_keys=True).encode()).hexdigest()[:16]
                results = fit(candidate, os.path.join(work_dir, f"trial-{key}"), [Monitor(trial)])
            except _BudgetSpent:
                trial.set_user_attr("stopped", "the budget ran out")
                raise optuna.TrialPruned("the budget ran out") from None
            except optuna.TrialPruned:
                raise
            except BaseException:
                trial.set_user_attr("interrupted", True)
                raise
            finally:
                trial.set_user_attr("seconds", round(time.time() - trial_started, 1))
            return max(r.val_accuracy for r in results)

        def report(study, trial):
            line = _trial_line(study, trial, config.max_trials)
            print(f"[tune] {line}", flush=True)

        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        remaining_trials = config.max_trials - sum(1 for t in earlier if t.state in finished)
        if remaining_trials > 0 and time.time() < deadline:
            study.optimize(
                objective,
                n_trials=remaining_trials,
                timeout=max(0.0, deadline - time.time()),
                callbacks=[report, lambda s, t: s.stop() if time.time() >= deadline else None],
            )
    used = used_before + (time.time() - started)
    n_val = sum(Examples(ingest_dir).class_counts("val"))
    return _publish(config, space, study, used, n_val, output_dir)


def _trial_line(study, trial, max_trials: int) -> str:
    from optuna.trial import TrialState

    value = trial.value if trial.state == TrialState.COMPLETE else _best_reported(trial)
    status = _status(trial)
    try:
        best = f"best {study.best_value:.3f} (trial {study.best_trial.number})"
    except ValueError:
        best = "no trial complete yet"
    finished = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    return (
        f"trial {trial.number}: {status}, val accuracy {_fmt(value)} in {trial.user_attrs.get('seconds', 0):.0f} s; "
        f"{best}; {finished} of at most {max_trials} trials run"
    )


def _best_reported(trial) -> Optional[float]:
    values = list(trial.intermediate_values.values())
    return max(values) if values else None


def _status(trial) -> str:
    from optuna.trial import TrialState

    if trial.state == TrialState.PRUNED:
        return "stopped: the budget ran out" if trial.user_attrs.get("stopped") else "pruned"
    if trial.state == TrialState.FAIL:
        return "interrupted" if trial.user_attrs.get("interrupted") else "failed"
    return trial.state.name.lower()


def _publish(config: TuneConfig, space: _Space, study, used: float, n_val: int, output_dir: str) -> TuneResult:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.RUNNING]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    default = next((t for t in complete if t.user_attrs.get("recipe") == "default"), None)
    best = max(complete, key=lambda t: (t.value, t.user_attrs.get("recipe") == "default"), default=None)
    chosen = dict(best.params) if best is not None else space.defaults()
    recipe = _recipe(space.suggest(_Fixed(chosen)))
    noise = selection_noise(best.value, len(complete), n_val) if best is not None else None
    document = {
        "tuned": True,
        "chosen": {"trial": best.number if best else None, "values": chosen},
        "train": recipe,
        "val_accuracy": {
            "best": best.value if best else None,
            "default_recipe": default.value if default else None,
            "top_trials": sorted((t.value for t in complete), reverse=True)[:3],
        },
        "selection_noise": noise,
        "budget_seconds": config.budget_seconds,
        "used_seconds": round(used, 1),
        "trials": len(trials),
        "completed": len(complete),
    }
    names = sorted({k for t in trials for k in t.params})
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["trial", "recipe", "status", "val_accuracy", "seconds", *names])
    for t in trials:
        value = t.value if t.state == TrialState.COMPLETE else _best_reported(t)
        writer.writerow(
            [
                t.number,
                t.user_attrs.get("recipe", "searched"),
                _status(t),
                "" if value is None else round(value, 4),
                t.user_attrs.get("seconds", ""),
                *(t.params.get(k, "") for k in names),
            ]
        )
    with publish_dir(output_dir) as tmp:
        with fileio.GFile(os.path.join(tmp, BEST_RECIPE), "w") as f:
            yaml.safe_dump(document, f, sort_keys=False)
        with fileio.GFile(os.path.join(tmp, TRIALS), "w") as f:
            f.write(table.getvalue())
    return TuneResult(
        output_dir,
        tuned=True,
        trials=len(trials),
        completed=len(complete),
        best_trial=best.number if best else None,
        best_val_accuracy=best.value if best else None,
        default_val_accuracy=default.value if default else None,
        chosen=chosen,
        used_seconds=round(used, 1),
        budget_seconds=config.budget_seconds,
    )


class _Fixed:
    """A stand-in trial that answers every suggestion from fixed values (the chosen recipe)."""

    def __init__(self, params: dict):
        self.params = params

    def suggest_float(self, name, *args, **kwargs):
        return self.params[name]

    suggest_int = suggest_categorical = suggest_float


def recipe_config(train_config: TrainConfig, recipe: dict) -> TrainConfig:
    """`train_config` with a best_recipe.yaml's `train` values applied (the train step's input)."""
    if not recipe:
        return train_config
    stages = tuple(StageConfig(**s) for s in recipe["stages"])
    augment = dataclasses.replace(train_config.augment, **recipe["augment"])
    return dataclasses.replace(
        train_config,
        stages=stages,
        dropout=recipe["dropout"],
        label_smoothing=recipe["label_smoothing"],
        augment=augment,
    )
