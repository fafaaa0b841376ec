"""The train component's entry: ingest artifact in, published train artifact out.

`run(config, ingest_dir, output_dir, work_dir=None, callbacks=())`:

inputs   ingest_dir (schemas/ARTIFACTS.md "ingest"): splits train, val (and test when
         `config.evaluate_test`), labels.txt, manifest.csv.
outputs  output_dir (ARTIFACTS.md "train"), published atomically with `publish_dir`:
         model.keras, model_info.json, labels.txt, history.json, training_log.csv, curves.png,
         tensorboard/.
state    work_dir: everything needed to resume after a kill (per-stage `BackupAndRestore`, the
         weights after each finished stage, epoch records, logs); removed after publishing.
         None: a temporary directory (no resume across processes).

Stages run in order; a finished stage is never rerun (its weights are reloaded from work_dir),
and an interrupted one resumes from its last finished epoch. After each stage the full model is
evaluated on the validation split in inference mode, and the model published is the one after
the stage with the best validation accuracy (so a fine-tune that hurts is not kept: it is
reported in `history.json`). Work state written for a different config or ingest is discarded.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from components.common import confidence
from components.common.errors import DataError, UsageError
from components.common.image_results import ImageResults
from components.common.outcome import Outcome
from components.common.publish import copy_tree, publish_dir, read_json, write_json, write_text_atomic
from components.common.ranking import stratified_subset
from components.common.trained_model import HEAD_POOL
from components.train import batch_augment, batchnorm, distill, exclude, feature_cache, precision, stages, warm_start
from components.train.backbones import build_backbone
from components.train.callbacks import load_epochs, stage_callbacks
from components.train.config import AugmentConfig, TrainConfig, devices_list
from components.train.devices import Placement
from components.train.input import make_dataset
from components.train.model import Head, assemble, build_head, head_model
from components.train.plots import plot_curves
from schemas.artifacts import Examples, Model, file_sha256, labels_text


@dataclasses.dataclass
class StageResult:
    name: str
    epochs_run: int
    val_accuracy: float  # full model, inference mode, after the stage (after BN recalibration)
    seconds: float
    cached_features: bool
    trainable_backbone_layers: int
    bn_recalibrated_batches: int = 0
    feature_extraction_seconds: float = 0.0  # the one backbone pass of a cached-features stage
    features_reused: int = 0  # images whose features an earlier run computed (feature_cache.extract_kept)


@dataclasses.dataclass
class TrainResult(Outcome):
    output_dir: str
    stages: list
    kept_stage: str
    best_val_accuracy: float
    test_accuracy: Optional[float]
    seconds: float
    precision: str
    strategy: str
    class_weights: Optional[dict]
    precision_decision: Optional[dict] = None  # how "auto" chose on a CPU (precision.decide)
    excluded: int = 0  # train images `config.exclude` left out
    replicas: int = 1  # devices the strategy trained on in sync
    warm_start: Optional[dict] = None  # warm_start.Decision.record() plus the classes kept/added/removed
    trust_warnings: list = dataclasses.field(default_factory=list)  # what too few val images could not decide

    def summary(self) -> str:
        lines = [
            f"train: {self.output_dir} ({self.seconds:.0f} s, {self.precision}, {self.strategy} strategy"
            + (f" over {self.replicas} devices)" if self.replicas > 1 else ")")
        ]
        if self.warm_start is not None:
            lines.append(
                f"  {'warm start from ' + self.warm_start['source'] if self.warm_start['source'] else 'full recipe'}: {self.warm_start['reason']}"
            )
        for s in self.stages:
            lines.append(
                f"  stage {s.name}: {s.epochs_run} epochs, val accuracy {s.val_accuracy:.3f}, "
                f"{s.seconds:.0f} s{_cached_note(s)}"
            )
        lines.append(
            f"  kept the model after stage {self.kept_stage!r}: val accuracy {self.best_val_accuracy:.3f}"
            + (
                f", test accuracy {self.test_accuracy:.3f} (the Keras model, one plain pass; the gate scores "
                "the exported model)"
                if self.test_accuracy is not None
                else ""
            )
        )
        return "\n".join(lines)


def _cached_note(s: StageResult) -> str:
    if not s.cached_features:
        return ""
    return (
        f" (cached features, {s.features_reused} reused from earlier runs)"
        if s.features_reused
        else " (cached features)"
    )


def _train_subset(config: TrainConfig, examples: Examples):
    """(the sha256 of the train images used, or None for the whole split; how many `exclude` removed).

    `train_fraction` chooses first, then `exclude` removes: the images a fraction keeps do not
    depend on what was excluded."""
    if config.train_fraction >= 1.0 and not config.exclude:
        return None, 0
    rows = examples.manifest()
    keep = (
        stratified_subset(rows, config.train_fraction, "train", config.seed)
        if config.train_fraction < 1.0
        else frozenset(row["sha256"] for row in rows if row["split"] == "train")
    )
    if not config.exclude:
        return keep, 0
    kept = keep - exclude.read(config.exclude)
    return kept, len(keep) - len(kept)


def _check_data(config: TrainConfig, ingest_dir: str, labels: list, keep) -> dict:
    """Counts per split and class (train: those kept); DataError for an empty split or a class with no training data."""
    examples = Examples(ingest_dir)
    counts = {split: examples.class_counts(split, keep if split == "train" else None) for split in Examples.SPLITS}
    needed = ("train", "val", "test") if config.evaluate_test else ("train", "val")
    for split in needed:
        if sum(counts[split]) == 0:
            raise DataError(
                f"split {split!r} of {ingest_dir} has no examples: the trainer needs train and val "
                "(and test to evaluate); add images or change the ingest's split fractions"
            )
    missing = [labels[i] for i, n in enumerate(counts["train"]) if n == 0]
    if missing:
        raise DataError(
            f"classes {missing} are in {ingest_dir}/labels.txt but have no training examples: "
            "add images for them (or remove their folders) and ingest again"
        )
    return counts


def _check_warm_start_labels(weights: str, labels: list) -> None:
    """A model trained earlier whose classes are not all in the data cannot be warm-started silently."""
    if not weights.endswith(".keras"):
        return
    earlier = Model(os.path.dirname(weights))
    if not earlier.exists(Model.INFO):
        return
    model_labels = earlier.info().get("labels", [])
    missing = [name for name in model_labels if name not in labels]
    if missing:
        raise DataError(
            f"warm start from {weights}: its classes {missing} are missing from the data "
            f"(the data has {labels}); add images for them, or start from a backbone "
            "(--weights imagenet, a backbone file, or none)"
        )


def class_weights_for(config: TrainConfig, counts: Sequence[int]) -> Optional[dict]:
    """Inverse-frequency weights (mean 1) when classes are imbalanced and `class_weights="auto"`.

    None for a distilled student: Keras derives sample weights from the targets' argmax, which the
    teacher's columns would corrupt, and the teacher's probabilities carry its own balance.
    """
    if config.distill.enabled or config.class_weights == "none" or max(counts) <= config.imbalance_ratio * min(counts):
        return None
    total, k = sum(counts), len(counts)
    return {i: total / (k * n) for i, n in enumerate(counts)}


def _fingerprint(config: TrainConfig, ingest_dir: str, labels: list) -> str:
    payload = json.dumps(
        {"config": dataclasses.asdict(config), "ingest": os.path.abspath(ingest_dir), "labels": labels},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class _WorkState:
    """The work directory: which stages finished, with what result, and their weights."""

    def __init__(self, work_dir: str, fingerprint: str):
        self.dir = work_dir
        self.path = os.path.join(work_dir, "state.json")
        state = read_json(self.path) if tf.io.gfile.exists(self.path) else None
        if state is not None and state.get("fingerprint") != fingerprint:
            tf.io.gfile.rmtree(work_dir)  # written for another config or ingest: start over
            state = None
        tf.io.gfile.makedirs(work_dir)
        self.state = state or {"fingerprint": fingerprint, "finished": []}

    def finished(self) -> list:
        return [StageResult(**s) for s in self.state["finished"]]

    def weights_path(self, stage_name: str) -> str:
        return os.path.join(self.dir, f"after_{stage_name}.weights.h5")

    def finish(self, model: keras.Model, result: StageResult) -> None:
        model.save_weights(self.weights_path(result.name))
        self.state["finished"].append(dataclasses.asdict(result))
        write_json(self.path, self.state)


@dataclasses.dataclass
class _Training:
    """What every stage of one run shares: the data, the model's parts, the loss, the work state."""

    config: TrainConfig
    ingest_dir: str
    keep: Optional[frozenset]  # the train images `train_fraction` keeps (None: all)
    counts: dict
    model: keras.Model
    backbone: keras.Model
    preprocessing: Optional[keras.layers.Layer]
    head: Head
    loss: keras.losses.Loss
    work: _WorkState
    callbacks: Sequence[keras.callbacks.Callback]
    teacher: Optional[keras.Model] = None  # train.distill: its probabilities join the targets
    replicas: int = 1  # devices training in sync (MirroredStrategy)
    # Backbone features of the frozen, unaugmented head stage by split, kept across the tuner's trials
    # (every trial freezes the same backbone on the same images); None: extracted for this run only.
    features: Optional[dict] = None
    quiet: bool = False  # a tuner's trial: no per-stage and per-epoch lines (the tuner prints one per trial)
    cache_dir: Optional[str] = None  # per-image results kept across runs: the head stage's features

    @property
    def num_classes(self) -> int:
        return len(self.counts["train"])

    @property
    def val_too_small(self) -> str:
        """Why early stopping and the choice of the best stage do not use val accuracy ("" when they do)."""
        return confidence.too_few(
            sum(self.counts["val"]),
            "early stopping or a choice between stages",
            "every stage runs all its epochs and the last stage's model is kept",
        )

    def dataset(
        self, split: str, *, training: bool, augment: Optional[AugmentConfig] = None, seed: int = 0
    ) -> tf.data.Dataset:
        """`input.make_dataset` at the model's size, labels one-hot for the loss (label smoothing), when
        training with `augment` its batch-level augmentations (`batch_augment`), and when distilling the
        teacher's probabilities on the resulting batch (`distill.with_teacher`)."""
        size = (self.config.image_size, self.config.image_size)
        ds = make_dataset(
            self.ingest_dir,
            split,
            size,
            self.config.batch_size,
            training=training,
            augment=augment,
            seed=seed,
            keep=self.keep if split == "train" else None,
        )
        num_classes = self.num_classes

        def one_hot(images, labels):  # a named function: AutoGraph cannot read a lambda's source here
            return images, tf.one_hot(labels, num_classes)

        ds = ds.map(one_hot)
        if training and augment is not None:
            ds = batch_augment.apply(ds, augment, seed)
        return distill.with_teacher(ds, self.teacher) if self.teacher is not None else ds

    def accuracy(self) -> keras.metrics.Metric:
        return stages.LabelAccuracy(self.num_classes)

    def compile_for_evaluation(self) -> None:
        self.model.compile(loss=self.loss, metrics=[self.accuracy()])

    def evaluate(self, split: str) -> float:
        """Accuracy of the full model on `split`, in inference mode, through the serving preprocessing."""
        return float(self.model.evaluate(self.dataset(split, training=False), verbose=0, return_dict=True)["accuracy"])


