"""Knowledge distillation (Hinton et al. 2015) for models that output probabilities.

The teacher's probabilities (:func:`teacher_targets`, computed once) travel with each training
batch, after the labels: ``y = [one-hot | teacher probabilities]``. :class:`DistillationLoss` mixes the hard-label
cross-entropy with ``T**2 * KL(teacher_T || student_T)`` where ``x_T = softmax(log(x) / T)``;
``log`` of a softmax output is the logits up to a constant, so this is exactly the soft-target
loss on logits at temperature ``T`` and the models need no logits output. Batches holding only
labels (validation) get the hard-label loss alone.

Keras 3.15's ``keras.distillation.Distiller`` was not used: it wraps the student in a new model
(so checkpoints and exports would hold the wrapper) and its ``LogitsDistillation`` expects logits
outputs, while every model here ends in a Softmax layer that the SDK relies on.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from edge_sdk.spec import PreprocessSpec

from .evaluation import keras_probabilities

_EPS = 1e-7


@keras.saving.register_keras_serializable(package="cifar_edge")
class DistillationLoss(keras.losses.Loss):
    """``(1 - alpha) * CE(labels, p) + alpha * T**2 * KL(q_T || p_T)`` (see the module docstring)."""

    def __init__(self, num_classes: int, temperature: float = 4.0, alpha: float = 0.9,
                 label_smoothing: float = 0.0, name: str = "distillation_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.temperature, self.alpha = int(num_classes), float(temperature), float(alpha)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = y_true[:, : self.num_classes]
        hard = keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)
        if y_true.shape[-1] == self.num_classes:
            return hard
        teacher = y_true[:, self.num_classes:]
        t = self.temperature
        soft_teacher = ops.softmax(ops.log(ops.clip(teacher, _EPS, 1.0)) / t, axis=-1)
        log_student = ops.log_softmax(ops.log(ops.clip(y_pred, _EPS, 1.0)) / t, axis=-1)
        kl = ops.sum(soft_teacher * (ops.log(ops.clip(soft_teacher, _EPS, 1.0)) - log_student), axis=-1)
        return (1.0 - self.alpha) * hard + self.alpha * t * t * kl

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "temperature": self.temperature,
                "alpha": self.alpha, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="cifar_edge")
def label_accuracy(y_true, y_pred):
    """Top-1 accuracy against the one-hot part of ``y_true`` (teacher columns, if any, ignored)."""
    labels = y_true[:, : y_pred.shape[-1]]
    return ops.cast(ops.equal(ops.argmax(labels, axis=-1), ops.argmax(y_pred, axis=-1)), "float32")


def accuracy_metric() -> keras.metrics.Metric:
    """The ``accuracy`` metric for batches with or without teacher columns."""
    return keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")


TEACHER_BATCH = 500


def teacher_targets(teacher: keras.Model, images: np.ndarray, spec: PreprocessSpec,
                    batch_size: int = TEACHER_BATCH) -> np.ndarray:
    """The teacher's probabilities for each un-augmented image, averaged with its mirror image's.

    Computed once before training (one teacher pass over the data instead of one per epoch: the
    teacher costs ~10x the student's MACs), and paired with every augmented view of the image.
    The views differ by a 2-pixel shift, a mirror and mild photo changes, which leave the class
    (and nearly the teacher's belief) unchanged; the flip average makes the targets a little better
    than the teacher's single view.
    """
    return (keras_probabilities(teacher, images, spec, batch_size)
            + keras_probabilities(teacher, images[:, :, ::-1], spec, batch_size)) / 2.0
