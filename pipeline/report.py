"""`runs/<run_id>/report.html` (one self-contained page, PNGs embedded) and `summary.txt`.

Written at the end of every run, also of one that failed or was not blessed: each section shows
what the run's artifacts hold and says plainly when a component did not run. The page reads the
published artifacts (schemas/ARTIFACTS.md) and the lineage store; it computes nothing new except
the test-split predictions behind the "worst misclassified" grid, made with the exported model
through the shared model runner.
"""

import base64
import hashlib
import html
import json
import os

from components.common import fileio, formats, publish
from components.common.errors import DataError
from schemas import feature_spec
from schemas.artifacts import Audit, ExampleAnomalies, Examples, ExportedModel, Hyperparameters, Model, ModelBlessing

MAX_REJECTED_THUMBNAILS = 12
WORST_MISCLASSIFIED = 12


def _read(path: str, mode: str = "r"):
    if not fileio.exists(path):
        return None
    with fileio.GFile(path, mode) as f:
        return f.read()


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(headers: list, rows: list, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"  # e.g. the precision of a class the model never predicted
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _interval(interval) -> str:
    return "n/a" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _images_by_sha256(ingest: str, wanted: set) -> dict:
    """Encoded images of the ingest whose sha256 is in `wanted` (one pass over the shards)."""
    import tensorflow as tf

    examples, found = Examples(ingest), {}
    spec = feature_spec("image", "sha256")
    for split in Examples.SPLITS:
        if not wanted - found.keys() or not examples.exists(Examples.DATA):
            break
        try:
            shards = examples.shards(split)
        except DataError:  # a split this ingest does not have
            continue
        for record in tf.data.TFRecordDataset(shards).batch(256):
            parsed = tf.io.parse_example(record, spec)
            for digest, image in zip(parsed["sha256"].numpy(), parsed["image"].numpy()):
                if digest.decode() in wanted:
                    found[digest.decode()] = image
    return found


def _tuning_figure(trials: list, chosen) -> str:
    from pipeline import report_figures

    return _img(report_figures.tuning_trials(trials, chosen), "validation accuracy of each trial", 520)


# Table labels for model_info.json keys that need saying what they measure.
_KEY_WORDS = {"test_accuracy": "test accuracy (the Keras model, one plain pass, before export)"}


class Report:
    """Collects sections from the outputs of one run; `html()` and `text()` render them."""

    def __init__(self, store, run_id: str, config, outputs: dict, run_dir: str):
        self.store, self.run_id, self.config, self.outputs = store, run_id, config, outputs
        self.run_dir = run_dir
        self.sections = []  # (id, title, html)
        self.lines = []  # the text summary

    def add(self, key: str, title: str, body: str) -> None:
        self.sections.append((key, title, body))

    # --- sections -----------------------------------------------------------------------------
    def data(self) -> None:
        ingest = Examples(self.outputs["ingest"]) if self.outputs.get("ingest") else None
        stats = ingest.json_or_none(Examples.STATS) if ingest else None
        if not stats:
            self.add("data", "Data", "<p>The ingest did not run.</p>")
            return
        per_class = stats.get("per_class_per_split", {})
        splits = [s for s in Examples.SPLITS if s in stats.get("per_split", {})]
        rows = [[name] + [per_class[name].get(s, 0) for s in splits] for name in stats.get("labels", per_class)]
        rows.append(["total"] + [stats["per_split"].get(s, 0) for s in splits])
        files = stats.get("files", {})
        body = [
            f"<p>{files.get('found')} files found: {files.get('kept')} kept, {files.get('rejected')} rejected, "
            f"{files.get('ignored')} ignored.</p>",
            _table(["class", *splits], rows, "counts"),
        ]
        self.lines.append(
            f"data: {files.get('kept')} kept / {files.get('found')} found, "
            + ", ".join(f"{s} {stats['per_split'].get(s, 0)}" for s in splits)
        )
        rejected = ingest.rejected()
        by_reason = {}
        for row in rejected:
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
        body.append("<h3>Rejected files by reason</h3>")
        if rejected:
            body.append(_table(["reason", "files"], sorted(by_reason.items())))
            body.append(self._rejected_thumbnails(rejected))
            body.append(
                _table(
                    ["file", "reason", "detail"],
                    [[r["path"], r["reason"], r["detail"]] for r in rejected[:50]],
                    "rejected",
                )
            )
            self.lines.append("rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())))
        else:
            body.append("<p>No file was rejected.</p>")
        validation = ExampleAnomalies(self.outputs["validate"]) if self.outputs.get("validate") else None
        items = validation.json_or_none(ExampleAnomalies.ANOMALIES) if validation else None
        if items is not None:
            body.append("<h3>Data validation</h3>")
            body.append(
                _table(
                    ["severity", "code", "message"],
                    [[a.get("severity"), a.get("code"), a.get("message")] for a in items],
                )
                if items
                else "<p>No anomalies.</p>"
            )
        self.add("data", "Data", "".join(body))

    def _rejected_thumbnails(self, rejected: list) -> str:
        from pipeline import report_figures

        ingest = self.config["ingest"]
        listed = getattr(ingest, "manifest", None)  # a manifest's paths are under its own folder
        folder = listed and (listed.rsplit("/", 1)[0] if "://" in listed else os.path.dirname(os.path.abspath(listed)))
        data_dir = getattr(ingest, "data_dir", None) or folder
        tiles = []
        for row in rejected[:MAX_REJECTED_THUMBNAILS]:
            data = None
            if data_dir:
                try:
                    data = _read(os.path.join(data_dir, row["path"]), "rb")
                except fileio.errors():  # unreadable is one of the reasons a file is rejected
                    data = None
            tiles.append(
                f"<figure>{_img(report_figures.thumbnail(data, row['reason']), row['path'])}"
                f"<figcaption>{html.escape(row['path'])}</figcaption></figure>"
            )
        return '<div class="thumbs">' + "".join(tiles) + "</div>"

    def training(self) -> None:
        if not self.outputs.get("train"):
            self.add("training", "Training", "<p>The trainer did not run.</p>")
            return
        train = Model(self.outputs["train"])
        body = []
        curves = _read(train.path(Model.CURVES), "rb")
        if curves:
            body.append(_img(curves, "training curves per stage", 720))
        info = train.info()
        rows = [[s["name"], s["epochs_run"], _fmt(s["val_accuracy"])] for s in train.history()["stages"]]
        body.append(_table(["stage", "epochs", "val accuracy after the stage"], rows))
        keys = ("backbone", "alpha", "image_size", "weights", "precision", "val_accuracy", "test_accuracy")
        body.append(
            _table(
                ["model", "value"],
                [
                    [_KEY_WORDS.get(k, k), _fmt(info[k]) if k.endswith("accuracy") else info[k]]
                    for k in keys
                    if k in info
                ],
            )
        )
        self.lines.append(
            f"train: {info.get('backbone')} {info.get('image_size')}, val accuracy "
            f"{_fmt(info.get('val_accuracy'))}, test accuracy {_fmt(info.get('test_accuracy'))} (the Keras model, one "
            "plain pass)"
        )
        self.add("training", "Training", "".join(body))

    def tuning(self) -> None:
        """The recipe search: every trial, what was chosen over the defaults, and how much is noise."""
        uri = self.outputs.get("tune")
        recipe = Hyperparameters(uri).recipe() if uri else {}
        if not recipe.get("tuned"):
            return
        trials = Hyperparameters(uri).trials()
        val, noise = recipe["val_accuracy"], recipe.get("selection_noise") or {}
        chosen = recipe["chosen"]["trial"]
        gain = None if val["best"] is None or val["default_recipe"] is None else val["best"] - val["default_recipe"]
        body = [
            f"<p>{recipe['trials']} trials ({recipe['completed']} complete) in {recipe['used_seconds']:.0f} s of "
            f"{recipe['budget_seconds']:.0f}. Validation accuracy of the chosen recipe (trial {chosen}) "
            f"{_fmt(val['best'])} against {_fmt(val['default_recipe'])} for the train config's own; a search "
            f"of this many equally good recipes would show a gain of about "
            f"{_fmt(noise.get('expected_gain_from_noise'))} from noise alone "
            f"({noise.get('val_images')} validation images). The test split was not used to choose.</p>",
            self._cached("tuning", uri, lambda: _tuning_figure(trials, chosen)),
        ]
        names = [k for k in trials[0] if k not in ("trial", "recipe", "status", "val_accuracy", "seconds")]
        rows = [
            [t["trial"], t["recipe"], t["status"], t["val_accuracy"], t["seconds"], *(t[k] for k in names)]
            for t in trials
        ]
        body.append(_table(["trial", "recipe", "status", "val accuracy", "seconds", *names], rows))
        self.lines.append(
            f"tune: trial {chosen} of {recipe['trials']} chosen, val accuracy {_fmt(val['best'])} against "
            f"{_fmt(val['default_recipe'])} (gain {_fmt(gain)}, noise alone ~{_fmt(noise.get('expected_gain_from_noise'))})"
        )
        self.add("tuning", "Tuning", "".join(body))

    def metrics(self) -> None:
        evaluate = self.outputs.get("evaluate")
        if not evaluate or not self.outputs.get("export"):
            self.add("metrics", "Metrics", "<p>The evaluation did not run.</p>")
            self.add("confusion", "Confusion matrix", "<p>The evaluation did not run.</p>")
            return
        metrics = ModelBlessing(evaluate).metrics()
        labels = ExportedModel(self.outputs["export"]).labels()
        overall = metrics["metrics"]["candidate"].get("overall", {})
        rows = [[k, _fmt(v)] for k, v in sorted(overall.items()) if "/" not in k]
        scored = ExportedModel(self.outputs["export"]).scored_as()
        body = [
            f"<p>{metrics.get('examples')} examples of the {html.escape(str(metrics.get('split')))} split, scored "
            f"by {scored}: the model that is pushed. The trainer's test accuracy (Training) is the Keras "
            "model's in one plain pass, before export, and may differ from it.</p>",
            _table(["metric", "value"], rows),
            "<h3>Per class</h3>",
            _table(
                ["class", "precision", "recall", "F1"],
                [
                    [
                        c,
                        _fmt(overall.get(f"precision/{c}")),
                        _fmt(overall.get(f"recall/{c}")),
                        _fmt(overall.get(f"f1/{c}")),
                    ]
                    for c in labels
                ],
                "per-class",
            ),
        ]
        self.lines.append(
            f"evaluate: accuracy {_fmt(overall.get('accuracy'))}, macro F1 {_fmt(overall.get('macro_f1'))} ({scored})"
        )
        self.add("metrics", "Metrics", "".join(body))
        matrix = metrics.get("confusion_matrix", {}).get("candidate")
        if not matrix:
            self.add("confusion", "Confusion matrix", "<p>No confusion matrix in metrics.json.</p>")
            return

        def heatmap():
            from pipeline import report_figures

            return _img(report_figures.confusion_heatmap(matrix, labels), "confusion matrix heatmap")

        self.add("confusion", "Confusion matrix", self._cached("confusion", evaluate, heatmap))

    def trust(self) -> None:
        """Calibration (ECE/NLL before and after the temperature, reliability diagrams) and abstention."""
        title = "Calibration and abstention"
        evaluate = self.outputs.get("evaluate")
        metrics = ModelBlessing(evaluate).metrics() if evaluate else {}
        calibration, abstention = metrics.get("calibration"), metrics.get("abstention")
        if not calibration:
            self.add("trust", title, "<p>The evaluation did not run (or predates calibration).</p>")
            return
        exported = (calibration.get("per_model") or {}).get("candidate", {})  # with no temperature: as exported
        rows = [
            ["ECE", _fmt(calibration.get("ece_before"), 4), _fmt(calibration.get("ece_after", exported.get("ece")), 4)],
            ["NLL", _fmt(calibration.get("nll_before"), 4), _fmt(calibration.get("nll_after", exported.get("nll")), 4)],
        ]
        temperature = calibration.get("temperature")
        warnings = calibration.get("warnings") or []
        fitted = (
            f"Temperature {_fmt(temperature, 4)} fitted on the val split and folded into the model"
            if temperature
            else "No temperature was fitted" + ("" if warnings else " (export.calibrate: false)")
        )
        for warning in warnings:
            self.lines.append(f"warning: {warning}")
        body = [
            *(f'<p class="warning"><strong>Warning:</strong> {html.escape(w)}</p>' for w in warnings),
            f"<p>{fitted}; measured on the {metrics.get('examples')} images of the {html.escape(str(metrics.get('split')))} split "
            f"({calibration.get('bins')} confidence bins).</p>",
            _table(["", "before calibration", "after (exported)"], rows),
        ]
        if temperature:
            self.lines.append(
                f"calibration: T {_fmt(temperature, 3)}, ECE {_fmt(calibration.get('ece_before'), 4)} -> "
                f"{_fmt(calibration.get('ece_after'), 4)}"
            )
        if abstention:
            chosen = abstention["selective"]
            body.append(
                f"<h3>Abstention</h3><p>Threshold {_fmt(abstention['threshold'], 4)} (fitted on val for "
                f"{html.escape(json.dumps(abstention.get('target')))}): {_fmt(chosen['coverage'])} of the images "
                f"answered, accuracy of those {_fmt(chosen['accuracy'])}; the rest answered as unknown.</p>"
            )
            self.lines.append(f"abstention: coverage {_fmt(chosen['coverage'])}, accuracy {_fmt(chosen['accuracy'])}")

        def figures():
            from pipeline import report_figures

            panels = {"before calibration": calibration["reliability_before"]} if temperature else {}
            panels["exported model"] = calibration["reliability_after"]
            html_ = _img(report_figures.reliability_diagram(panels), "reliability diagram")
            if abstention:
                html_ += _img(
                    report_figures.coverage_curve(abstention["curve"], abstention["selective"]),
                    "accuracy against coverage",
                )
            return html_

        body.append(self._cached("trust", evaluate, figures))
        self.add("trust", title, "".join(body))

    def audit(self) -> None:
        """The label-issue review queue and the near-copies across splits, with thumbnails."""
        title = "Audit: label issues and leakage"
        audit_dir, ingest = self.outputs.get("audit"), self.outputs.get("ingest")
        if not audit_dir or not ingest:
            self.add("audit", title, "<p>The audit did not run.</p>")
            return
        audit = Audit(audit_dir)
        summary = audit.summary()
        if summary.get("skipped"):
            self.add("audit", title, f"<p>Skipped: {html.escape(summary['skipped'])}</p>")
            return
        issues, copies = audit.rows(Audit.LABEL_ISSUES), audit.rows(Audit.NEAR_DUPLICATES)
        review = summary["config"]["review_size"]
        label_review = summary.get("label_review") or {}
        body = [
            f"<p>{html.escape(label_review.get('summary', 'no label review'))} (confident learning on a "
            f"probe's out-of-fold probabilities; the queue is in <code>{Audit.LABEL_ISSUES}</code>, most likely "
            f"first). Near-copies of train images (<code>{Audit.NEAR_DUPLICATES}</code>): "
            f"{html.escape(json.dumps(summary['near_duplicates']))}.</p>"
        ]
        claimed = label_review.get("claimed_label_errors")
        self.lines.append(
            f"audit: {'no' if claimed is None else claimed} claimed label errors ({len(issues)} in the "
            f"review queue), near-copies {summary['near_duplicates']}"
        )

        def figures():
            from pipeline import report_figures

            wanted = {r["sha256"] for r in issues[:review]} | {
                r[k] for r in copies[:review] for k in ("sha256", "train_sha256")
            }
            images = _images_by_sha256(ingest, wanted)
            parts = []
            if issues[:review]:
                shown = [r for r in issues[:review] if r["sha256"] in images]
                parts.append(
                    _img(
                        report_figures.image_grid(
                            [images[r["sha256"]] for r in shown],
                            [f"#{r['rank']} given {r['given_label']}\nsuggested {r['suggested_label']}" for r in shown],
                        ),
                        "label issue review queue",
                    )
                )
            if copies[:review]:
                pairs = [r for r in copies[:review] if r["sha256"] in images and r["train_sha256"] in images]
                grid = [x for r in pairs for x in (images[r["sha256"]], images[r["train_sha256"]])]
                titles = [
                    t
                    for r in pairs
                    for t in (f"{r['split']} {r['path'][-18:]}", f"train copy, cos {float(r['similarity']):.3f}")
                ]
                parts.append(_img(report_figures.image_grid(grid, titles, columns=6), "near-copies across splits"))
            return "".join(parts)

        body.append(self._cached("audit", audit_dir, figures))
        self.add("audit", title, "".join(body))

    def worst(self) -> None:
        export, ingest = self.outputs.get("export"), self.outputs.get("ingest")
        if not export or not ingest:
            self.add("worst", "Worst misclassified test images", "<p>No exported model in this run.</p>")
            return
        # Predicting the test split costs seconds; a rerun that reused the model reuses the grid.
        self.add(
            "worst",
            "Worst misclassified test images",
            self._cached("worst", f"{export}\n{ingest}", lambda: self._worst_html(export, ingest)),
        )

    def _cached(self, name: str, key: str, build) -> str:
        """`build()`'s HTML, kept in runs/.cache under `key` (published output paths, which never change), so
        a rerun that reused the components neither recomputes nor redraws (matplotlib alone takes a second)."""
        cache = os.path.join(
            self.run_dir, os.pardir, ".cache", f"{name}-" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".html"
        )
        cached = _read(cache)
        if cached is None:
            cached = build()
            fileio.makedirs(os.path.dirname(cache))
            publish.write_text_atomic(cache, cached)
        return cached

    def _worst_html(self, export: str, ingest: str) -> str:
        from components.common.formats.saved_model import SavedModelRunner
        from pipeline import report_figures
        from schemas.split_reader import read_split

        split = self.config["evaluate"].split
        serialized, images, y = read_split(Examples(ingest), split)
        labels = ExportedModel(export).labels()
        probabilities = SavedModelRunner(ExportedModel(export).saved_model_dir()).predict_examples(serialized)
        predicted = probabilities.argmax(axis=1)
        wrong = [i for i in range(len(y)) if predicted[i] != y[i]]
        wrong.sort(key=lambda i: -float(probabilities[i, predicted[i]]))  # most confident mistakes first
        wrong = wrong[:WORST_MISCLASSIFIED]
        if not wrong:
            return f"<p>Every one of the {len(y)} {html.escape(split)} images is classified correctly.</p>"
        titles = [
            f"true {labels[y[i]]}\npred {labels[predicted[i]]} {probabilities[i, predicted[i]]:.2f}" for i in wrong
        ]
        grid = report_figures.image_grid([images[i] for i in wrong], titles)
        return (
            f"<p>{len(wrong)} most confident mistakes of {sum(predicted != y)} on {len(y)} {html.escape(split)} "
            f"images (true vs predicted, score).</p>" + _img(grid, "worst misclassified grid")
        )

    def gate(self) -> None:
        evaluate = self.outputs.get("evaluate")
        if not evaluate:
            self.add("gate", "Gate", "<p>The evaluation gate did not run.</p>")
            return
        blessing = ModelBlessing(evaluate).blessing()
        verdict = "BLESSED" if blessing.get("blessed") else "NOT BLESSED"
        rows = [
            [
                c.get("name"),
                c.get("model"),
                c.get("slice"),
                _fmt(c.get("threshold")),
                _fmt(c.get("value")),
                _interval(c.get("interval")),
                str(c.get("examples") or "n/a"),
                _fmt((c.get("statistic") or {}).get("p_value"), 4),
                "pass" if c.get("passed") else "FAIL",
                c.get("reason") or "",
            ]
            for c in blessing.get("checks", [])
        ]
        baseline = blessing.get("baseline") or "none (first model: judged on value thresholds alone)"
        self.add(
            "gate",
            "Gate",
            f'<p class="verdict">{verdict}</p><p>Baseline: {html.escape(str(baseline))}</p>'
            + _table(
                ["check", "model", "slice", "threshold", "value", "interval", "images", "p", "result", "reason"],
                rows,
                "checks",
            ),
        )
        self.lines.append(f"gate: {verdict}" + "".join(f"\n  FAILED {r}" for r in blessing.get("failed", [])))

    def formats(self) -> None:
        export = self.outputs.get("export")
        if not export:
            self.add("formats", "Exported formats", "<p>No export in this run.</p>")
            return
        evaluate = ModelBlessing(self.outputs["evaluate"]) if self.outputs.get("evaluate") else None
        metrics = evaluate.metrics()["metrics"] if evaluate else {}
        deltas = evaluate.blessing().get("format_accuracy_delta", {}) if evaluate else {}
        exported = ExportedModel(export)
        parity = exported.parity()
        rows = []
        for name, entry in exported.format_entries().items():
            fmt = formats.FORMATS.get(name)
            reference = fmt is not None and fmt.reference
            accuracy = metrics.get("candidate" if reference else name, {}).get("overall", {}).get("accuracy")
            rows.append(
                [
                    fmt.title if fmt else name,
                    entry["path"],
                    f"{entry['bytes'] / 1024:.0f} KiB",
                    f"{entry.get('input')} -> {entry.get('output')}",
                    _fmt(parity["max_abs_diff"].get(name)) if name in parity["max_abs_diff"] else "not compared",
                    _fmt(accuracy),
                    "reference" if reference else _fmt(deltas.get(name)),
                ]
            )
        body = _table(
            ["format", "file", "size", "input -> output", "parity max |diff| vs Keras", "accuracy", "accuracy change"],
            rows,
        )
        body += (
            f"<p>Parity: {parity['examples']} images, tolerance {parity['tolerance']:g}; quantized formats are judged "
            "by the gate's accuracy drop instead.</p>"
        )
        self.add("formats", "Exported formats", body)
        self.lines.append("formats: " + ", ".join(f"{r[0]} {r[2]} (accuracy {r[5]}, change {r[6]})" for r in rows))

    def lineage(self, code_version: str) -> None:
        rows = []
        for e in self.store.executions(self.run_id):
            rows.append(
                [
                    e["component"],
                    e["status"],
                    f"{e['seconds'] or 0:.1f} s",
                    (e["fingerprint"] or "")[:16],
                    e["output_uri"] or "-",
                ]
            )
        ingest = [e for e in self.store.executions(self.run_id) if e["component"] == "ingest"]
        push = [e for e in self.store.executions(self.run_id) if e["component"] == "push"]
        evaluate = self.outputs.get("evaluate")
        blessing = ModelBlessing(evaluate).json_or_none(ModelBlessing.BLESSING) if evaluate else None
        baseline = (blessing or {}).get("baseline")
        facts = [
            ["run", self.run_id],
            ["code version", code_version],
            ["data fingerprint", ingest[0]["fingerprint"] if ingest else "-"],
            [
                "data",
                getattr(self.config["ingest"], "data_dir", None)
                or getattr(self.config["ingest"], "manifest", None)
                or getattr(self.config["ingest"], "tfds_name", "-"),
            ],
            ["baseline", baseline or "none"],
            ["pushed", (push[0]["output_uri"] or "not pushed") if push else "push did not run"],
        ]
        self.add(
            "lineage",
            "Lineage",
            _table(["", ""], facts)
            + _table(["component", "status", "took", "fingerprint", "output"], rows)
            + f"<h3>Effective config</h3><pre>{html.escape(self.config.to_yaml())}</pre>",
        )

    # --- rendering ----------------------------------------------------------------------------
    def html(self, title: str) -> str:
        nav = " · ".join(f'<a href="#{k}">{html.escape(t)}</a>' for k, t, _ in self.sections)
        body = "".join(f'<section id="{k}"><h2>{html.escape(t)}</h2>{b}</section>' for k, t, b in self.sections)
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; font-size: 90%; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
.thumbs {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; font-size: 70%; max-width: 110px; word-break: break-all; }}
.verdict {{ font-size: 140%; font-weight: bold; }}
.warning {{ background: #fff4d6; border-left: 4px solid #e0a000; padding: 4px 8px; }}
pre {{ background: #f7f7f7; padding: 1em; font-size: 80%; overflow: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1><nav>{nav}</nav>{body}</body></html>
"""


def write(store, run_id: str, config, outputs: dict, run_dir: str, status: str, code_version: str, log=print) -> str:
    """Build and publish report.html and summary.txt for a run; returns the text summary.

    A section that cannot be built (an artifact in an unexpected shape) is replaced by a note
    naming the error, so a report is always written.
    """
    report = Report(store, run_id, config, outputs, run_dir)
    for name, section in (
        ("data", report.data),
        ("tuning", report.tuning),
        ("training", report.training),
        ("metrics", report.metrics),
        ("trust", report.trust),
        ("audit", report.audit),
        ("worst", report.worst),
        ("gate", report.gate),
        ("formats", report.formats),
        ("lineage", lambda: report.lineage(code_version)),
    ):
        try:
            section()
        except Exception as e:  # the report must not turn a finished run into a failed one
            report.add(name, name.capitalize(), f"<p>This section could not be built: {html.escape(repr(e))}</p>")
    text = "\n".join([f"run {run_id}: {status}", *report.lines])
    publish.write_text_atomic(os.path.join(run_dir, "report.html"), report.html(f"transferline run {run_id}: {status}"))
    publish.write_text_atomic(os.path.join(run_dir, "summary.txt"), text + "\n")
    return text
