"""The export step: train artifact in, every chosen export format + sidecars out, parity-checked."""

import dataclasses
import logging
import time

import numpy as np

from components.common import decoding_budget, formats, warmup_requests
from components.common.errors import DataError, UsageError
from components.common.image_ops import preprocess
from components.common.outcome import Outcome
from components.common.publish import publish_dir, write_json, write_text_atomic
from components.common.trained_model import float32_rebuild, load_model
from components.export import calibration, parity, signatures, tta
from components.export.config import ExportConfig
from schemas.artifacts import Examples, ExportedModel, Model, file_sha256, labels_text
from schemas.split_reader import sample_split

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExportResult(Outcome):
    """Where the export went and what it measured."""

    output_dir: str
    saved_model_dir: str
    files: dict  # format name -> path
    sizes: dict  # format name -> bytes
    parity: dict
    seconds: float

    def summary(self) -> str:
        sizes = ", ".join(f"{name} {n / 1e6:.2f} MB" for name, n in self.sizes.items())
        worst = max(self.parity["max_abs_diff"].values())
        return f"exported to {self.output_dir}: {sizes}; parity max |diff| {worst:.2g}"


def _decoding_budget(config: ExportConfig, examples: Examples) -> dict:
    """The pixel and frame budget the signatures get: `export.max_image_pixels`, raised to the largest
    image the ingest kept (the manifest's sizes), with a warning, so that evaluation (which scores the
    test split through `serve_tf_examples`) and serving take every image the model was trained and
    evaluated on; `ingest.max_side` keeps them, and the budget, small."""
    largest = max((int(row["height"]) * int(row["width"]) for row in examples.manifest()), default=0)
    pixels = max(config.max_image_pixels, largest)
    if pixels > config.max_image_pixels:
        log.warning(
            "export.max_image_pixels %d is below the largest ingested image (%d pixels): the serving "
            "signatures take up to %d pixels, about %d MB to decode one image; set ingest.max_side to "
            "downscale at ingest and keep the budget",
            config.max_image_pixels,
            largest,
            pixels,
            pixels * decoding_budget.BYTES_PER_PIXEL // 2**20,
        )
    return {
        "max_image_pixels": pixels,
        "max_image_frames": config.max_image_frames,
        "raised_to_the_largest_ingested_image": pixels > config.max_image_pixels,
    }


def _sidecar(info: dict, labels: list, calibrated: dict) -> dict:
    """What a user of a pixels-in format (TFLite, ONNX) needs besides the file: input size,
    preprocessing, label order, and whether the probabilities are calibrated and where to abstain."""
    return {
        "image_size": list(info["image_size"]),
        "labels": labels,
        "num_classes": len(labels),
        "backbone": info.get("backbone"),
        "input": "RGB pixels 0-255, [batch, height, width, 3], resized with bilinear antialiasing "
        "(components.common.image_ops.decode_and_resize); normalisation is inside the model",
        "output": (
            "softmax probabilities [batch, num_classes] in labels order"
            + (", calibrated (temperature folded in)" if calibrated["calibration"] else "")
            + (
                f"; answer {calibrated['abstention']['unknown_label']!r} when the top probability is below "
                "abstention.threshold (the SavedModel also checks abstention.far_from_training, which needs "
                "features the pixels-in formats do not output)"
                if calibrated["abstention"]
                else ""
            )
        ),
        **calibrated,
    }


