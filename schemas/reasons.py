"""Why a file did not make it into an ingest: the reasons of `rejected.csv` and `stats.json`.

One list for the whole project: the ingest's decoder returns the content reasons, its scan and
dedupe add the others, and the data validation tells a broken upload from a harmless duplicate.
"""

EMPTY = "empty"  # zero bytes
UNREADABLE = "unreadable"  # the file could not be read (permissions, I/O error, dangling link)
NOT_IMAGE = "not_image"  # the bytes are not an image in any format we know
TRUNCATED = "truncated"  # an image that does not fully decode: truncated or corrupt data
UNSUPPORTED_FORMAT = "unsupported_format"  # an image, but in a format we do not accept
TOO_SMALL = "too_small"  # shorter side below min_side
TOO_LARGE = "too_large"  # more pixels than max_pixels (decompression-bomb guard)
DUPLICATE = "duplicate"  # same content as another file of the same class (one copy is kept)
LABEL_CONFLICT = "label_conflict"  # same content in two classes (every copy is rejected)
BAD_FILENAME = "bad_filename"  # the file's name is not valid UTF-8 (it cannot be stored as text)

REJECT_REASONS = (
    EMPTY,
    UNREADABLE,
    NOT_IMAGE,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    TOO_SMALL,
    TOO_LARGE,
    DUPLICATE,
    LABEL_CONFLICT,
    BAD_FILENAME,
)
HARMLESS = frozenset({DUPLICATE})  # reasons that are no sign of a broken upload
