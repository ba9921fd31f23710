"""The airbench recipe (issue 12): whitening, photo augmentation, distillation and flip TTA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_training import RUN_FILES


@pytest.fixture(scope="module")
def airbench_run(tmp_path_factory, cifar10_dir, session_cache):
    """A 1-epoch run of the registered default (airbench net and recipe) on 2,048 images."""
    from cifar_edge.train.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "airbench"
    config = TrainConfig(model="default", out=str(out), data=str(cifar10_dir), cache_dir=str(session_cache),
                         epochs=1, limit=2048, val_size=256, command="test")
    return out, train(config)


# --------------------------------------------------------------------------- whitening
def _patch_covariance(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    flat = flat - flat.mean(axis=0)
    return flat.T @ flat / len(flat)


def test_whitening_filters_whiten_patches():
    from cifar_edge.train.airbench import _patches, whitening_filters

    rng = np.random.default_rng(0)
    # correlated, unequal-variance images (a smooth random field), as natural images are
    base = rng.normal(size=(64, 33, 33, 3))
    images = (base[:, 1:, 1:] + base[:, :-1, :-1] + 0.3 * base[:, 1:, :-1]) * np.array([1.0, 0.5, 2.0])
    filters = whitening_filters(images, eps=1e-9)
    assert filters.shape == (2, 2, 3, 24)
    half = filters.shape[-1] // 2
    np.testing.assert_allclose(filters[..., half:], -filters[..., :half])  # the +V / -V pairs
    patches = _patches(images, 2)
    before = np.cov(patches, rowvar=False)
    assert np.abs(before - np.diag(np.diag(before))).max() > 0.3  # the input is far from white
    responses = patches @ filters[..., :half].reshape(-1, half)  # the layer's output, before ReLU
    np.testing.assert_allclose(_patch_covariance(responses), np.eye(half), atol=1e-6)


@pytest.mark.slow  # trains (or converts) a model
def test_whitening_layer_is_set_from_training_images_and_frozen(airbench_run):
    from cifar_edge.train.training import load_keras_model

    out, _ = airbench_run
    model = load_keras_model(out / "best.keras")
    layer = model.get_layer("whiten")
    kernel = np.asarray(layer.kernel)
    assert not layer.trainable and kernel.shape == (2, 2, 3, 24)
    identity = np.eye(12).reshape(12, 2, 2, 3).transpose(1, 2, 3, 0)
    assert not np.allclose(kernel[..., :12], identity)  # computed from data, not the placeholder
    assert np.abs(kernel).max() > 5  # small-eigenvalue directions are amplified


@pytest.mark.slow  # trains (or converts) a model
def test_airbench_tiny_run_writes_every_artifact(airbench_run):
    out, summary = airbench_run
    for name in RUN_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "summary.json").read_text())
    config = saved["config"]
    assert saved["model"] == "default" and config["recipe"] == "airbench"
    assert config["label_smoothing"] == 0.2 and config["lookahead"] and config["photo_augment"]
    assert config["schedule"] == "linear" and config["pad"] == 2 and config["bias_lr_scale"] == 64.0
    assert 1_900_000 < saved["params"] < 2_100_000 and 110e6 < saved["macs"] < 125e6
    assert saved["train_images"] == 2048 and np.isfinite(saved["test_loss"])


def test_classic_models_keep_their_recipe():
    from cifar_edge.train.training import TrainConfig

    classic = TrainConfig(model="resnet8", out="x").resolved()
    assert (classic.recipe, classic.batch_size, classic.lr, classic.photo_augment) == ("classic", 128, 0.1, False)
    scaled = TrainConfig(model="default", out="x", batch_size=512).resolved()
    assert scaled.recipe == "airbench" and scaled.lr == pytest.approx(0.75)  # linear scaling with the batch
    explicit = TrainConfig(model="default", out="x", batch_size=512, lr=0.1, photo_augment=False).resolved()
    assert explicit.lr == 0.1 and explicit.photo_augment is False


def _one_step_offset_change(bias_lr_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(BatchNorm offset change, conv kernel change) after one SGD step of a tiny net."""
    import keras

    from cifar_edge.train.optim import BiasScaledSGD

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(scale=False, name="bn")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    model.compile(BiasScaledSGD(0.01, bias_lr_scale=bias_lr_scale), keras.losses.CategoricalCrossentropy(from_logits=True))
    value = keras.ops.convert_to_numpy
    beta0, kernel0 = value(model.get_layer("bn").beta), value(model.get_layer("conv").kernel)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.random((8, 4, 4, 3), dtype=np.float32), np.eye(2, dtype=np.float32)[np.arange(8) % 2])
    return value(model.get_layer("bn").beta) - beta0, value(model.get_layer("conv").kernel) - kernel0


