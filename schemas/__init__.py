"""The example schema (`image_example.pbtxt`) and the parsing spec derived from it.

The text proto is the single source of truth: the ingest writes exactly these features, the
trainer and the exporter parse with `feature_spec()`, and TFMA reads the same records.
"""

import functools
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "image_example.pbtxt")


@functools.lru_cache(maxsize=None)
def load_schema() -> schema_pb2.Schema:
    """Parse `image_example.pbtxt` into a tensorflow-metadata `Schema`."""
    with open(SCHEMA_PATH) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def feature_spec(*names: str) -> dict:
    """`tf.io.parse_example` spec: one scalar `FixedLenFeature` per schema feature (only `names`, if given:
    a reader that needs two features parses two, and a serving client's example need carry no more)."""
    import tensorflow as tf  # here, not at the top: Beam workers import `schemas` and must not load TensorFlow

    dtypes = {schema_pb2.BYTES: tf.string, schema_pb2.INT: tf.int64, schema_pb2.FLOAT: tf.float32}
    spec = {}
    for feature in load_schema().feature:
        if names and feature.name not in names:
            continue
        dims = [d.size for d in feature.shape.dim]
        if dims != [1]:
            raise ValueError(f"schema feature {feature.name!r}: only scalar features are supported")
        spec[feature.name] = tf.io.FixedLenFeature([], dtypes[feature.type])
    unknown = sorted(set(names) - set(spec))
    if unknown:
        raise ValueError(f"feature_spec: {unknown} are not features of {SCHEMA_PATH}")
    return spec


def tfds_features(labels):
    """The TFDS `FeaturesDict` of the same schema, for the dataset_info.json/features.json we write.

    `image` is TFDS's Image (so `builder_from_directory` decodes it), `label` a ClassLabel over
    `labels`; every other feature maps from its schema type (BYTES → Text, INT → int64 Scalar).
    """
    import numpy as np
    import tensorflow_datasets as tfds

    special = {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(names=list(labels)),
    }
    by_type = {schema_pb2.BYTES: tfds.features.Text, schema_pb2.INT: lambda: tfds.features.Scalar(dtype=np.int64)}
    return tfds.features.FeaturesDict(
        {f.name: special[f.name] if f.name in special else by_type[f.type]() for f in load_schema().feature}
    )
