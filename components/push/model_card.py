"""The model card of a pushed version: `assets.extra/model_card.json` and `model_card.md`.

Why in every pushed version: whoever finds a model in a serving directory months later (an
on-call engineer, an app team, an auditor) needs what it was trained on, how well it did with how
much certainty, where it is weak and where it came from, next to the model and not in a pipeline
root that may be gone. The sections follow Google's Model Card Toolkit (model details, data,
quantitative analysis, considerations) and are filled only from the artifacts the push already
reads: the export's `model_info.json`, the evaluation's `blessing.json` and `metrics.json`, and the
push record. The limitations are derived from those numbers (test-set size and interval width,
the weakest classes, whether the model can abstain), not written by hand, so they cannot go stale.
"""

from typing import Optional

from components.common import formats

WEAK_CLASS_MARGIN = 0.10  # a class whose recall is this far below the overall accuracy is called weak


def _overall(metrics: Optional[dict]) -> dict:
    return ((metrics or {}).get("metrics") or {}).get("candidate", {}).get("overall") or {}


def _per_class(labels: list, metrics: Optional[dict]) -> list:
    overall = _overall(metrics)
    by_slice = ((metrics or {}).get("metrics") or {}).get("candidate", {})
    rows = []
    for name in labels:  # the evaluator keys slices and per-class metrics by class name (evaluate/tfma_metrics.py)
        count = (by_slice.get(f"label={name}") or {}).get("example_count")
        rows.append(
            {
                "label": name,
                "test_examples": int(count) if count is not None else None,
                "precision": overall.get(f"precision/{name}"),
                "recall": overall.get(f"recall/{name}"),
                "f1": overall.get(f"f1/{name}"),
            }
        )
    return rows


def _accuracy_check(blessing: Optional[dict]) -> Optional[dict]:
    for check in (blessing or {}).get("checks", []):
        if check.get("model") == "candidate" and check.get("metric") == "accuracy" and check.get("interval"):
            return check
    return None


def _formats(info: dict, metrics: Optional[dict], blessing: Optional[dict]) -> list:
    """Every exported format the version carries: where, how big, and its accuracy against the SavedModel."""
    by_model = (metrics or {}).get("metrics") or {}
    deltas = (blessing or {}).get("format_accuracy_delta") or {}
    rows = []
    for entry in info.get("formats") or []:
        name = entry["name"]
        fmt = formats.FORMATS.get(name)
        reference = bool(fmt and fmt.reference)
        rows.append(
            {
                "name": name,
                "title": fmt.title if fmt else name,
                "path": "." if reference else f"assets.extra/{entry['path']}",
                "bytes": entry["bytes"],
                "accuracy": (by_model.get("candidate" if reference else name, {}).get("overall") or {}).get("accuracy"),
                "accuracy_change": None if reference else deltas.get(name),
            }
        )
    return rows


def _limitations(info: dict, metrics: Optional[dict], blessing: Optional[dict], per_class: list) -> list:
    found = [f"Warning: {w[:1].upper()}{w[1:]}." for w in info.get("trust_warnings", [])]
    accuracy = _overall(metrics).get("accuracy")
    examples = (metrics or {}).get("examples")
    check = _accuracy_check(blessing)
    if accuracy is not None and examples:
        interval = f", 95% interval {check['interval'][0]:.3f}-{check['interval'][1]:.3f}" if check else ""
        found.append(
            f"Accuracy {accuracy:.3f} was measured on {examples} test images{interval}: one image is "
            f"{100 / examples:.1f} points; differences smaller than the interval are not evidence."
        )
    if accuracy is not None:
        weak = [r for r in per_class if r["recall"] is not None and r["recall"] < accuracy - WEAK_CLASS_MARGIN]
        for row in sorted(weak, key=lambda r: r["recall"]):
            found.append(
                f"Class {row['label']!r} is weak: recall {row['recall']:.3f} against {accuracy:.3f} overall "
                f"({row['test_examples']} test images)."
            )
    abstention = info.get("abstention")
    if abstention:
        found.append(
            f"Answers {abstention['unknown_label']!r} below a top probability of "
            f"{abstention['threshold']:.3f} (fitted on val for {abstention['target']}); the TFLite and ONNX "
            "models abstain on that confidence only (their client applies it), not on the distance to the "
            "training data."
        )
    else:
        found.append(
            "No abstention: every input gets one of the classes, including images of none of them "
            "(set export.abstain_precision or export.abstain_coverage)."
        )
    found.append(
        f"Trained on {info.get('examples_per_split', {}).get('train', '?')} images of "
        f"{info.get('num_classes', '?')} classes; images unlike them (other cameras, lighting, "
        "backgrounds, subjects) are outside what was measured."
    )
    return found


