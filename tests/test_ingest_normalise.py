"""Every normalisation case end to end: the record the ingest stored decodes, with TensorFlow's
own decoder, to 8-bit RGB of the expected size and orientation. ONE ingest run over the fixture
tree (shared with test_ingest_rejects.py in the same process); the accounting invariant is
asserted in every test.
"""

import image_fixtures as fx
import numpy as np
import pytest
import tensorflow as tf

CASES = {**{name: spec for name, spec in fx.NORMALISE_CASES.items()}, "resized": fx.RESIZE_CASE}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fx.ingest_fixture_tree(str(tmp_path_factory.mktemp("fixture-tree")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_stored_record_decodes_to_8bit_rgb(tree, case):
    fx.assert_accounting(tree.stats)
    spec = CASES[case]
    path = f"{fx.CLASSES[0]}/{spec.file_name}"
    assert path in tree.records, f"{case}: {path} was not kept ({tree.rejected.get(path)})"
    record = tree.records[path]
    pixels = tf.io.decode_image(record["image"], expand_animations=False).numpy()
    assert pixels.dtype == np.uint8 and pixels.shape == spec.size + (3,)
    assert (record["height"], record["width"]) == spec.size
    assert record["format"].decode() == spec.stored_format
    for (row, col), rgb in spec.expect.items():
        diff = np.abs(pixels[row, col].astype(int) - np.array(rgb))
        assert diff.max() <= spec.tolerance, f"pixel {(row, col)} is {pixels[row, col]}, expected {rgb}"
    manifest = tree.manifest[path]
    assert (int(manifest["height"]), int(manifest["width"]), manifest["format"]) == spec.size + (spec.stored_format,)


@pytest.mark.parametrize("case", [c for c, spec in sorted(CASES.items()) if spec.original])
def test_unchanged_files_are_stored_byte_for_byte(tree, case):
    fx.assert_accounting(tree.stats)
    path = f"{fx.CLASSES[0]}/{CASES[case].file_name}"
    with open(f"{tree.data_dir}/{path}", "rb") as f:
        assert tree.records[path]["image"] == f.read()


def test_exif_rotation_is_visible_in_the_record(tree):
    """The 48x32 photo tagged orientation 6 is stored upright as 32x48 with its red corner top-right."""
    fx.assert_accounting(tree.stats)
    record = tree.records[f"{fx.CLASSES[0]}/{fx.NORMALISE_CASES['exif_rotated_jpeg'].file_name}"]
    pixels = tf.io.decode_image(record["image"]).numpy()
    assert pixels.shape == (48, 32, 3)
    assert pixels[2, 29, 0] > 200 and pixels[2, 29, 2] < 60  # red, top-right
    assert pixels[2, 2, 0] < 60  # the top-left is not red
