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
# A manifest's rows (components/ingest/manifest.py):
MISSING = "missing"  # the row names a local file that does not exist
BAD_ROW = "bad_row"  # not UTF-8, too long, unparseable, no path, a path leaving the folder, an unknown split
BAD_LABEL = "bad_label"  # no label, or one that is blank or holds control characters
DUPLICATE_ROW = "duplicate_row"  # the same path and label as an earlier row (that one is kept)
ROW_CONFLICT = "row_conflict"  # the same path with different labels or splits (every such row)

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
    MISSING,
    BAD_ROW,
    BAD_LABEL,
    DUPLICATE_ROW,
    ROW_CONFLICT,
)
HARMLESS = frozenset({DUPLICATE, DUPLICATE_ROW})  # reasons that are no sign of a broken upload
