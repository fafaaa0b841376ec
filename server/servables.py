"""The versions of one model that the server holds, following its directory as TF Serving does.

TF Serving's default version policy serves the latest version: every poll of the model's base
directory looks for the newest integer version; a new one is loaded, its warm-up requests
(`assets.extra/tf_serving_warmup_requests`) are replayed, and only then does it replace the
version being served (availability-preserving: there is always a version answering). A version
that fails to load or to warm up is reported (state END with its error) and never served; the
previous one stays. Versions being written are invisible: the pusher writes a '.tmp-' sibling and
renames it (components/push/pusher.py).

Each version's decoding signatures (`serving_default` takes encoded images, `serve_tf_examples`
tf.Examples holding them) have their images' sizes checked and counted before a request is
admitted (`Servable.decoded_pixels`), with the budget the model was exported with.
"""

import dataclasses
import logging
import os
import threading
import time

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from components.common import decoding_budget, fileio, image_limits, warmup_requests
from schemas.artifacts import ServingModel, ServingVersion
from server.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)
DEFAULT_SIGNATURE = "serving_default"
_INIT_OP = "__saved_model_init_op"
DECODING_INPUTS = {"serving_default": "images", "serve_tf_examples": "examples"}  # signature: its encoded input
_STRINGS = tf.TensorSpec([None], tf.string)
_LIMIT = tf.TensorSpec([], tf.int64)


@tf.function(input_signature=[_STRINGS, _LIMIT, _LIMIT])
def _image_problems(images, max_pixels, max_frames):
    return image_limits.problems(images, max_pixels, max_frames)


def _example_images(examples: np.ndarray) -> np.ndarray:
    """The encoded `image` of each serialized tf.Example (the feature `serve_tf_examples` parses), read with
    protobuf: a malformed one is refused naming it without a TensorFlow error (image_limits.problems says
    why that matters)."""
    images = []
    for i, serialized in enumerate(examples):
        try:
            feature = tf.train.Example.FromString(serialized).features.feature
        except DecodeError:
            raise InvalidArgument(f"example {i}: not a serialized tf.Example") from None
        values = feature["image"].bytes_list.value if "image" in feature else []
        if len(values) != 1:
            raise InvalidArgument(f"example {i}: needs an 'image' feature holding one encoded image (bytes_list)")
        images.append(values[0])
    return np.array(images, dtype=object)