def _extract_features(t: _Training) -> tuple:
    """{"train", "val": (features, targets)} of the frozen backbone, and how many images' features were
    reused: kept per image across runs when there is a cache folder and no teacher (a teacher's
    probabilities join the targets and need the pixels of every image)."""
    extractor = feature_cache.feature_extractor(t.model.input, t.model.get_layer(HEAD_POOL).output)
    if t.cache_dir is None or t.teacher is not None:
        train = feature_cache.extract(extractor, t.dataset("train", training=False))
        return {"train": train, "val": feature_cache.extract(extractor, t.dataset("val", training=False))}, 0
    kept = ImageResults(t.cache_dir, feature_cache.about(extractor, t.config.image_size))
    examples, memo, reused = Examples(t.ingest_dir), {}, 0
    for split in ("train", "val"):
        features, labels, split_reused = feature_cache.extract_kept(
            extractor,
            examples.shards(split),
            t.config.image_size,
            t.config.batch_size,
            t.keep if split == "train" else None,
            kept,
        )
        memo[split], reused = (features, np.eye(t.num_classes, dtype=np.float32)[labels]), reused + split_reused
    return memo, reused


def _fit_stage(t: _Training, i: int, stage, initial_epoch: int):
    """Train one stage; returns (epochs run, cached?, trainable backbone layers, feature extraction
    seconds, features reused).

    Leaves `t.model` compiled when it was the model fitted, so its traced evaluation step is reused.
    """
    config = t.config
    unfrozen = stages.set_trainable(t.model, t.backbone, stage, train_batchnorm=not config.pretrained)
    val = t.dataset("val", training=False)
    cached = config.cache_features and stage.freezes_backbone and not stage.augment and config.pretrained
    extraction_seconds, reused = 0.0, 0
    if cached:
        extraction_started = time.time()
        # Shared features hold only for a first stage: a later one sees a backbone an earlier stage changed.
        memo = t.features if t.features is not None and i == 0 else {}
        if not memo:
            extracted, reused = _extract_features(t)
            memo.update(extracted)
        (train_x, train_y), (val_x, val_y) = memo["train"], memo["val"]
        train = feature_cache.as_dataset(train_x, train_y, config.batch_size, shuffle=True, seed=config.seed + i)
        val = feature_cache.as_dataset(val_x, val_y, config.batch_size, shuffle=False, seed=0)
        fit_model = head_model(t.head, train_x.shape[-1])
        extraction_seconds = time.time() - extraction_started
    else:
        train = t.dataset(
            "train",
            training=True,
            augment=config.augment if stage.augment else AugmentConfig.off(),
            seed=config.seed + i,
        )
        fit_model = t.model
    steps = config.steps_per_epoch(sum(t.counts["train"]))
    # On cached features a step is a tiny matrix product: run a whole epoch per call, not one
    # Python round trip per batch (Keras's `steps_per_execution`). Not under a multi-device strategy:
    # Keras 3.15's multi-step loop there fails ("You must feed a value for placeholder tensor
    # .../while/cond/Placeholder"; tests/test_train_devices.py).
    fit_model.compile(
        optimizer=stages.make_optimizer(config, stage, steps),
        loss=t.loss,
        metrics=[t.accuracy()],
        steps_per_execution=steps if cached and t.replicas == 1 else 1,
    )
    if not t.quiet:
        print(
            f"[train] stage {stage.name}: up to {stage.epochs} epochs of {steps} batches"
            f"{' on cached backbone features' if cached else ''}, {len(unfrozen)} backbone layers training",
            flush=True,
        )
    history = fit_model.fit(
        train,
        validation_data=val,
        initial_epoch=initial_epoch,
        epochs=initial_epoch + stage.epochs,
        class_weight=class_weights_for(config, t.counts["train"]),
        shuffle=False,  # the datasets shuffle
        verbose=0 if t.quiet else 1 if sys.stdout.isatty() else 2,  # a bar on a terminal, a line per epoch in a log
        callbacks=stage_callbacks(t.work.dir, stage, monitor_patience=0 if t.val_too_small else stage.patience)
        + list(t.callbacks),
    )
    if cached:  # the head model was fitted; the full model evaluates
        t.compile_for_evaluation()
    # After a resume `history` holds only the epochs run in this process; count the whole stage.
    epochs_run = history.epoch[-1] + 1 - initial_epoch if history.epoch else 0
    return epochs_run, cached, len(unfrozen), extraction_seconds, reused


