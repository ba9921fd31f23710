"""The fast lane's guard (tests/slow_guard/sitecustomize.py): a test that trains or converts a Keras
model without ``@pytest.mark.slow`` fails, in-process and in the subprocesses it starts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

slow_guard = sys.modules["cifar_edge_slow_guard"]  # loaded by conftest.py

FIT_ONE_STEP = (
    "import numpy as np, keras\n"
    "model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
    "model.compile('sgd', 'mse')\n"
    "model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0)\n"
    "print('trained')\n"
)


def _tiny_model():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_fit_fails_in_a_test_not_marked_slow():
    model = _tiny_model()
    with pytest.raises(slow_guard.NotMarkedSlowError, match="test_fit_fails_in_a_test_not_marked_slow"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0)


def test_conversions_are_guarded_once_their_modules_are_imported():
    import tensorflow as tf

    with pytest.raises(slow_guard.NotMarkedSlowError, match="converts a Keras model to TFLite"):
        tf.lite.TFLiteConverter.from_keras_model(_tiny_model())
    tf2onnx = pytest.importorskip("tf2onnx")
    import tf2onnx.convert  # noqa: F401

    with pytest.raises(slow_guard.NotMarkedSlowError, match="converts a Keras model to ONNX"):
        tf2onnx.convert.from_keras(_tiny_model())


def test_a_subprocess_of_a_test_not_marked_slow_cannot_train_either():
    result = subprocess.run([sys.executable, "-c", FIT_ONE_STEP], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "is not marked slow" in result.stderr
    assert "trained" not in result.stdout


@pytest.mark.slow
def test_a_slow_test_trains_in_process_and_in_subprocesses():
    model = _tiny_model()
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    result = subprocess.run([sys.executable, "-c", FIT_ONE_STEP], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("trained"), result.stderr
