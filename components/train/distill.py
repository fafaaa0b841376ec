"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student trained on a teacher's softened
probabilities as well as the labels.

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)
    p_T  = softmax(log p / T)

(the Keras "Knowledge Distillation" example's loss; our models end in a softmax, so log p stands
in for the logits, which it equals up to a constant that the softmax ignores). The teacher runs in
inference mode on the very batch the student sees, after augmentation, MixUp and CutMix included
(Beyer et al., 2022: a consistent teacher distils better than soft labels computed once), resized
to its own input size when that differs. The targets carry both parts, concatenated: the labels
[batch, C] then the teacher's probabilities [batch, C]; the loss and `LabelAccuracy`
(components/train/stages.py) split them, so the trainer's stages, cached head features,
callbacks and resume work unchanged. The cached head stage computes the teacher's probabilities
once per image with the features.
"""

import os

import keras
import tensorflow as tf

from components.common.errors import DataError, UsageError
from schemas.artifacts import Model


def teacher_path(teacher: str) -> str:
    """The teacher's model.keras (given the file or its train folder); UsageError when there is none."""
    path = teacher if teacher.endswith(".keras") else os.path.join(teacher, Model.MODEL)
    if not tf.io.gfile.exists(path):
        raise UsageError(
            f"train.distill.teacher={teacher}: no {os.path.basename(path)} there; give a model.keras "
            "this pipeline trained (PIPELINE_ROOT/train/<id>/model.keras) or its folder"
        )
    return path


def load_teacher(teacher: str, labels: list) -> keras.Model:
    """The teacher, frozen; DataError when its classes are not the data's (read from its model_info.json)."""
    path = teacher_path(teacher)
    info_dir = Model(os.path.dirname(path))
    if info_dir.exists(Model.INFO):
        theirs = info_dir.info().get("labels")
        if theirs is not None and list(theirs) != list(labels):
            raise DataError(
                f"train.distill.teacher {path} was trained on the classes {theirs}, the data has "
                f"{labels}: a teacher must know the same classes in the same order"
            )
    model = keras.models.load_model(path, compile=False)
    if model.output_shape[-1] != len(labels):
        raise DataError(
            f"train.distill.teacher {path} has {model.output_shape[-1]} outputs, the data has {len(labels)} classes"
        )
    model.trainable = False
    return model


def with_teacher(dataset: tf.data.Dataset, teacher: keras.Model) -> tf.data.Dataset:
    """(images, labels) batches -> (images, concat(labels, the teacher's probabilities on those images))."""
    size = tuple(teacher.input_shape[1:3])

    def add_teacher(images, labels):
        seen = images if tuple(images.shape[1:3]) == size else tf.image.resize(images, size)
        probabilities = tf.cast(teacher(seen, training=False), labels.dtype)
        return images, tf.concat([labels, probabilities], axis=-1)

    return dataset.map(add_teacher)


@keras.saving.register_keras_serializable(package="transferline")
class DistillationLoss(keras.losses.Loss):
    """Hinton's loss over targets that hold the labels then the teacher's probabilities."""

    def __init__(
        self, num_classes: int, temperature: float, alpha: float, label_smoothing: float = 0.0, name: str = "loss"
    ):
        super().__init__(name=name)
        self.num_classes, self.temperature, self.alpha = num_classes, temperature, alpha
        self.label_smoothing = label_smoothing

    def get_config(self):  # model.keras saves the compiled loss: loading rebuilds this one
        return {
            "num_classes": self.num_classes,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "label_smoothing": self.label_smoothing,
            "name": self.name,
        }

    def call(self, y_true, y_pred):
        labels, teacher = y_true[:, : self.num_classes], y_true[:, self.num_classes :]
        hard = keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)
        eps = keras.backend.epsilon()
        soft_teacher = tf.nn.softmax(tf.math.log(tf.clip_by_value(teacher, eps, 1.0)) / self.temperature)
        log_soft_student = tf.nn.log_softmax(tf.math.log(tf.clip_by_value(y_pred, eps, 1.0)) / self.temperature)
        kl = tf.reduce_sum(
            soft_teacher * (tf.math.log(tf.clip_by_value(soft_teacher, eps, 1.0)) - log_soft_student), axis=-1
        )
        return self.alpha * hard + (1 - self.alpha) * self.temperature**2 * kl