def _signature_def_map(saved_model_dir: str):
    """The SavedModel's SignatureDefMap as TF Serving's metadata call answers it."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in saved.meta_graphs[0].signature_def.items():
        if name != _INIT_OP:
            signatures.signature_def[name].CopyFrom(signature)
    return signatures


class Servable:
    """One loaded version: its signatures, their input specs and method names, and its metadata."""

    def __init__(self, version: int, path: str):
        self.version, self.path = version, path
        self._loaded = tf.saved_model.load(fileio.glob_safe(path))
        self.signatures = {name: fn for name, fn in self._loaded.signatures.items()}
        self.input_specs = {name: fn.structured_input_signature[1] for name, fn in self.signatures.items()}
        self.signature_def_map = _signature_def_map(path)  # the proto (gRPC) and its JSON (REST, proto field names)
        self.signature_def = json_format.MessageToDict(self.signature_def_map, preserving_proto_field_name=True)
        self.method_names = {
            name: s.get("method_name", "") for name, s in self.signature_def.get("signature_def", {}).items()
        }
        # a model exported before the budget existed gets today's defaults (its graph does not check)
        # traced once here, not by concurrent first requests; called as concrete functions (370 us a call
        # against 600 through tf.function's dispatch)
        self._problems = _image_problems.get_concrete_function()
        saved = {name: getattr(self._loaded, name, None) for name in ("max_image_pixels", "max_image_frames")}
        self.max_image_pixels = (
            int(saved["max_image_pixels"].numpy())
            if saved["max_image_pixels"] is not None
            else decoding_budget.MAX_PIXELS
        )
        self.max_image_frames = (
            int(saved["max_image_frames"].numpy())
            if saved["max_image_frames"] is not None
            else decoding_budget.MAX_FRAMES
        )

    def decoded_pixels(self, signature: str, inputs: dict):
        """[batch] pixels each image of a decoding signature's request will decode to, or InvalidArgument
        naming the first image over the model's budget (the signatures' own message); None for a
        signature that decodes nothing."""
        name = DECODING_INPUTS.get(signature)
        if name not in inputs:
            return None
        images = inputs[name] if signature == "serving_default" else _example_images(inputs[name])
        pixels, messages = self._problems(
            tf.constant(images),
            tf.constant(self.max_image_pixels, tf.int64),
            tf.constant(self.max_image_frames, tf.int64),
        )
        refused = [m for m in messages.numpy() if m]
        if refused:
            raise InvalidArgument(refused[0].decode("utf-8", "replace"))
        return pixels.numpy()

    def run(self, signature: str, inputs: dict) -> dict:
        """{output: numpy array} for {input: numpy array}; TensorFlow's errors pass through."""
        outputs = self.signatures[signature](**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    def warm_up(self) -> int:
        """Replay the version's warm-up requests (as TF Serving does before serving it); their count."""
        file_path = os.path.join(self.path, ServingVersion.WARMUP)
        if not tf.io.gfile.exists(file_path):
            return 0
        requests = warmup_requests.read(file_path)
        for request in requests:
            signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            self.run(signature, {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
        return len(requests)


@dataclasses.dataclass
class VersionStatus:
    """One entry of TF Serving's `model_version_status`."""

    version: int
    state: str  # LOADING, AVAILABLE, UNLOADING, END (TF Serving's ModelVersionStatus.State)
    error: str = ""

    def as_json(self) -> dict:
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {"error_code": "UNKNOWN" if self.error else "OK", "error_message": self.error},
        }


class ModelVersions:
    """The model NAME at `base_path`: which version is served, and the status of every version seen."""

    def __init__(self, name: str, base_path: str, on_load=None):
        """on_load(version, ok): called after each load attempt (the metrics count them)."""
        self.name, self.base_path, self._on_load = name, base_path, on_load or (lambda version, ok: None)
        self._directory = ServingModel(os.path.dirname(base_path.rstrip("/")), os.path.basename(base_path.rstrip("/")))
        self._serving: Servable | None = None
        self._status: dict = {}
        self._lock = threading.Lock()

    def servable(self, version: int | None = None) -> Servable:
        """The served version (or `version`, if it is the one served); NotFound in TF Serving's words."""
        serving = self._serving
        if serving is None:
            raise NotFound(f"Servable not found for request: Latest({self.name})")
        if version is not None and version != serving.version:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return serving

    def statuses(self, version: int | None = None) -> list:
        with self._lock:
            found = [s.as_json() for v, s in sorted(self._status.items(), reverse=True) if version in (None, v)]
        if not found:
            raise NotFound(
                f"Could not find any versions of model {self.name}"
                if version is None
                else f"Could not find version {version} of model {self.name}"
            )
        return found

    def _set(self, version: int, state: str, error: str = "") -> None:
        with self._lock:
            self._status[version] = VersionStatus(version, state, error)

    def poll(self) -> None:
        """Load the newest version on disk if it is new (never one that failed), then serve it."""
        with self._lock:
            failed = {v for v, s in self._status.items() if s.error}
        candidates = [v for v in self._directory.versions() if v not in failed]
        if not candidates or (self._serving is not None and self._serving.version == candidates[-1]):
            return
        version = candidates[-1]
        path = os.path.join(self.base_path, str(version))
        self._set(version, "LOADING")
        started = time.monotonic()
        try:
            servable = Servable(version, path)
            replayed = servable.warm_up()
        except Exception as e:  # any load or warm-up failure: this version is never served
            message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            self._set(version, "END", message)
            log.error("model %s version %d failed to load and will not be served: %s", self.name, version, message)
            self._on_load(version, False)
            return
        previous, self._serving = self._serving, servable
        self._set(version, "AVAILABLE")
        self._on_load(version, True)
        log.info(
            "model %s version %d is serving (loaded in %.1f s, %d warm-up requests replayed)",
            self.name,
            version,
            time.monotonic() - started,
            replayed,
        )
        if previous is not None:
            self._set(previous.version, "END")
            log.info("model %s version %d unloaded", self.name, previous.version)


class Poller:
    """Polls the model's directory every `seconds` in a daemon thread until `stop()`."""

    def __init__(self, versions: ModelVersions, seconds: float):
        self._versions, self._seconds = versions, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="version-poller", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._versions.poll()
            except Exception:  # a transient filesystem error must not end the polling
                log.exception("polling %s failed; retrying in %.0f s", self._versions.base_path, self._seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
