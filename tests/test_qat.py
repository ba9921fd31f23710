"""Quantization-aware training (train/qat.py): the rebuilt model computes what its int8 files compute."""

from __future__ import annotations

import logging

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _small_resnet(seed: int = 0):
    """A resnet8-shaped network with random weights and BatchNorm statistics (stem, one residual block with a
    1x1 shortcut, pooling, logits, softmax)."""
    import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = keras.Input((16, 16, 3), name="image")
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(L.Conv2D(8, 3, padding="same", use_bias=False,
                                                                                 name="stem_conv")(inputs)))
    y = L.ReLU(name="b_a_relu")(L.BatchNormalization(name="b_a_bn")(L.Conv2D(12, 3, strides=2, padding="same",
                                                                              use_bias=False, name="b_a_conv")(x)))
    y = L.BatchNormalization(name="b_b_bn")(L.Conv2D(12, 3, padding="same", use_bias=False, name="b_b_conv")(y))
    shortcut = L.Conv2D(12, 1, strides=2, name="b_shortcut")(x)
    x = L.ReLU(name="b_out")(L.Add(name="b_add")([shortcut, y]))
    outputs = L.Softmax(name="probs")(L.Dense(5, name="logits")(L.GlobalAveragePooling2D(name="pool")(x)))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 2.0, n)])
    return model


@pytest.fixture(scope="module")
def qat_model():
    from cifar_edge.train import qat

    rng = np.random.default_rng(1)
    calibration = rng.random((64, 16, 16, 3), dtype=np.float32)
    return qat.quantize_aware(_small_resnet(), calibration)


@pytest.fixture(scope="module")
def images():
    """Pixels as the int8 files take them (uint8 / 255): the input grid of the fake quantization."""
    return (np.random.default_rng(2).integers(0, 256, (200, 16, 16, 3)) / 255.0).astype(np.float32)


def _tflite_outputs(data: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, np.round(images * 255).astype(np.uint8))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_the_rebuilt_model_folds_batchnorm_and_measures_every_stored_tensor(qat_model):
    from cifar_edge.train import qat

    names = {layer.name for layer in qat_model.layers}
    assert not any("_bn" in n and not n.endswith("_fq") for n in names)  # folded into the convolutions
    fake = sorted(n for n in names if n.endswith("_fq"))
    # input, each ReLU, the convolution before the sum, the shortcut, the pooled features; not the float head
    assert fake == sorted(["image_fq", "stem_relu_fq", "b_a_relu_fq", "b_b_bn_fq", "b_shortcut_fq", "b_out_fq",
                           "pool_fq"])
    assert qat.is_quantize_aware(qat_model)
    ranges = [(float(qat_model.get_layer(n).low.numpy()), float(qat_model.get_layer(n).high.numpy())) for n in fake]
    assert all(low <= 0.0 < high for low, high in ranges)
    assert qat_model.get_layer("image_fq").high.numpy() == pytest.approx(1.0, abs=0.02)