def build(info: dict, blessing: Optional[dict], metrics: Optional[dict], push: dict) -> dict:
    """The card as JSON-ready data. info: the export's model_info.json; blessing/metrics: the
    evaluation's files (None for a forced push without an evaluation); push: push.json's fields."""
    labels = list(info.get("labels", []))
    per_class = _per_class(labels, metrics)
    calibration = (metrics or {}).get("calibration") or {}
    return {
        "model_details": {
            "name": push.get("model_name"),
            "version": push.get("version"),
            "pushed_at": push.get("pushed_at"),
            "backbone": info.get("backbone"),
            "alpha": info.get("alpha"),
            "weights": info.get("weights"),
            "image_size": info.get("image_size"),
            "labels": labels,
            "precision": info.get("precision"),
            "test_time_augmentation": info.get("tta"),
            "temperature": (info.get("calibration") or {}).get("temperature"),
            "versions": {"keras": info.get("keras_version"), "tensorflow": info.get("tensorflow_version")},
        },
        "data": {
            "examples_per_split": info.get("examples_per_split"),
            "excluded_train_examples": info.get("excluded_train_examples", 0),
        },
        "quantitative_analysis": {
            "split": (metrics or {}).get("split"),
            "examples": (metrics or {}).get("examples"),
            "accuracy": _overall(metrics).get("accuracy"),
            "macro_f1": _overall(metrics).get("macro_f1"),
            "accuracy_interval": (_accuracy_check(blessing) or {}).get("interval"),
            "ece": calibration.get("ece_after"),
            "nll": calibration.get("nll_after"),
            "abstention": ((metrics or {}).get("abstention") or {}).get("selective"),
            "per_class": per_class,
            "gate": [
                {k: c.get(k) for k in ("name", "model", "value", "threshold", "passed", "interval")}
                for c in (blessing or {}).get("checks", [])
            ],
        },
        "considerations": {
            "intended_use": (
                f"Classifying images into the {len(labels)} classes it was trained on "
                f"({', '.join(labels)}), for images like its training images."
            ),
            "limitations": _limitations(info, metrics, blessing, per_class),
        },
        "lineage": {
            "export_dir": push.get("export_dir"),
            "evaluate_dir": push.get("evaluate_dir"),
            "blessed": push.get("blessed"),
            "forced": push.get("forced"),
            "distilled_from": info.get("distillation"),
        },
        "formats": _formats(info, metrics, blessing),
    }


def _num(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(card: dict) -> str:
    """The card for people: the same content as the JSON."""
    details, quant = card["model_details"], card["quantitative_analysis"]
    lines = [
        f"# Model card: {details['name']} version {details['version']}",
        "",
        f"Pushed {details['pushed_at']}. Backbone {details['backbone']} at {details['image_size']} px, "
        f"weights {details['weights']}; test-time augmentation {details['test_time_augmentation']}; "
        f"temperature {_num(details['temperature'])}.",
        "",
        "## Intended use",
        "",
        card["considerations"]["intended_use"],
        "",
        "## Data",
        "",
        f"Images per split: {card['data']['examples_per_split']}; train images excluded: "
        f"{card['data']['excluded_train_examples']}.",
        "",
        "## Results",
        "",
        f"On the {quant['split']} split ({quant['examples']} images): accuracy {_num(quant['accuracy'])}"
        + (
            f" (95% interval {_num(quant['accuracy_interval'][0])}-{_num(quant['accuracy_interval'][1])})"
            if quant["accuracy_interval"]
            else ""
        )
        + f", macro F1 {_num(quant['macro_f1'])}, ECE {_num(quant['ece'])}, NLL {_num(quant['nll'])}.",
        "",
        "| class | test images | precision | recall | F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['label']} | {_num(r['test_examples'])} | {_num(r['precision'])} | {_num(r['recall'])} | "
        f"{_num(r['f1'])} |"
        for r in quant["per_class"]
    ]
    lines += ["", "Gate checks:", ""]
    lines += [
        f"- {c['name']} ({c['model']}): {_num(c['value'], 4)} {c['threshold']}: {'passed' if c['passed'] else 'FAILED'}"
        for c in quant["gate"]
    ] or ["- none (no evaluation)"]
    lines += ["", "## Formats", "", "| format | path in this version | size | accuracy | change vs SavedModel |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {f['title']} | `{f['path']}` | {f['bytes'] / 1e6:.2f} MB | {_num(f['accuracy'])} | "
        f"{'reference' if f['path'] == '.' else _num(f['accuracy_change'], 4)} |"
        for f in card["formats"]
    ]
    lines += ["", "## Limitations", ""] + [f"- {text}" for text in card["considerations"]["limitations"]]
    lineage = card["lineage"]
    lines += [
        "",
        "## Lineage",
        "",
        f"Export {lineage['export_dir']}, evaluation {lineage['evaluate_dir']}, "
        f"blessed {lineage['blessed']}, forced {lineage['forced']}.",
    ]
    teacher = lineage.get("distilled_from")
    if teacher:
        lines += [
            "",
            f"Distilled from the teacher {teacher['teacher']} (sha256 {teacher['teacher_sha256'][:16]}), "
            f"temperature {teacher['temperature']}, alpha {teacher['alpha']}.",
        ]
    lines += [""]
    return "\n".join(lines)