def test_bias_lr_scale_multiplies_only_the_batchnorm_offsets_step():
    # Regression: under TensorFlow update_step sees a tf.Variable named "beta:0", and a name test
    # on it silently left the airbench recipe's 64x offset rate at 1x.
    offset_1x, kernel_1x = _one_step_offset_change(1.0)
    offset_64x, kernel_64x = _one_step_offset_change(64.0)
    assert np.abs(offset_1x).max() > 0
    np.testing.assert_allclose(offset_64x, 64.0 * offset_1x, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(kernel_64x, kernel_1x, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------- photo augmentation
def test_photo_augmentation_softens_or_sharpens_within_range_and_is_seeded():
    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.pipeline import make_dataset

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros(64, np.int64)
    spec = PreprocessSpec()

    def batch(**kw):
        return next(iter(make_dataset(images, labels, spec, batch_size=64, training=True, seed=5, pad=0, **kw)))[0].numpy()

    plain, photo, again = batch(), batch(photo=True), batch(photo=True)
    np.testing.assert_array_equal(photo, again)  # same seed, same pictures
    assert photo.min() >= 0.0 and photo.max() <= 1.0
    # each position holds the same source image in both (same shuffle seed), but the flip draws of the two
    # seed streams differ: compare every photo image with the plain one in its own orientation
    diff = lambda a, b: np.abs(a - b).mean(axis=(1, 2, 3))  # noqa: E731
    mirrored = diff(photo, plain[:, :, ::-1]) < diff(photo, plain)
    plain = np.where(mirrored[:, None, None, None], plain[:, :, ::-1], plain)
    changed = diff(photo, plain) > 1e-6
    # about PHOTO_PROBABILITY of the images change (binomial, 64 draws), the others stay exactly as they were
    assert 0.25 < changed.mean() < 0.75
    # local contrast (neighbour differences) both falls (blur) and rises (sharpen) across the changed images
    roughness = lambda b: np.abs(np.diff(b, axis=2)).mean(axis=(1, 2, 3))  # noqa: E731
    ratio = roughness(photo[changed]) / roughness(plain[changed])
    assert ratio.min() < 0.8 and ratio.max() > 1.05


# --------------------------------------------------------------------------- distillation
def test_distillation_loss_uses_the_teacher_columns():
    import keras

    from cifar_edge.train.distill import DistillationLoss

    labels = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    student = keras.ops.softmax(np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32))
    agreeing = labels * 0.9 + 0.01
    disagreeing = np.roll(agreeing, 1, axis=1)
    loss = DistillationLoss(10, temperature=4.0, alpha=0.9)
    hard_only = float(DistillationLoss(10, alpha=0.0)(labels, student))
    assert float(loss(labels, student)) == pytest.approx(hard_only)  # no teacher columns: labels only
    with_teacher = float(loss(np.concatenate([labels, agreeing], 1), student))
    against = float(loss(np.concatenate([labels, disagreeing], 1), student))
    assert with_teacher != pytest.approx(hard_only) and against != pytest.approx(with_teacher)
    perfect = float(DistillationLoss(10, alpha=1.0)(np.concatenate([labels, agreeing], 1), keras.ops.convert_to_tensor(agreeing)))
    assert perfect == pytest.approx(0.0, abs=1e-5)  # a student equal to its teacher has no soft loss


def test_teacher_targets_average_the_image_and_its_mirror():
    import keras

    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.distill import teacher_targets

    inputs = keras.Input((32, 32, 3))
    # a teacher that looks only at the left half: its mirror view differs
    left = keras.layers.Cropping2D(((0, 0), (0, 16)))(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(left))
    teacher = keras.Model(inputs, outputs)
    images = np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    spec = PreprocessSpec()
    x = np.asarray(spec.normalize(images.astype(np.float32)))
    expected = (teacher.predict_on_batch(x) + teacher.predict_on_batch(x[:, :, ::-1])) / 2
    got = teacher_targets(teacher, images, spec, batch_size=4)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, teacher.predict_on_batch(x), atol=1e-3)