def test_int8_tflite_and_onnx_compute_what_the_keras_model_computes(qat_model, images):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from cifar_edge.convert import export

    keras_out = qat_model.predict(images, verbose=0)
    tflite = export.tflite_int8(qat_model, images[:0], tflite_input_type="uint8")
    onnx_bytes = export.onnx_int8(qat_model, images[:0])
    tflite_out = _tflite_outputs(tflite, images)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: images})[0]
    for out in (tflite_out, onnx_out):
        assert out.dtype == np.float32  # the float head
        assert (out.argmax(1) == keras_out.argmax(1)).mean() >= 0.99
        assert np.abs(out - keras_out).max() < 0.02
    assert np.abs(tflite_out - onnx_out).max() < 0.01  # the same integers in both runtimes
    kernels = [numpy_helper.to_array(t) for t in onnx.load_from_string(onnx_bytes).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(kernels) == 4 and all(np.abs(k).max() <= 63 for k in kernels)  # 7-bit values: no u8s8 saturation


def test_a_quantization_aware_model_saves_and_loads(qat_model, images, tmp_path):
    from cifar_edge.train.training import load_keras_model

    path = tmp_path / "qat.keras"
    qat_model.save(path)
    again = load_keras_model(path)
    np.testing.assert_allclose(again.predict(images, verbose=0), qat_model.predict(images, verbose=0), atol=1e-6)


def test_an_unsupported_layer_is_named():
    import keras

    from cifar_edge.train import qat
    from edge_sdk.errors import EdgeSDKError

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten(name="flat")(inputs)))
    with pytest.raises(EdgeSDKError, match="flat"):
        qat.quantize_aware(model, np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(EdgeSDKError, match="calibration"):
        qat.quantize_aware(model, np.zeros((0, 8, 8, 3), np.float32))


def test_qat_fine_tunes_a_trained_model_and_converts_to_int8_files_only(tmp_path, cifar10_dir, session_cache, caplog):
    from cifar_edge.convert.converter import ConvertConfig, convert
    from cifar_edge.train import qat
    from cifar_edge.train.training import TrainConfig, load_keras_model, train
    from edge_sdk.errors import EdgeSDKError

    base = dict(model="resnet8", data=str(cifar10_dir), cache_dir=str(session_cache), epochs=1, limit=256,
                batch_size=64, lr=1e-3, warmup_epochs=0)
    with pytest.raises(EdgeSDKError, match="--init-from"):
        train(TrainConfig(out=str(tmp_path / "no-init"), qat=True, **base))
    shipped = str(Path(__file__).resolve().parents[1] / "models" / "resnet8" / "best.keras")
    summary = train(TrainConfig(out=str(tmp_path / "qat"), qat=True, init_from=shipped, **base))
    assert summary["val_accuracy"] > 0.7  # the trained weights survive the rebuild and one small epoch
    best = tmp_path / "qat" / "best.keras"
    assert qat.is_quantize_aware(load_keras_model(best))
    with pytest.raises(EdgeSDKError, match="already quantization-aware"):
        train(TrainConfig(out=str(tmp_path / "twice"), qat=True, init_from=str(best), **base))
    common = dict(model=str(best), data=str(cifar10_dir), cache_dir=str(session_cache), calib_size=64, limit=300)
    with pytest.raises(EdgeSDKError, match="int8 formats only"):
        convert(ConvertConfig(out=str(tmp_path / "float"), formats=("tflite", "tflite-int8"), **common))
    with caplog.at_level(logging.WARNING):
        manifest = convert(ConvertConfig(out=str(tmp_path / "export"), **common))
    assert any("it ignores --calib-size" in r.getMessage() for r in caplog.records)  # calib_size=64 given
    rows = {f["format"]: f for f in manifest["files"]}
    assert set(rows) == {"tflite-int8", "onnx-int8"}
    for row in rows.values():
        assert row["validation"]["top1_agreement"] >= 0.99 and not row["failures"], row
        assert row["calibration"]["quantization_aware"] is True and "images" not in row["calibration"]


def test_qat_refuses_mixed_precision_before_building_anything():
    import keras

    from cifar_edge.train.training import TrainConfig, new_model
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.spec import PreprocessSpec

    shipped = str(Path(__file__).resolve().parents[1] / "models" / "resnet8" / "best.keras")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        with pytest.raises(EdgeSDKError, match="without --mixed-precision"):
            new_model(TrainConfig(model="resnet8", qat=True, init_from=shipped), PreprocessSpec())
    finally:
        keras.config.set_dtype_policy(previous)


def test_int8_kernel_recovers_the_integers_and_refuses_an_off_grid_kernel():
    from cifar_edge.train import qat
    from edge_sdk.errors import EdgeSDKError

    k = np.random.default_rng(3).integers(-63, 64, (4, 3, 3, 3))
    k[:, 0, 0, 0] = 63  # every channel reaches its largest level
    step = np.array([2.0 ** -7, 2.0 ** -5, 2.0 ** -9, 0.5])
    levels, found = qat.int8_kernel(k * step.reshape(-1, 1, 1, 1))
    np.testing.assert_array_equal(levels, k)
    np.testing.assert_array_equal(found, step)
    with pytest.raises(EdgeSDKError, match="not on its quantization-aware int8 grid"):
        qat.int8_kernel(k * step.reshape(-1, 1, 1, 1) + 1e-3)


def test_calibration_options_given_for_a_quantization_aware_model_are_named_as_ignored(caplog):
    from cifar_edge.convert.converter import ConvertConfig, _warn_ignored_calibration

    with caplog.at_level(logging.WARNING):
        _warn_ignored_calibration(ConvertConfig(model="m.keras", out="o", tflite_input_type="uint8"))
    assert not caplog.records  # the input type still applies; nothing else was given
    with caplog.at_level(logging.WARNING):
        _warn_ignored_calibration(ConvertConfig(model="m.keras", out="o", calib_method="entropy",
                                                onnx_reduce_range=False))
    (record,) = caplog.records
    assert "m.keras" in record.getMessage() and "it ignores --calib-method, --onnx-reduce-range" in record.getMessage()
