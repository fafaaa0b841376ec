"""`--tfds-name`: turn a TFDS image-classification dataset into a class-per-folder tree.

Writing the dataset's encoded images (never decoded: `SkipDecoding`) into a temporary folder
lets them go through exactly the same validation, dedupe and stable split assignment as a
user's folder. The dataset's own splits are pooled and re-split stratified per class by our
fractions, so that every split holds every class and the split of an image is remembered.
"""

import os

from components.common import fileio
from components.common.errors import DataError, UsageError

OFFLINE_HINT = (
    "TFDS downloads a dataset the first time it is used; offline, or for your own images, export "
    "them to a folder with one sub-folder per class and pass --data-dir PATH instead"
)


def _extension(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    return ".img"  # the ingest tells formats by content; the name is only for people


def _builder(name: str, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise UsageError(f"--tfds-name {name!r} is not a TFDS dataset ({str(e).splitlines()[0]})") from None
    try:
        builder.download_and_prepare()
    except Exception as e:  # noqa: BLE001 - download/prepare fails in many ways offline
        raise DataError(
            f"could not download or prepare TFDS dataset {name!r} ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}): {OFFLINE_HINT}"
        ) from None
    return builder


def materialise(name: str, data_dir, staging: str) -> str:
    """Write every image of TFDS dataset `name` (all splits) to `staging/<name>/<class>/<n>.<ext>`; return the folder."""
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise UsageError(
            f"--tfds-name {name!r} has no (image, label) supervised keys: it is not an image-classification dataset"
        )
    image_key, label_key = keys
    image_feature, label_feature = builder.info.features[image_key], builder.info.features[label_key]
    if not isinstance(image_feature, tfds.features.Image) or not isinstance(label_feature, tfds.features.ClassLabel):
        raise UsageError(
            f"--tfds-name {name!r}: {image_key!r} is not an Image or {label_key!r} not a ClassLabel, "
            "so it is not an image-classification dataset"
        )
    names = [n.replace("/", "_") for n in label_feature.names]
    root = os.path.join(staging, name.replace("/", "_"))
    for class_name in names:
        fileio.makedirs(os.path.join(root, class_name))
    dataset = builder.as_dataset(split="all", shuffle_files=False, decoders={image_key: tfds.decode.SkipDecoding()})
    for index, example in enumerate(dataset.as_numpy_iterator()):
        data = example[image_key]
        path = os.path.join(root, names[int(example[label_key])], f"{index:07d}{_extension(data)}")
        with fileio.GFile(path, "wb") as f:  # the ingest's temporary output: any filesystem
            f.write(data)
    return root
