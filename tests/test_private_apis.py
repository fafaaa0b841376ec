"""The private APIs the project relies on, each checked where it would break first.

Each is used because no public API serves (the comment at its import says why); if an upgrade
moves or changes one, these tests name it instead of failing somewhere deep in an ingest or export.
"""

import subprocess
import sys

import numpy as np


def test_beam_tfrecord_framing_is_there_and_matches_tensorflow(tmp_path):
    from apache_beam.io import tfrecordio

    assert hasattr(tfrecordio, "_TFRecordUtil"), "apache_beam.io.tfrecordio._TFRecordUtil moved: see records.py"
    import tensorflow as tf

    from components.ingest import records

    path = tmp_path / "r.tfrecord"
    with open(path, "wb") as f:
        written = records.write_record(f, b"abc") + records.write_record(f, b"")
    assert written == path.stat().st_size
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == [b"abc", b""]


def test_convert_variables_to_constants_v2_folds_the_weights():
    import keras
    import tensorflow as tf

    from components.common.formats import tflite

    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    frozen = tflite.frozen_function(model, (4, 4))
    assert not frozen.variables, (
        "convert_variables_to_constants_v2 left variables: see components/common/formats/tflite.py"
    )
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(frozen(tf.constant(pixels))[0].numpy(), model(pixels).numpy(), rtol=1e-5)


def test_importing_the_ingest_transforms_does_not_load_tensorflow():
    """Beam workers import the DoFns; TensorFlow is loaded only when a JPEG is kept as it is."""
    code = (
        "import sys, components.ingest.transforms, components.ingest.records, components.ingest.decode, schemas; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
