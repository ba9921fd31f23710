"""The Keras pieces of the airbench recipe: its schedule, its optimizer and its weight averaging.

Their numbers live in :mod:`cifar_edge.train.recipes` (plain data, importable without Keras).
Both serializable classes are registered as ``cifar_edge>NAME``, the names saved checkpoints carry.
"""

from __future__ import annotations

import keras
from keras import ops

from .recipes import LINEAR_END, LINEAR_START, LINEAR_WARMUP_FRACTION, LOOKAHEAD_BASE, LOOKAHEAD_EVERY


@keras.saving.register_keras_serializable(package="cifar_edge")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """airbench's schedule: ``start * peak`` rising linearly to ``peak`` over ``warmup_fraction`` of
    the steps, then falling linearly to ``end * peak`` at ``total_steps``."""

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float = LINEAR_WARMUP_FRACTION,
                 start: float = LINEAR_START, end: float = LINEAR_END) -> None:
        super().__init__()
        self.peak, self.total_steps = float(peak), max(int(total_steps), 1)
        self.warmup_fraction, self.start, self.end = float(warmup_fraction), float(start), float(end)

    def __call__(self, step):
        t = ops.clip(ops.cast(step, "float32") / self.total_steps, 0.0, 1.0)
        w = max(self.warmup_fraction, 1e-9)
        rising = self.start + (1.0 - self.start) * t / w
        falling = 1.0 + (self.end - 1.0) * (t - w) / max(1.0 - w, 1e-9)
        return self.peak * ops.where(t < w, rising, falling)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction,
                "start": self.start, "end": self.end}


@keras.saving.register_keras_serializable(package="cifar_edge")
class BiasScaledSGD(keras.optimizers.SGD):
    """SGD whose BatchNorm offsets (``beta``) take a ``bias_lr_scale`` times larger learning rate
    (airbench trains them 64x faster); everything else is Keras's SGD."""

    def __init__(self, *args, bias_lr_scale: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bias_lr_scale = float(bias_lr_scale)

    def build(self, variables) -> None:
        super().build(variables)
        # update_step receives the backend's variable (a tf.Variable under TensorFlow, whose name
        # is just "beta:0"), so the offsets are recognised here, by key, from the Keras variables.
        self._offset_keys = {self._var_key(v) for v in variables if _is_norm_offset(v)}

    def update_step(self, gradient, variable, learning_rate):
        if self.bias_lr_scale != 1.0 and self._var_key(variable) in self._offset_keys:
            learning_rate = ops.multiply(learning_rate, self.bias_lr_scale)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "bias_lr_scale": self.bias_lr_scale}


def _is_norm_offset(variable) -> bool:
    return getattr(variable, "path", getattr(variable, "name", "")).endswith("beta")


class Lookahead(keras.callbacks.Callback):
    """airbench's Lookahead/EMA: every 5 steps ``ema = d * ema + (1 - d) * w`` and ``w = ema``, with
    ``d = 0.95**5 * (step / total_steps)**3`` (no averaging early, more late). Covers every model
    weight, BatchNorm statistics included. A resumed run restarts the average from the saved weights."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = max(int(total_steps), 1)
        self._ema: list | None = None

    def on_train_begin(self, logs=None) -> None:
        self._ema = [ops.copy(w.value) for w in self.model.weights]

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % LOOKAHEAD_EVERY and step != self.total_steps:
            return
        decay = LOOKAHEAD_BASE * min(step / self.total_steps, 1.0) ** 3
        for i, weight in enumerate(self.model.weights):
            if not weight.trainable and "moving" not in weight.path:
                continue  # frozen filters (whitening) stay as they are
            ema = self._ema[i] * decay + weight.value * (1.0 - decay)
            self._ema[i] = ema
            weight.assign(ema)
