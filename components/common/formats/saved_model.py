"""The SavedModel: what TF Serving, `pipeline.serve` and the gate's candidate run.

Its three signatures (encoded images, pixels of any size, tf.Examples) take encoded images and
decode and resize in the graph, so it is the reference the other formats are compared with. The
export writes it with its own signatures (components/export/signatures.py, handed over as
`Source.write_saved_model`); a pushed version is this directory itself.
"""

import os

from components.common.formats.base import Format


class SavedModelRunner:
    """Scores encoded images with a SavedModel's `serving_default` or serialized tf.Examples with
    `serve_tf_examples`, in batches."""

    io = {"input": "string", "output": "float32"}

    def __init__(self, saved_model_dir: str, batch_size: int = 32):
        import tensorflow as tf

        from components.common import fileio
        from components.common.errors import UsageError

        if not tf.io.gfile.exists(os.path.join(saved_model_dir, "saved_model.pb")):
            raise UsageError(f"no SavedModel at {saved_model_dir}: expected {saved_model_dir}/saved_model.pb")
        self.path = saved_model_dir
        self.model = tf.saved_model.load(fileio.glob_safe(self.path))
        self.batch_size = batch_size

    def _run(self, signature: str, key: str, inputs: list, names=("probabilities",)) -> tuple:
        """The signature's `names` outputs over all `inputs`, concatenated batch after batch."""
        import numpy as np
        import tensorflow as tf

        fn = self.model.signatures[signature]
        batches = [
            fn(**{key: tf.constant(inputs[i : i + self.batch_size])}) for i in range(0, len(inputs), self.batch_size)
        ]
        return tuple(np.concatenate([b[name].numpy() for b in batches], axis=0) for name in names)

    def predict_encoded(self, images: list):
        return self._run("serving_default", "images", images)[0]

    def answer_encoded(self, images: list) -> tuple:
        """(probabilities, answers): answers are the signature's `label` output (a class or the unknown label)."""
        probabilities, labels = self._run("serving_default", "images", images, ("probabilities", "label"))
        return probabilities, [label.decode() for label in labels]

    def predict_examples(self, serialized: list):
        return self._run("serve_tf_examples", "examples", serialized)[0]

    def answer_examples(self, serialized: list) -> tuple:
        probabilities, labels = self._run("serve_tf_examples", "examples", serialized, ("probabilities", "label"))
        return probabilities, [label.decode() for label in labels]


def write(source, path: str) -> None:
    source.write_saved_model(path)


def open_runner(path: str, num_threads: int | None = None) -> SavedModelRunner:
    return SavedModelRunner(path)


FORMAT = Format("saved_model", "SavedModel", "saved_model", write, open_runner, parity=True, reference=True)