@pytest.mark.slow  # trains (or converts) a model
def test_distillation_runs_end_to_end_and_changes_the_loss(tmp_path, airbench_run, cifar10_dir, session_cache):
    from cifar_edge.train.training import TrainConfig, train

    teacher = airbench_run[0] / "best.keras"
    common = dict(model="resnet8", data=str(cifar10_dir), cache_dir=str(session_cache), epochs=1, limit=256,
                  batch_size=64, val_size=128, command="test")
    plain = train(TrainConfig(out=str(tmp_path / "plain"), **common))
    taught = train(TrainConfig(out=str(tmp_path / "taught"), teacher=str(teacher), **common))
    for name in RUN_FILES:
        assert (tmp_path / "taught" / name).is_file(), name
    assert taught["config"]["teacher"] == str(teacher)
    loss = lambda run: json.loads((tmp_path / run / "history.json").read_text())[0]["loss"]  # noqa: E731
    assert np.isfinite(loss("taught")) and abs(loss("taught") - loss("plain")) > 1e-3


# --------------------------------------------------------------------------- flip TTA
@pytest.mark.slow  # trains (or converts) a model
def test_flip_tta_model_is_the_mean_of_both_views(airbench_run):
    from cifar_edge.convert.tta import with_tta
    from cifar_edge.train.training import load_keras_model

    model = load_keras_model(airbench_run[0] / "best.keras")
    assert with_tta(model, "none") is model
    wrapped = with_tta(model, "flip")
    x = np.random.default_rng(3).random((5, 32, 32, 3)).astype(np.float32)
    expected = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1])) / 2
    np.testing.assert_allclose(wrapped.predict_on_batch(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        with_tta(model, "six-crop")


@pytest.mark.slow  # trains (or converts) a model
def test_flip_tta_export_carries_it_in_file_and_metadata(tmp_path, airbench_run, cifar10_dir, session_cache):
    from cifar_edge.convert.converter import ConvertConfig, convert, parity
    from edge_sdk import Classifier
    from edge_sdk.metadata import read_metadata
    from cifar_edge.train.training import load_keras_model

    out = tmp_path / "export"
    manifest = convert(ConvertConfig(model=str(airbench_run[0] / "best.keras"), out=str(out),
                                     formats=("tflite", "onnx"), limit=200, data=str(cifar10_dir),
                                     cache_dir=str(session_cache), tta="flip"))
    assert manifest["tta"] == "flip" and all(not f["failures"] for f in manifest["files"])
    model = load_keras_model(airbench_run[0] / "best.keras")
    pixels = list(np.random.default_rng(4).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    from cifar_edge.train.models import count_macs

    for name in ("model_float32.tflite", "model_float32.onnx"):
        extra = read_metadata(out / name).extra
        assert extra["tta"] == "flip" and extra["macs"] == 2 * count_macs(model)  # two views per call
        assert extra["test_images"] == 200
        assert extra["test_accuracy"] == pytest.approx(manifest["files"][0]["validation"]["keras_accuracy"], abs=1e-4)
        clf = Classifier(out / name)
        x = np.concatenate([clf.preprocess(p) for p in pixels])  # what the SDK feeds the file, before the flip
        expected = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1])) / 2
        np.testing.assert_allclose(clf.probabilities_batch(pixels), expected, atol=1e-5)
    checked = parity(str(airbench_run[0] / "best.keras"), str(out), data=str(cifar10_dir),
                     cache_dir=str(session_cache), limit=200)
    assert checked["passed"] and {r["tta"] for r in checked["files"]} == {"flip"}
    assert all(r["bytes"] == (out / r["file"]).stat().st_size for r in checked["files"])


