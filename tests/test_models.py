"""Model registry: every model builds, outputs probabilities, is quantization friendly; params and MACs."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from edge_sdk.errors import EdgeSDKError
from cifar_edge.train import models

ALLOWED_LAYERS = {
    "InputLayer",
    "Conv2D",
    "BatchNormalization",
    "ReLU",
    "MaxPooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Add",
    "Flatten",
    "Dense",
    "Dropout",
    "Softmax",
    "Rescaling",  # airbench's 1/9 output scale: folds into the dense layer
}


@pytest.fixture(scope="module")
def built() -> dict[str, keras.Model]:
    """Every registered model, built once with a fixed seed."""
    keras.utils.set_random_seed(0)
    return {name: models.build_model(name) for name in models.model_names()}


def _producers(model: keras.Model) -> dict[int, keras.layers.Layer]:
    """Map the id of each layer's output tensor to the layer producing it."""
    return {id(layer.output): layer for layer in model.layers}


def test_registry_names() -> None:
    assert set(models.model_names()) == {"ann", "seed-cnn", "resnet8", "resnet9", "airbench93", "airbench93-gelu",
                                         "airbench95", "default"}
    for name, entry in models.MODELS.items():
        assert entry.name == name and entry.description and callable(entry.build)


@pytest.mark.parametrize("name", models.model_names())
def test_model_outputs_probabilities(built: dict[str, keras.Model], name: str) -> None:
    model = built[name]
    batch = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    probs = np.asarray(model(batch, training=False))
    assert probs.shape == (2, 10)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert type(model.layers[-1]).__name__ == "Softmax"


@pytest.mark.parametrize("name", [n for n in models.model_names() if models.MODELS[n].int8_friendly])
def test_model_is_quantization_friendly(built: dict[str, keras.Model], name: str) -> None:
    model = built[name]
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= ALLOWED_LAYERS, kinds - ALLOWED_LAYERS
    producers = _producers(model)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            assert layer.get_config()["activation"] in ("linear", "relu"), layer.name
            assert layer.kernel_regularizer is None, layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            # Conv -> BN (foldable): the BN input comes straight from a bias-free Conv2D.
            source = producers[id(layer.input)]
            assert isinstance(source, keras.layers.Conv2D), (layer.name, source.name)
            assert not source.use_bias, source.name
            assert source.get_config()["activation"] == "linear", source.name


def test_count_macs_hand_computed() -> None:
    inputs = keras.Input(shape=(8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    conv = 8 * 8 * 3 * 3 * 3 * 8  # out_h * out_w * kh * kw * in_c * out_c
    dense = 8 * 8 * 8 * 5
    assert models.count_macs(model) == conv + dense == 16384
    assert models.count_params(model) == (3 * 3 * 3 * 8 + 8) + (512 * 5 + 5)


def test_count_macs_nested_and_depthwise() -> None:
    inner_in = keras.Input(shape=(8, 8, 4))
    inner = keras.Model(inner_in, keras.layers.DepthwiseConv2D(3, padding="valid", depth_multiplier=2)(inner_in))
    inputs = keras.Input(shape=(8, 8, 4))
    outputs = keras.layers.Conv2D(6, 1, groups=2)(inner(inputs))
    model = keras.Model(inputs, outputs)
    depthwise = 6 * 6 * 3 * 3 * 4 * 2
    grouped = 6 * 6 * 1 * 1 * (8 // 2) * 6
    assert models.count_macs(model) == depthwise + grouped


def test_resnet8_size(built: dict[str, keras.Model]) -> None:
    model = built["resnet8"]
    assert 74_000 <= models.count_params(model) <= 82_000
    assert 11_500_000 <= models.count_macs(model) <= 13_500_000
    assert type(model.get_layer("avg_pool")).__name__ == "GlobalAveragePooling2D"
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 3


def test_default_size(built: dict[str, keras.Model]) -> None:
    model = built["default"]  # airbench94-shaped: ~2 M parameters, <= 150 M MACs (issue 12's bar)
    params = models.count_params(model)
    assert 1_900_000 <= params <= 2_100_000
    assert params == model.count_params()
    assert 110_000_000 <= models.count_macs(model) <= 150_000_000
    assert type(model.get_layer("max_pool")).__name__ == "GlobalMaxPooling2D"
    assert not model.get_layer("whiten").trainable


def test_resnet9_keeps_the_previous_default_size(built: dict[str, keras.Model]) -> None:
    model = built["resnet9"]
    assert models.count_params(model) == 928_690 and models.count_macs(model) == 53_749_632


def test_gelu_variant_differs_only_in_its_activations(built: dict[str, keras.Model]) -> None:
    relu, gelu = built["airbench93"], built["airbench93-gelu"]
    assert models.count_params(relu) == models.count_params(gelu)
    assert not any(isinstance(layer, keras.layers.ReLU) for layer in gelu.layers)
    assert sum(isinstance(layer, keras.layers.ReLU) for layer in relu.layers) == 7
    assert not models.MODELS["airbench93-gelu"].int8_friendly


def test_count_params_includes_batchnorm_statistics(built: dict[str, keras.Model]) -> None:
    model = built["resnet8"]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert models.count_params(model) > trainable
    assert models.count_params(model) == model.count_params()


def test_seed_cnn_has_maxnorm(built: dict[str, keras.Model]) -> None:
    model = built["seed-cnn"]
    for name in ("conv1", "conv2", "dense"):
        constraint = model.get_layer(name).kernel_constraint
        assert isinstance(constraint, keras.constraints.MaxNorm)
        assert constraint.max_value == 3
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.5]


def test_unknown_model_name() -> None:
    with pytest.raises(EdgeSDKError) as info:
        models.build_model("nope")
    message = str(info.value)
    assert "nope" in message
    for name in models.model_names():
        assert name in message


@pytest.mark.parametrize("name", models.model_names())
def test_num_classes_honoured(name: str) -> None:
    keras.utils.set_random_seed(0)
    model = models.build_model(name, num_classes=7)
    assert model.output_shape == (None, 7)
    probs = np.asarray(model(np.zeros((1, 32, 32, 3), np.float32), training=False))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)


def test_deterministic_construction() -> None:
    keras.utils.set_random_seed(123)
    first = [np.asarray(w) for w in models.build_model("resnet8").weights]
    keras.utils.set_random_seed(123)
    second = [np.asarray(w) for w in models.build_model("resnet8").weights]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_describe_models_matches_the_tensorflow_free_catalog() -> None:
    from cifar_edge.train.catalog import catalog_rows

    rows = models.describe_models()
    assert [row["name"] for row in rows] == models.model_names()
    for row in rows:
        assert set(row) == {"name", "description", "params", "macs"}
        assert row["params"] > 0 and row["macs"] > 0
    assert rows == catalog_rows()  # the figures --list-models prints without building anything
