"""The TF-free tf.Example encoder writes exactly what TensorFlow's own protobuf writes."""

import tensorflow as tf

from components.ingest import records


def test_serialized_example_equals_tensorflows():
    features = {"image": b"\xff\xd8\x00bytes", "label": 7, "height": 300, "big": 2**40, "neg": -3, "empty": b""}
    ours = records.serialize_example(features)
    theirs = tf.train.Example(
        features=tf.train.Features(
            feature={
                k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
                if isinstance(v, bytes)
                else tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
                for k, v in features.items()
            }
        )
    )
    assert tf.train.Example.FromString(ours) == theirs


def test_framed_records_read_back_with_tensorflow(tmp_path):
    path = str(tmp_path / "x.tfrecord")
    with open(path, "wb") as f:
        sizes = [records.write_record(f, records.serialize_example({"label": i})) for i in range(3)]
    assert sum(sizes) == len(open(path, "rb").read())
    labels = [
        tf.train.Example.FromString(r.numpy()).features.feature["label"].int64_list.value[0]
        for r in tf.data.TFRecordDataset(path)
    ]
    assert labels == [0, 1, 2]
