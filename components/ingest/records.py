"""tf.Example serialisation and TFRecord framing in plain Python, for the Beam workers.

Importing TensorFlow only for `tf.train.Example` and `TFRecordWriter` cost ~14 s per
`multi_processing` worker on the shared 2-core machine (measured), longer than ingesting 2,000
images; so the writing step does not need it. (`decode.py` may still import TensorFlow for its
own reasons; this module keeps the writer independent of that.) `tf.train.Example` is a
three-level protobuf (Example -> Features -> map<string, Feature>), so its wire format is
written here directly, and records are framed with Beam's own TFRecord coder (the one
`WriteToTFRecord` uses, with a C crc32c). tests/test_ingest_records.py checks the bytes equal
TensorFlow's, and the pipeline tests parse every record back with the schema's feature spec.
"""

import functools
from typing import Mapping, Union

# Private API, on purpose: Beam's TFRecord framing (with its C crc32c) is what `WriteToTFRecord` uses,
# but Beam exposes it only through that sink, which holds every record in memory on the
# DirectRunner when sharded. tests/test_private_apis.py fails loudly if it moves or changes.
from apache_beam.io.tfrecordio import _TFRecordUtil

_U64 = (1 << 64) - 1
_SMALL = [bytes((i,)) for i in range(0x80)]


def _varint(value: int) -> bytes:
    if value < 0x80:  # tags and most lengths: one byte
        return _SMALL[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2) with its one-byte `tag` (field number << 3 | 2)."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


_F1, _F2, _F3 = b"\x0a", b"\x12", b"\x1a"  # tags of fields 1, 2 and 3 (wire type 2)


@functools.lru_cache(maxsize=None)
def _key(name: str) -> bytes:
    return _field(_F1, name.encode())  # the map entry's key (field 1)


def _feature(value: Union[bytes, int]) -> bytes:
    """A `tf.train.Feature` holding one bytes value (bytes_list = 1) or one int64 (int64_list = 3)."""
    if isinstance(value, bytes):
        return _field(_F1, _field(_F1, value))  # BytesList.value = 1
    return _field(_F3, _field(_F1, _varint(value & _U64)))  # Int64List.value = 1, packed


def serialize_example(features: Mapping[str, Union[bytes, int]]) -> bytes:
    """The bytes of `tf.train.Example(features=...)` for scalar bytes/int features (called once per image)."""
    entries = b"".join(
        _field(_F1, _key(name) + _field(_F2, _feature(features[name])))  # Features.feature entry
        for name in sorted(features)
    )
    return _field(_F1, entries)  # Example.features = 1


def write_record(file_handle, record: bytes) -> int:
    """Append one framed TFRecord to an open binary file; return the bytes written."""
    _TFRecordUtil.write_record(file_handle, record)
    return _TFRecordUtil.encoded_num_bytes(record)