@pytest.mark.slow  # trains (or converts) a model
def test_int8_onnx_flip_export_keeps_the_whitening_filters_float_after_onnx_runtime_loads_it(tmp_path, airbench_run):
    """ONNX Runtime's WeightBiasQuantization optimization quantizes a float convolution whose input is
    quantized: the TTA mirror/concat in front of the whitening filters must stay float too."""
    import onnx
    import onnxruntime as ort

    from cifar_edge.convert.export import _nodes_left_in_float, onnx_int8
    from cifar_edge.convert.tta import with_tta
    from cifar_edge.train.training import load_keras_model

    model = with_tta(load_keras_model(airbench_run[0] / "best.keras"), "flip")
    calibration = np.random.default_rng(5).random((8, 32, 32, 3)).astype(np.float32)
    source = tmp_path / "int8.onnx"
    source.write_bytes(onnx_int8(model, calibration))
    kept = _nodes_left_in_float(onnx.load(source).graph)
    assert any("concat" in name.lower() for name in kept)
    options = ort.SessionOptions()  # the default level, as the SDK loads it
    options.optimized_model_filepath = str(tmp_path / "as-run.onnx")
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(options.optimized_model_filepath).graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    (whiten,) = [node for node in graph.node if "whiten" in node.name and "conv" in node.op_type.lower()]
    assert whiten.input[1] not in producers  # a float initializer, not a DequantizeLinear output
    assert producers.get(whiten.input[0]) != "DequantizeLinear"


