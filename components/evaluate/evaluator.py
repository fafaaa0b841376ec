"""The evaluate step: candidate, baseline and every exported format scored on one split; the gate decides."""

import dataclasses
import hashlib
import os
import time

import numpy as np

from components.common import confidence, fileio, formats
from components.common.errors import DataError
from components.common.formats.saved_model import SavedModelRunner
from components.common.image_ops import preprocess
from components.common.image_results import ImageResults
from components.common.outcome import Outcome
from components.common.publish import publish_dir, write_json, write_text_atomic
from components.evaluate import gate, serving_skew, tfma_metrics
from components.evaluate.config import EvaluateConfig
from schemas.artifacts import Examples, ExportedModel, ModelBlessing, file_sha256, model_labels, saved_model_in
from schemas.split_reader import read_split

BLESSED, NOT_BLESSED = ModelBlessing.BLESSED, ModelBlessing.NOT_BLESSED


@dataclasses.dataclass(frozen=True)
class EvaluateResult(Outcome):
    """The verdict and the numbers behind it (all also in `output_dir`)."""

    output_dir: str
    blessed: bool
    checks: list  # of gate.Check
    metrics: dict  # model -> slice -> metric -> value
    baseline_dir: str | None
    seconds: float
    scored: str = "the exported SavedModel"  # what `accuracy` is of (the trainer's test accuracy is the Keras model's)

    @property
    def ok(self) -> bool:
        return self.blessed

    @property
    def failed(self) -> list:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        accuracy = self.metrics["candidate"][tfma_metrics.OVERALL].get("accuracy")
        head = (
            f"{'BLESSED' if self.blessed else 'NOT BLESSED'}: accuracy {accuracy} of {self.scored}, "
            f"{len(self.checks) - len(self.failed)}/{len(self.checks)} checks passed"
        )
        return "\n  ".join([head] + [f"FAILED {c.name} ({c.model}, {c.slice}): {c.reason}" for c in self.failed])


def _score_baseline(baseline_dir: str, labels: list, serialized: list, images: list, batch_size: int, cache_dir):
    """(probabilities, None, how many were reused) or (None, why it could not be scored, 0).

    The model in production scores the same test images night after night: its scores are kept per
    image (by the sha256 of the bytes it reads) and SavedModel digest in `cache_dir`
    (components/common/image_results.py), so only images it has not scored yet are run."""
    try:
        theirs = model_labels(baseline_dir)
        if theirs != labels:
            return None, f"its classes {theirs} differ from the candidate's {labels}", 0
        saved_model = saved_model_in(baseline_dir)
        keys = [hashlib.sha256(image).hexdigest() for image in images]
        kept = (
            ImageResults(cache_dir, {"baseline_probabilities": _saved_model_digest(saved_model)}) if cache_dir else None
        )
        known = kept.lookup(keys) if kept else {}
        missing = [i for i, key in enumerate(keys) if key not in known]
        if missing:
            scored = SavedModelRunner(saved_model, batch_size).predict_examples([serialized[i] for i in missing])
            for i, row in zip(missing, scored):
                known[keys[i]] = {"probabilities": row}
            if kept:
                kept.add([keys[i] for i in missing], probabilities=np.asarray(scored, np.float32))
        probabilities = np.stack([known[key]["probabilities"] for key in keys]) if keys else np.zeros((0, len(labels)))
        return probabilities, None, len(keys) - len(missing)
    except Exception as e:  # any failure to load or run it is reported in the gate, not raised
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", 0


def _saved_model_digest(saved_model_dir: str) -> str:
    """sha256 over the graph and the variables: what decides the model's answers."""
    digest = hashlib.sha256()
    names = [
        "saved_model.pb",
        *sorted(os.path.join("variables", n) for n in fileio.listdir(os.path.join(saved_model_dir, "variables"))),
    ]
    for name in names:
        digest.update(name.encode() + b"\0" + file_sha256(os.path.join(saved_model_dir, name)).encode())
    return digest.hexdigest()


def trust_metrics(predictions: dict, labels, info: dict, answers: list) -> dict:
    """How far the probabilities can be trusted on this split (components/common/confidence.py).

    calibration: NLL and ECE of every model; for the candidate also before the temperature the
    export folded in (recovered exactly from its probabilities) and both reliability diagrams.
    abstention: coverage and accuracy of the answers the SavedModel gave (`answers`, its `label`
    output: abstained where it says the unknown label), and the accuracy/coverage curve of the
    confidence alone. Either is None when the model was exported without it.
    """
    per_model = {
        name: {"nll": round(confidence.nll(p, labels), 6), "ece": round(confidence.ece(p, labels), 6)}
        for name, p in predictions.items()
    }
    candidate = predictions["candidate"]
    fitted = info.get("calibration")
    calibration = {
        "per_model": per_model,
        "warnings": info.get("trust_warnings", []),  # what too few val images left unfitted (the export's model_info)
        "bins": confidence.BINS,
        "reliability_after": confidence.reliability(candidate, labels),
    }
    if fitted:
        raw = confidence.uncalibrated(candidate, fitted["temperature"])
        calibration.update(
            {
                "temperature": fitted["temperature"],
                "nll_before": round(confidence.nll(raw, labels), 6),
                "nll_after": per_model["candidate"]["nll"],
                "ece_before": round(confidence.ece(raw, labels), 6),
                "ece_after": per_model["candidate"]["ece"],
                "reliability_before": confidence.reliability(raw, labels),
            }
        )
    threshold = info.get("abstention")
    abstention = (
        None
        if not threshold
        else {
            "threshold": threshold["threshold"],
            "target": threshold.get("target"),
            "selective": confidence.selective(
                candidate, labels, np.asarray([a != threshold["unknown_label"] for a in answers])
            ),
            "curve": confidence.coverage_curve(candidate, labels),
        }
    )
    return {"calibration": calibration, "abstention": abstention}


