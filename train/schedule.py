"""Learning-rate schedule: linear warm-up, then cosine decay to zero (a one-cycle shape)."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cifar_edge")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * step / warmup`` for the first ``warmup_steps``, then cosine down to ``peak * final_fraction``.

    The schedule is a function of the optimizer's step counter only, which is
    saved in checkpoints, so a resumed run follows exactly the same curve.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int, final_fraction: float = 0.0,
                 start_fraction: float = 0.1) -> None:
        super().__init__()
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.final_fraction = float(final_fraction)
        self.start_fraction = float(start_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        warm_lr = self.peak * (self.start_fraction + (1.0 - self.start_fraction) * step / warm)
        decay_len = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay_len, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decay_lr = self.peak * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
        return ops.where(step < self.warmup_steps, warm_lr, decay_lr)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_fraction": self.final_fraction,
            "start_fraction": self.start_fraction,
        }
