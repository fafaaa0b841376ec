"""split_reader.sample_split: calibration and parity samples that cover every class (issue 11).

Shards hold records in path order, so each class is contiguous; the first N records of a split
are the first class or two. The int8 calibrator and the parity check used to take exactly those.
"""

import numpy as np
import pytest

from components.common.errors import DataError
from schemas.artifacts import Examples
from schemas.split_reader import read_split, sample_split
from tests.ingest_format import write_synthetic_ingest_dir


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return Examples(
        write_synthetic_ingest_dir(
            tmp_path_factory.mktemp("s") / "ingest", labels=("a", "b", "c", "d"), per_split={"train": 10, "test": 3}
        )
    )


def test_the_first_records_of_a_split_are_one_class(examples):
    """Why the sampler exists: the plain prefix of the split misses classes."""
    _, _, labels = read_split(examples, "train", limit=8)
    assert len(set(labels.tolist())) < 4


def test_sample_covers_every_class_evenly_in_interleaved_order(examples):
    serialized, images, labels = sample_split(examples, "train", 8, 4)
    assert labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len(serialized) == len(images) == 8
    full, _, full_labels = read_split(examples, "train")
    for record, label in zip(serialized, labels):  # the records themselves, with their own labels
        assert full_labels[full.index(record)] == label


def test_sample_rounds_shares_up_and_trims_to_count(examples):
    _, _, labels = sample_split(examples, "train", 6, 4)  # shares of 2, trimmed to 6
    assert labels.tolist() == [0, 1, 2, 3, 0, 1]


def test_a_class_with_fewer_images_than_its_share_gives_what_it_has(examples):
    _, _, labels = sample_split(examples, "test", 100, 4)  # 3 per class exist
    assert np.bincount(labels).tolist() == [3, 3, 3, 3]


def test_a_missing_split_is_a_data_error(examples):
    with pytest.raises(DataError, match="no 'val' split"):
        sample_split(examples, "val", 8, 4)