def run(
    config: EvaluateConfig,
    export_dir: str,
    ingest_dir: str,
    baseline_dir: str | None,
    output_dir: str,
    beam_options=None,
    cache_dir: str | None = None,
) -> EvaluateResult:
    """Evaluate the export in `export_dir` on `ingest_dir`'s `config.split`; write the verdict to `output_dir`.

    Inputs: export_dir (its formats, labels.txt, model_info.json), ingest_dir (the split's
    shards, labels.txt), baseline_dir: the model now in serving (a pushed version dir
    `SERVING_DIR/<name>/<version>/` or an export dir) or None on a first run.
    Outputs (schemas/ARTIFACTS.md, "evaluate"): BLESSED or NOT_BLESSED, blessing.json (every check),
    metrics.json (per model, per slice; confusion matrices), tfma/ (TFMA's own output).
    A model that fails the gate is a normal outcome (`blessed` False), not an exception.
    beam_options: Beam `PipelineOptions` for the TFMA run (default: the local FnApiRunner).
    cache_dir: where the baseline's scores are kept per image across runs (None: not kept).
    """
    config.validate()
    start = time.time()
    export, examples = ExportedModel(export_dir), Examples(ingest_dir)
    labels = export.labels()
    data_labels = examples.labels()
    if data_labels != labels:
        raise DataError(
            f"the model's classes {labels} differ from the data's {data_labels} ({ingest_dir}); "
            "evaluate on the ingest the model was trained from"
        )
    serialized, images, y = read_split(examples, config.split)

    runner = SavedModelRunner(ExportedModel(export_dir).saved_model_dir(), config.batch_size)
    candidate, answers = runner.answer_examples(serialized)
    skew_checked, differing, skew_skipped = serving_skew.check(
        runner, examples, config.split, serialized, answers, config.skew_examples, config.batch_size
    )
    predictions = {"candidate": candidate}
    baseline_error, baseline_reused = None, 0
    if baseline_dir:
        baseline, baseline_error, baseline_reused = _score_baseline(
            baseline_dir, labels, serialized, images, config.batch_size, cache_dir
        )
        if baseline is not None:
            predictions["baseline"] = baseline
    pixels = {}  # decoded once per input size, shared by the pixels-in formats
    for name, path in export.formats().items():
        fmt = formats.get(name)
        if fmt.reference:  # the candidate itself, scored above through its tf.Example signature
            continue
        runner = fmt.open(path, os.cpu_count())
        if runner.image_size not in pixels:
            pixels[runner.image_size] = preprocess(images, runner.image_size)
        predictions[name] = runner.predict_pixels(pixels[runner.image_size], config.batch_size)
    del pixels

    with publish_dir(output_dir) as tmp:
        out = ModelBlessing(tmp)
        computed = tfma_metrics.compute(
            predictions, y, labels, config.top_k, out.path(ModelBlessing.TFMA), beam_options
        )
        metrics = computed["metrics"]
        trust = trust_metrics(predictions, y, export.info(), answers)
        checks = gate.value_checks(config, predictions, y, labels)
        if "baseline" in predictions:
            checks.append(gate.baseline_check(config, predictions, y))
        elif baseline_error:
            checks.append(gate.unloadable_baseline_check(config, baseline_error))
        checks.extend(gate.format_checks(config, predictions, y))
        if skew_checked:
            checks.append(gate.serving_skew_check(config, skew_checked, differing))
        if config.min_coverage is not None:
            checks.append(
                gate.coverage_check(config, trust["abstention"]["selective"])
                if trust["abstention"]
                else gate.Check(
                    "min_coverage",
                    "candidate",
                    "coverage",
                    tfma_metrics.OVERALL,
                    f">= {config.min_coverage:g}",
                    None,
                    False,
                    "evaluate.min_coverage is set but the model has no abstention threshold: set "
                    "export.abstain_precision or export.abstain_coverage",
                    len(y),
                )
            )
        blessed = all(c.passed for c in checks)
        skew = {
            "checked": skew_checked,
            "differing": [{"path": p, "record": a, "file": b} for p, a, b in differing],
            "skipped": skew_skipped,
        }
        write_json(
            out.path(ModelBlessing.METRICS),
            {
                **computed,
                **trust,
                "serving_skew": skew,
                "split": config.split,
                "examples": len(y),
                "baseline_scores_reused": baseline_reused,
            },
        )
        write_json(
            out.path(ModelBlessing.BLESSING),
            {
                "blessed": blessed,
                "candidate": export_dir,
                "baseline": baseline_dir,
                "split": config.split,
                "examples": len(y),
                "checks": [c.as_dict() for c in checks],
                "failed": [c.reason for c in checks if not c.passed],
                "format_accuracy_delta": {c.model: c.value for c in checks if c.name == "max_format_accuracy_drop"},
            },
        )
        write_text_atomic(out.path(BLESSED if blessed else NOT_BLESSED), "")
    return EvaluateResult(
        output_dir, blessed, checks, metrics, baseline_dir, round(time.time() - start, 2), export.scored_as()
    )