@pytest.mark.slow  # trains (or converts) a model
def test_int8_tflite_flip_export_keeps_only_the_whitening_convolution_float(airbench_run):
    """The airbench nets' whitening filters stay float32 in the int8 TFLite file, between a dequantize
    and a quantize op; every other convolution is int8 and the file still takes and gives uint8."""
    from ai_edge_litert.interpreter import Interpreter

    from cifar_edge.convert.export import tflite_int8
    from cifar_edge.convert.tta import with_tta
    from cifar_edge.train.training import load_keras_model

    model = with_tta(load_keras_model(airbench_run[0] / "best.keras"), "flip")
    calibration = np.random.default_rng(5).random((8, 32, 32, 3)).astype(np.float32)
    interpreter = Interpreter(model_content=tflite_int8(model, calibration, tflite_input_type="uint8"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [tensors[op["outputs"][0]] for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    float_convs = [t["name"] for t in convs if t["dtype"] == np.float32]
    assert len(float_convs) == 1 and "whiten" in float_convs[0]
    assert all(t["dtype"] == np.int8 for t in convs if t["name"] not in float_convs) and len(convs) >= 4
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8


# --------------------------------------------------------------------------- BatchNorm statistics
def test_sample_images_mixes_every_class():
    from cifar_edge.train.data import ImageSet
    from cifar_edge.train.training import sample_images

    labels = np.repeat(np.arange(10), 100)  # sorted by class, as the splits are
    images = np.repeat(labels, 32 * 32 * 3).reshape(1000, 32, 32, 3).astype(np.uint8)
    sample = sample_images(ImageSet(images, labels, tuple(map(str, range(10))), "train", "synthetic"), 200, seed=0)
    classes = sample[:, 0, 0, 0].astype(int)
    assert np.bincount(classes, minlength=10).tolist() == [20] * 10
    assert len(np.unique(classes[:50])) >= 8  # shuffled: any batch of it is mixed


@pytest.mark.slow  # trains (or converts) a model
def test_saved_batchnorm_statistics_match_the_weights(airbench_run, cifar10_dir, session_cache):
    """A short run's saved model scores what its weights deserve: re-estimating only the BatchNorm
    statistics on a fresh random sample of training images changes its accuracy by little."""
    from edge_sdk.spec import PreprocessSpec
    from cifar_edge.train.data import resolve_source, stratified_indices
    from cifar_edge.train.training import load_keras_model, recalibrate_batchnorm

    spec = PreprocessSpec()
    source = resolve_source(str(cifar10_dir), cache_dir=str(session_cache), progress=False)
    test = source.load("test", spec.labels)
    test = test.subset(stratified_indices(test.labels, 1000, 7))
    train = source.load("train", spec.labels)
    fresh = np.random.default_rng(11).choice(len(train), 2000, replace=False)
    model = load_keras_model(airbench_run[0] / "best.keras")
    x = np.asarray(spec.normalize(test.images))
    saved = (model.predict_on_batch(x).argmax(1) == test.labels).mean()
    recalibrate_batchnorm(model, np.asarray(spec.normalize(train.images[fresh])))
    recalibrated = (model.predict_on_batch(x).argmax(1) == test.labels).mean()
    assert recalibrated > 0.2  # the weights have learnt something, so the comparison means something
    assert abs(saved - recalibrated) < 0.04, (saved, recalibrated)


def test_airbench_ablations_change_one_ingredient_each():
    from dataclasses import asdict

    from cifar_edge.train.compare import ablation_configs
    from cifar_edge.train.training import TrainConfig

    pairs = dict(ablation_configs(TrainConfig(model="airbench93", out="runs/abl", epochs=4, data="d")))
    assert set(pairs) == {"recipe", "no-photo-augment", "no-lookahead", "no-label-smoothing", "bias-lr-1x",
                          "classic-recipe"}
    resolved = {name: asdict(c.resolved()) for name, c in pairs.items()}
    ref = resolved["recipe"]
    changed = {name: {k for k, v in r.items() if v != ref[k]} - {"out"} for name, r in resolved.items()}
    assert changed["no-photo-augment"] == {"photo_augment"} and changed["no-lookahead"] == {"lookahead"}
    assert changed["no-label-smoothing"] == {"label_smoothing"} and changed["bias-lr-1x"] == {"bias_lr_scale"}
    assert {"recipe", "lr", "batch_size", "schedule"} <= changed["classic-recipe"]
    assert all(c.epochs == 4 and c.data == "d" and c.model == "airbench93" for c in pairs.values())


# --------------------------------------------------------------------------- own small data sets
@pytest.mark.slow  # trains (or converts) a model
def test_own_small_data_set_trains_with_default_options(tmp_path, session_cache):
    """A user's 3-class folder of 3 x 40 64x64 PNGs: no --val-size needed (a tenth is held out)."""
    from builders import make_image_tree

    from cifar_edge.train.training import TrainConfig, train

    make_image_tree(tmp_path / "mydata", classes=("cat", "dog", "fox"), per_class=40, size=(64, 64))
    summary = train(TrainConfig(model="resnet8", out=str(tmp_path / "run"), data=str(tmp_path / "mydata"),
                                cache_dir=str(session_cache), epochs=1, batch_size=32, command="test"))
    assert (summary["train_images"], summary["val_images"]) == (108, 12)
    assert summary["config"]["val_size"] is None and summary["test_images"] == 120
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["labels"] == ["cat", "dog", "fox"]