def run(config: ExportConfig, train_dir: str, ingest_dir: str, output_dir: str) -> ExportResult:
    """Export the trained model in `train_dir` to `output_dir` (which must not exist).

    Inputs: train_dir/model.keras, model_info.json, labels.txt; ingest_dir's train split (int8
    calibration), val split (temperature and abstention threshold) and test split (parity sample;
    train split when there is no test split).
    Outputs (schemas/ARTIFACTS.md, "export"): every format `export.formats` names at its registered
    path (saved_model/, tflite/model_<variant>.tflite, model.onnx: components/common/formats/),
    labels.txt, model_info.json (the train sidecar plus input/output facts, `formats`: each
    written format's name, path, bytes and I/O types, in the order written, `calibration` and `abstention`), parity.json.
    The SavedModel carries TF Serving warm-up requests built from val images (components/common/warmup_requests.py).
    With `export.tta` resolving to "flip", every exported model averages over the image and its
    mirror (components/export/tta.py), and Keras's side of the parity check does the same.
    Raises ParityError when Keras and a float format (SavedModel, TFLite float32, ONNX) disagree.
    """
    config.validate()
    start = time.time()
    trained, examples = Model(train_dir), Examples(ingest_dir)
    trained.require()
    info = trained.info()
    labels = trained.checked_labels()
    image_size = tuple(int(x) for x in info["image_size"])
    model = float32_rebuild(load_model(trained.model_path()))
    if config.unknown_label in labels and (config.abstain_precision, config.abstain_coverage) != (None, None):
        raise UsageError(f"export.unknown_label {config.unknown_label!r} is also a class name: choose another")
    tta_mode = tta.resolve(config.tta, trained.json_or_none(Model.HISTORY))
    calibrated, prototypes = calibration.calibrate(model, examples, image_size, len(labels), config, tta_mode)
    calibrated["trust_warnings"] = info.get("trust_warnings", []) + calibrated["trust_warnings"]  # the trainer's first

    _, train_images, _ = sample_split(examples, "train", config.representative_examples, len(labels))
    try:
        _, sample_images, _ = sample_split(examples, "test", config.parity_examples, len(labels))
    except DataError:
        sample_images = train_images[: config.parity_examples]
    budget = _decoding_budget(config, examples)
    sidecar = _sidecar(info, labels, calibrated)

    def write_saved_model(path: str) -> None:
        signatures.write_saved_model(
            model,
            labels,
            image_size,
            config.top_k,
            path,
            calibrated["abstention"],
            prototypes,
            tta_mode,
            budget["max_image_pixels"],
            budget["max_image_frames"],
        )
        if config.warmup_examples:
            try:
                _, warmup_images, _ = sample_split(examples, "val", config.warmup_examples, len(labels))
            except DataError:  # no val split (calibration off): the train images are as good for warming up
                warmup_images = train_images[: config.warmup_examples]
            warmup_requests.write(path, warmup_images)

    source = formats.Source(
        model=model,
        pixels_function=tta.averaged(model, tta_mode),
        labels=labels,
        image_size=image_size,
        representative=preprocess(train_images, image_size),
        properties={k: sidecar[k] for k in ("labels", "image_size", "input", "output", "calibration", "abstention")},
        name=f"transferline image classifier ({info.get('backbone', 'keras')})",
        description=(
            f"Classifies an RGB image ({image_size[0]}x{image_size[1]}, pixels 0-255) into {len(labels)} labels; "
            f"probabilities{' averaged with the mirrored image' if tta_mode == 'flip' else ''}"
        ),
        version=f"model.keras sha256 {file_sha256(trained.model_path())[:16]}",
        write_saved_model=write_saved_model,
        int8_io=config.int8_io,
    )

    with publish_dir(output_dir) as tmp:
        out = ExportedModel(tmp)
        written, runners = [], {}
        for fmt in config.chosen_formats():
            path = out.path(fmt.path)
            fmt.write(source, path)
            runners[fmt.name] = fmt.open(path, None)
            written.append({"name": fmt.name, "path": fmt.path, "bytes": formats.size_of(path), **runners[fmt.name].io})

        # Eager calls in batches of 32: model.predict would trace a predict function for 8 images.
        sample = preprocess(sample_images, image_size)
        reference = np.concatenate(
            [source.pixels_function(sample[i : i + 32]).numpy() for i in range(0, len(sample), 32)]
        )
        report = parity.check(
            reference,
            {
                name: runner.predict_encoded(sample_images)
                for name, runner in runners.items()
                if formats.get(name).parity
            },
            config.parity_tolerance,
            [f"sample image {i}" for i in range(len(sample))],
        )
        del runners
        write_json(out.path(ExportedModel.PARITY), report)
        write_text_atomic(out.path(ExportedModel.LABELS), labels_text(labels))
        write_json(
            out.path(ExportedModel.INFO),
            {
                **info,
                **sidecar,
                "top_k": config.top_k,
                "formats": written,
                "tta": tta_mode,
                "decoding_budget": budget,
            },
        )

    exported = ExportedModel(output_dir)
    final = exported.formats()
    sizes = {entry["name"]: entry["bytes"] for entry in written}
    return ExportResult(output_dir, exported.saved_model_dir(), final, sizes, report, round(time.time() - start, 2))