def _recalibrate_batchnorm(t: _Training, i: int, stage) -> int:
    """Precise BN after a stage in which BatchNorm trained; returns the batches used (0: not needed)."""
    if t.config.pretrained or not t.config.bn_recalibration_batches:
        return 0
    # The input distribution the stage trained on: the weights were fitted to BatchNorm statistics
    # of augmented batches (measured: unaugmented statistics cost 8 points of val accuracy).
    images = t.dataset(
        "train",
        training=True,
        augment=t.config.augment if stage.augment else AugmentConfig.off(),
        seed=t.config.seed + 1000 + i,
    )
    return batchnorm.recalibrate(t.backbone, t.preprocessing, images, t.config.bn_recalibration_batches)


def _train_stages(t: _Training):
    """Run the stages not finished yet; load the best stage's weights; returns (results, kept, test accuracy)."""
    results = t.work.finished()
    if results:
        t.model.load_weights(t.work.weights_path(results[-1].name))
    for i, stage in enumerate(t.config.effective_stages()[len(results) :], start=len(results)):
        stage_started = time.time()
        epochs_run, cached, unfrozen, extraction_seconds, reused = _fit_stage(
            t, i, stage, sum(r.epochs_run for r in results)
        )
        recalibrated = _recalibrate_batchnorm(t, i, stage)
        result = StageResult(
            stage.name,
            epochs_run,
            t.evaluate("val"),
            time.time() - stage_started,
            cached,
            unfrozen,
            recalibrated,
            extraction_seconds,
            reused,
        )
        t.work.finish(t.model, result)
        results.append(result)

    # ties: the later stage; on too few val images, the last stage (its val accuracy is mostly noise)
    kept = results[-1] if t.val_too_small else max(reversed(results), key=lambda r: r.val_accuracy)
    t.model.load_weights(t.work.weights_path(kept.name))
    if not t.model.compiled:  # every stage had finished before this process started
        t.compile_for_evaluation()
    test_accuracy = t.evaluate("test") if t.config.evaluate_test else None
    return results, kept, test_accuracy


