"""What the ingest step may be told, validated once before any file is read.

A bad value is a `UsageError` (exit 2) that names the field, the value and the allowed range,
so a user fixes the flag instead of reading a traceback from deep inside Beam.
"""

import dataclasses
import math
import re
from typing import Mapping, Optional

from components.common.errors import UsageError
from schemas.artifacts import Examples

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _default_splits() -> Mapping[str, float]:
    return {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """Everything the ingest step may be told; validated once, saved with the run.

    data_dir: folder with one sub-folder per class (any Beam/tf.io.gfile path: local, gs://, ...).
    manifest: instead of `data_dir`, a file that names each image and its label (and optionally its
        split): a CSV with `path,label[,split]`, a JSON Lines file in Vertex AI's import schema, or a
        Hugging Face `metadata.jsonl` (components/ingest/manifest.py, docs/data.md); relative paths
        are read from the manifest's folder.
    tfds_name: ingest this TFDS image-classification dataset instead of `data_dir` (needs network
        unless it is already in `tfds_data_dir`); exactly one of the three sources is given.
    tfds_data_dir: where TFDS keeps downloaded/prepared datasets (TFDS's own default when None).
    splits: fraction of each class per split; keys are a subset of train/val/test, values sum to 1.
    min_side: images whose shorter side is below this are rejected as too small.
    max_pixels: images with more pixels than this are rejected (decompression-bomb guard).
    max_side: images with a longer side above it are downscaled (aspect kept, Lanczos after libjpeg's
        DCT scaling) at ingest; None keeps every image at its own size. The default, 512, is what
        the models trained from the records need, not what the camera wrote: 1.3x the largest
        common input size (384: EfficientNetV2-S, EfficientNetB4 at 380), so the default random
        crop (60-100% of the area) still has full resolution, and 5x the default 96. A folder of
        12-megapixel photos then costs what the same photos at 512 px cost (records about 1/50 of
        the camera originals); the original's path and sha256 stay in the manifest. A larger
        train.image_size needs a larger max_side (pipeline/config.py refuses one below it).
    dataset_name: the TFDS name of the written dataset (file names and dataset_info.json).
    split_seed: seeds the order in which new images fill each class's split quotas.
    shard_bytes: target size of one TFRecord shard; the shard count follows from the data size.
    threads: files each Beam worker reads, hashes and decodes at once (0: one per CPU it may use).
        That work runs in C without Python's lock (file reads, sha256, libjpeg), so threads scale
        it within one process, with none of the seconds a worker process costs to start.
    incremental: a rerun reads, hashes and decodes only the files that are new or changed since the
        last ingest (by path, size and modification time) and copies the others' records from it
        (components/ingest/reuse.py); it writes what a full re-ingest writes. Done only when the last
        ingest decoded with the same min_side, max_pixels, max_side and ingest code. False: read
        every file again (the split memory is kept either way).
    """

    data_dir: Optional[str] = None
    manifest: Optional[str] = None
    tfds_name: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    splits: Mapping[str, float] = dataclasses.field(default_factory=_default_splits)
    min_side: int = 16
    max_pixels: int = 50_000_000
    max_side: Optional[int] = 512
    dataset_name: str = "images"
    split_seed: int = 0
    shard_bytes: int = 128 * 1024 * 1024
    threads: int = 0
    incremental: bool = True

    def validate(self) -> None:
        """Raise `UsageError` naming the first bad field."""
        given = {
            k: v
            for k, v in (("data_dir", self.data_dir), ("manifest", self.manifest), ("tfds_name", self.tfds_name))
            if v is not None
        }
        if len(given) != 1:
            raise UsageError(
                "ingest needs exactly one source: --data-dir PATH (a folder with one sub-folder per class), "
                f"--manifest FILE (a CSV or JSON Lines file of images and labels) or --tfds-name NAME; got {given or 'none'}"
            )
        if not self.splits:
            raise UsageError("ingest.splits is empty: give fractions for train/val/test, e.g. 0.8/0.1/0.1")
        unknown = sorted(set(self.splits) - set(Examples.SPLITS))
        if unknown:
            raise UsageError(f"ingest.splits has unknown split(s) {unknown}: allowed names are {list(Examples.SPLITS)}")
        if "train" not in self.splits:
            raise UsageError("ingest.splits must include 'train' (the trainer needs it)")
        for name, fraction in self.splits.items():
            if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1 or math.isnan(fraction):
                raise UsageError(f"ingest.splits[{name!r}] = {fraction!r}: each fraction must be in (0, 1]")
        total = sum(self.splits.values())
        if abs(total - 1.0) > 1e-6:
            raise UsageError(f"ingest.splits fractions sum to {total:g} ({dict(self.splits)}): they must sum to 1")
        _check_int("min_side", self.min_side, 1)
        _check_int("max_pixels", self.max_pixels, 1)
        _check_int("shard_bytes", self.shard_bytes, 1024)
        _check_int("split_seed", self.split_seed, 0)
        _check_int("threads", self.threads, 0)
        if self.max_side is not None:
            _check_int("max_side", self.max_side, self.min_side)
        if self.min_side * self.min_side > self.max_pixels:
            raise UsageError(
                f"ingest.min_side={self.min_side} needs {self.min_side**2} pixels, more than "
                f"ingest.max_pixels={self.max_pixels}: every image would be rejected"
            )
        if not _NAME_RE.match(self.dataset_name):
            raise UsageError(
                f"ingest.dataset_name={self.dataset_name!r}: use lower-case letters, digits and '_', "
                "starting with a letter (it becomes a TFDS dataset name)"
            )

    @property
    def split_names(self) -> tuple:
        """The configured splits in canonical order (train, val, test)."""
        return tuple(s for s in Examples.SPLITS if s in self.splits)


def _check_int(field: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"ingest.{field}={value!r}: must be an integer >= {minimum}")
