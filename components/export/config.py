"""What the export step may be told; validated once before anything is converted."""

import dataclasses

from components.common import decoding_budget, formats
from components.common.errors import UsageError


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Export settings.

    top_k: how many (label, score) pairs the serving signatures return.
    formats: which export formats to write, by name (components/common/formats/: saved_model,
      tflite_float32, tflite_float16, tflite_dynamic_range, tflite_int8, onnx; default: every
      registered format). The SavedModel is always written: serving and the gate read it.
    int8_io: "uint8" (the usual edge-device I/O: raw pixels in, quantized scores out) or
      "float32" (float in/out around an int8 body) for the full-integer model.
    representative_examples: train-split images fed to the int8 calibrator, drawn evenly from
      every class (`schemas.split_reader.sample_split`).
    parity_examples: test-split images (evenly from every class) on which Keras and every float
      format (SavedModel, TFLite float32, ONNX) must agree.
    parity_tolerance: largest allowed absolute difference between their probabilities.
    calibrate: fit temperature scaling on the val split and fold it into the logits layer, so every
      exported model outputs calibrated probabilities (components/export/calibration.py).
    abstain_precision: if set, the abstention threshold is the lowest top-1 probability at which
      the accepted val answers are at least this accurate; below it the signatures' `label`
      output, `pipeline.predict` and the TFLite sidecar say `unknown_label`.
    abstain_coverage: alternatively, the threshold that accepts this fraction of the val images.
    unknown_label: the answer given below the threshold.
    abstain_far_from_training: with abstention on, also answer unknown_label when the image's
      pooled backbone features are farther (cosine) from every class's train prototype than all
      but `far_val_rejection` of the val images: the check for inputs unlike the training data,
      which softmax confidence misses. SavedModel signatures and `pipeline.predict` on it only:
      the TFLite models keep one output (probabilities), so they abstain on confidence alone.
    far_val_rejection: share of the val images the distance check is allowed to reject.
    prototype_examples: train images (evenly from every class) the class prototypes are built from.
    warmup_examples: val images (evenly from every class) written as TF Serving warm-up requests
      into the SavedModel (components/common/warmup_requests.py); 0: none.
    tta: test-time augmentation in every exported model: "flip" averages the probabilities over
      the image and its mirror (two forward passes), "none" does not, "auto" (default) flips when
      the training augmented with flips (components/export/tta.py).
    max_image_pixels: the largest image the serving signatures decode, in decoded pixels (every
      frame of an animation counts), read from the image's header before decoding; larger ones
      are refused with InvalidArgument (components/common/image_limits.py). Decoding and resizing
      take up to 24 bytes a pixel, so the default 12,500,000 (a 12 MP phone photo fits) keeps one
      image under ~300 MB.
    max_image_frames: the most frames of a GIF or animated WebP the signatures decode.
    """

    top_k: int = 3
    formats: tuple = tuple(formats.FORMATS)
    int8_io: str = "uint8"
    representative_examples: int = 100
    parity_examples: int = 8
    parity_tolerance: float = 1e-4
    calibrate: bool = True
    abstain_precision: float | None = None
    abstain_coverage: float | None = None
    unknown_label: str = "unknown"
    abstain_far_from_training: bool = True
    far_val_rejection: float = 0.01
    prototype_examples: int = 2000
    tta: str = "auto"
    warmup_examples: int = 10
    max_image_pixels: int = decoding_budget.MAX_PIXELS
    max_image_frames: int = decoding_budget.MAX_FRAMES

    def validate(self) -> None:
        if self.top_k < 1:
            raise UsageError(f"export.top_k: {self.top_k} must be >= 1")
        unknown = [name for name in self.formats if name not in formats.FORMATS]
        if unknown:
            raise UsageError(f"export.formats: unknown {unknown}; registered: {', '.join(formats.FORMATS)}")
        if self.int8_io not in ("uint8", "float32"):
            raise UsageError(f"export.int8_io: {self.int8_io!r}; allowed: 'uint8' or 'float32'")
        if self.representative_examples < 1:
            raise UsageError(f"export.representative_examples: {self.representative_examples} must be >= 1")
        if self.parity_examples < 1:
            raise UsageError(f"export.parity_examples: {self.parity_examples} must be >= 1")
        if not 0 < self.parity_tolerance < 1:
            raise UsageError(f"export.parity_tolerance: {self.parity_tolerance} must be in (0, 1)")
        if self.abstain_precision is not None and self.abstain_coverage is not None:
            raise UsageError(
                "export.abstain_precision and export.abstain_coverage are both set: the threshold is "
                "fitted for one target; keep one of them"
            )
        for name in ("abstain_precision", "abstain_coverage"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise UsageError(f"export.{name}: {value} must be in (0, 1]")
        if not 0 <= self.far_val_rejection < 0.5:
            raise UsageError(f"export.far_val_rejection: {self.far_val_rejection} must be in [0, 0.5)")
        if self.prototype_examples < 1:
            raise UsageError(f"export.prototype_examples: {self.prototype_examples} must be >= 1")
        if not isinstance(self.warmup_examples, int) or not 0 <= self.warmup_examples <= 1000:
            raise UsageError(
                f"export.warmup_examples: {self.warmup_examples!r} must be an integer from 0 to 1000 "
                "(TF Serving replays at most 1000)"
            )
        for name in ("max_image_pixels", "max_image_frames"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"export.{name}: {getattr(self, name)!r} must be a positive integer")
        if self.tta not in ("auto", "flip", "none"):
            raise UsageError(f"export.tta: {self.tta!r}; allowed: 'auto', 'flip' or 'none'")
        if not self.unknown_label.strip():
            raise UsageError("export.unknown_label is empty: name the answer given below the abstention threshold")

    def chosen_formats(self) -> list:
        """The formats to write, in registry order, the reference (SavedModel) always and first."""
        chosen = [f for f in formats.FORMATS.values() if f.reference or f.name in self.formats]
        return sorted(chosen, key=lambda f: not f.reference)