def _measured_cpu_precision(config: TrainConfig) -> dict:
    """`precision: auto` on a CPU: precision.decide for this backbone, width, size and batch."""
    alpha, size, batch = config.effective_alpha, config.image_size, config.batch_size
    return precision.decide(
        precision.cache_key(config.family.name, alpha, size, batch),
        precision.cpu_bf16_flags(),
        lambda: precision.measure_rates(config.family.name, alpha, size, batch),
    )


def _prepare(config: TrainConfig, ingest_dir: str):
    """Check the config and the data, choose the devices and precision: (labels, keep, excluded, counts,
    placement). Raises UsageError or DataError before anything trains."""
    config.validate()
    examples = Examples(ingest_dir)
    labels = examples.labels()
    keep, excluded = _train_subset(config, examples)
    counts = _check_data(config, ingest_dir, labels, keep)
    if excluded:
        print(f"[train] left {excluded} train images listed in {config.exclude} out of training", flush=True)
    if config.pretrained:
        _check_warm_start_labels(config.weights, labels)
    placement = Placement(
        config.precision, measure_cpu=lambda: _measured_cpu_precision(config), devices=devices_list(config.devices)
    )
    return labels, keep, excluded, counts, placement


def _build(
    config,
    ingest_dir,
    labels,
    keep,
    counts,
    work_dir,
    callbacks,
    replicas,
    features=None,
    quiet=False,
    warm_from=None,
    cache_dir=None,
) -> _Training:
    """The model (inside the placement's strategy scope), its loss and work state: one run's `_Training`.

    warm_from: a train output whose weights the model starts from (warm_start.load_into); the
    backbone is then built without weights of its own (nothing to download)."""
    keras.utils.set_random_seed(config.seed)  # after any measurement: the model starts the same either way
    weights = "none" if warm_from else config.weights
    preprocessing, backbone = build_backbone(config.backbone, config.image_size, weights, alpha=config.alpha)
    if not config.pretrained:
        batchnorm.set_momentum(backbone, config.bn_momentum)
    head = build_head(len(labels), config.dropout, seed=config.seed)
    model = assemble(preprocessing, backbone, head, config.image_size, backbone_trains_bn=not config.pretrained)
    if warm_from:
        warm_start.load_into(model, warm_from, labels)
    work = _WorkState(work_dir, _fingerprint(config, ingest_dir, labels))
    teacher = distill.load_teacher(config.distill.teacher, labels) if config.distill.enabled else None
    loss = stages.make_loss(config, len(labels))
    return _Training(
        config,
        ingest_dir,
        keep,
        counts,
        model,
        backbone,
        preprocessing,
        head,
        loss,
        work,
        callbacks,
        teacher,
        replicas,
        features,
        quiet,
        cache_dir,
    )


@contextlib.contextmanager
def candidates(config: TrainConfig, ingest_dir: str):
    """Train variants of `config` on the same data without publishing them (the tuner's trials).

    Yields `fit(candidate, work_dir, callbacks=()) -> [StageResult]`: `candidate` is `config` with
    recipe values changed (stages, dropout, label smoothing, augmentations; not the backbone, its
    weights, the image size or the data), trained with resume state in `work_dir` (a killed trial
    resumes there). The data is checked and the precision chosen once; the frozen head stage's
    backbone features are extracted once and shared. The test split is never read.
    """
    config = dataclasses.replace(config, evaluate_test=False)
    labels, keep, _excluded, counts, placement = _prepare(config, ingest_dir)
    features = {}

    def fit(candidate: TrainConfig, work_dir: str, callbacks: Sequence[keras.callbacks.Callback] = ()) -> list:
        candidate = dataclasses.replace(candidate, evaluate_test=False)
        candidate.validate()
        t = _build(
            candidate, ingest_dir, labels, keep, counts, work_dir, callbacks, placement.replicas, features, quiet=True
        )
        results, _kept, _test = _train_stages(t)
        return results

    with placement, placement.strategy.scope():
        yield fit


def run(
    config: TrainConfig,
    ingest_dir: str,
    output_dir: str,
    work_dir: Optional[str] = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    warm_start_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
) -> TrainResult:
    """Train `config`'s stages on `ingest_dir` and publish the train artifact at `output_dir`.

    callbacks: extra Keras callbacks added to every stage (progress reporting, tests).
    warm_start_dir: the model in production's train output, which `train.warm_start: auto` may start
        from (the pipeline's driver finds it); a path in `train.warm_start` is used when this is None.
    cache_dir: where the frozen head stage's backbone features are kept per image across runs
        (components/common/image_results.py); None: extracted for this run only.
    Raises UsageError (bad config, backbone, weights; output_dir exists) or DataError (empty
    split, class without training data, warm start with classes the data lacks) before training.
    """
    config.validate()
    started = time.time()
    if tf.io.gfile.exists(output_dir):
        raise UsageError(
            f"{output_dir} already exists: the trainer publishes a new directory; choose another "
            "output path or remove it"
        )
    labels, keep, excluded, counts, placement = _prepare(config, ingest_dir)
    train_images = _train_images(ingest_dir, keep)
    decision = warm_start.decide(config, warm_start_dir or warm_start.resolve_source(config), labels, train_images)
    print(
        f"[train] {'warm start from ' + decision.source if decision.source else 'full recipe'}: {decision.reason}",
        flush=True,
    )
    if decision.source:
        config = dataclasses.replace(config, stages=config.effective_warm_start_stages())
    with placement, placement.strategy.scope():
        temporary_work = work_dir is None
        work_dir = tempfile.mkdtemp(prefix="train-work-") if temporary_work else work_dir
        try:
            training = _build(
                config,
                ingest_dir,
                labels,
                keep,
                counts,
                work_dir,
                callbacks,
                placement.replicas,
                warm_from=decision.source,
                cache_dir=cache_dir,
            )
            if training.val_too_small:
                print(f"[train] warning: {training.val_too_small}", flush=True)
            results, kept, test_accuracy = _train_stages(training)
            result = TrainResult(
                output_dir,
                results,
                kept.name,
                kept.val_accuracy,
                test_accuracy,
                time.time() - started,
                placement.precision,
                placement.strategy_name,
                class_weights_for(config, counts["train"]),
                placement.decision,
                excluded,
                placement.replicas,
                {**decision.record(), **_class_changes(decision.source, labels)},
                [training.val_too_small] if training.val_too_small else [],
            )
            _publish(training.model, config, labels, counts, work_dir, result, output_dir, train_images)
        finally:
            if temporary_work and tf.io.gfile.exists(work_dir):
                tf.io.gfile.rmtree(work_dir)
    if tf.io.gfile.exists(work_dir):
        tf.io.gfile.rmtree(work_dir)  # published: the resume state is no longer needed
    return result


def _train_images(ingest_dir: str, keep) -> frozenset:
    """ "sha256<TAB>label" of every image trained on: a relabelled image counts as a changed one."""
    return frozenset(
        f"{row['sha256']}\t{row['label_text']}"
        for row in Examples(ingest_dir).manifest()
        if row["split"] == "train" and (keep is None or row["sha256"] in keep)
    )


def _class_changes(source: Optional[str], labels: list) -> dict:
    """The classes a warm start kept, added and removed (empty lists for a full recipe)."""
    changes = warm_start.class_changes(Model(source).info()["labels"] if source else labels, labels)
    return {"classes_added": changes["added"], "classes_removed": changes["removed"]}


def _distillation_record(config: TrainConfig) -> Optional[dict]:
    """The teacher (path and content hash) and the loss settings, or None without distillation."""
    if not config.distill.enabled:
        return None
    path = distill.teacher_path(config.distill.teacher)
    return {
        "teacher": path,
        "teacher_sha256": file_sha256(path),
        "temperature": config.distill.temperature,
        "alpha": config.distill.alpha,
    }


def _dedupe_csv(text: str) -> str:
    """Keep the header and the last row of each epoch (an epoch rerun after a kill is logged twice)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    header, rows, by_epoch = lines[0], [], {}
    for line in lines[1:]:
        if line == header:
            continue
        by_epoch[line.split(",", 1)[0]] = line
    rows = sorted(by_epoch.values(), key=lambda line: int(line.split(",", 1)[0]))
    return "\n".join([header] + rows) + "\n"


def _publish(model, config, labels, counts, work_dir, result: TrainResult, output_dir, train_images) -> None:
    epochs = load_epochs(os.path.join(work_dir, "epochs.json"))
    with publish_dir(output_dir) as tmp:
        out = Model(tmp)
        model.save(out.path(Model.MODEL))
        write_text_atomic(out.path(Model.LABELS), labels_text(labels))
        write_text_atomic(out.path(Model.TRAIN_IMAGES), warm_start.train_images_text(train_images))
        write_json(
            out.path(Model.INFO),
            {
                "image_size": [config.image_size, config.image_size],
                "backbone": config.backbone,
                "alpha": config.effective_alpha,
                "weights": config.weights,
                "labels": labels,
                "num_classes": len(labels),
                "input": {"name": "image", "dtype": "float32", "range": [0, 255], "channels": "RGB"},
                "output": {"name": "probabilities", "dtype": "float32", "kind": "softmax"},
                "precision": result.precision,
                "precision_decision": result.precision_decision,
                "strategy": {
                    "name": result.strategy,
                    "replicas": result.replicas,
                    "global_batch": config.batch_size,
                    "per_replica_batch": config.batch_size // result.replicas,
                },
                "kept_stage": result.kept_stage,
                "val_accuracy": result.best_val_accuracy,
                "test_accuracy": result.test_accuracy,
                "examples_per_split": {split: sum(c) for split, c in counts.items()},
                "excluded_train_examples": result.excluded,
                "distillation": _distillation_record(config),
                "warm_start": result.warm_start,
                "trust_warnings": result.trust_warnings,
                "keras_version": keras.__version__,
                "tensorflow_version": tf.__version__,
            },
        )
        write_json(
            out.path(Model.HISTORY),
            {
                "epochs": epochs,
                "stages": [dataclasses.asdict(s) for s in result.stages],
                "kept_stage": result.kept_stage,
                "test_accuracy": result.test_accuracy,
                "class_weights": {labels[i]: w for i, w in (result.class_weights or {}).items()},
                "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
            },
        )
        log = os.path.join(work_dir, Model.TRAINING_LOG)
        if tf.io.gfile.exists(log):
            with tf.io.gfile.GFile(log) as f:
                write_text_atomic(out.path(Model.TRAINING_LOG), _dedupe_csv(f.read()))
        tensorboard = os.path.join(work_dir, "tensorboard")
        if tf.io.gfile.exists(tensorboard):
            copy_tree(tensorboard, out.path(Model.TENSORBOARD))
        plot_curves(epochs, out.path(Model.CURVES))
