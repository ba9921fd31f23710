"""Untrusted models and big batches, round 2 (issue 14).

* Models of shapes the SDK cannot use (a 4-D output, an int64 arg-max output, a fixed batch other
  than 1) are refused at load with ``ModelLoadError`` naming the file, on both runtimes, instead of
  loading and failing untyped at ``classify``.
* A runtime failure inside ``invoke`` (ONNX Runtime failing to allocate a buffer) is an
  ``InferenceError`` naming the model; the CLI prints one line.
* An unreadable model file is a ``ModelLoadError``, not a bare ``PermissionError``.
* ``classify_batch`` runs in chunks: bounded memory (peak RSS measured in a fresh process for
  10,000 images on each runtime), any iterable, the same results as one image at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_bad_inputs import _WITHOUT_ROOT_OVERRIDE

from edge_sdk import Classifier, EdgeSDKError
from edge_sdk.errors import ModelLoadError
from cifar_edge.cli.formats import FORMATS
from edge_sdk.spec import CIFAR10_CLASSES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TFLITE = REPO / "edge_sdk" / "models" / "default_int8.tflite"
RESNET8_ONNX = REPO / "models" / "resnet8" / "export" / FORMATS["onnx-int8"].file_name
LABELS = list(CIFAR10_CLASSES)


# --------------------------------------------------------------------------- small models built by hand
def onnx_model(kind: str = "ok", batch: int | str = "N") -> bytes:
    """A 32x32x3 -> 10 softmax classifier, or a variant: ``4d`` output, ``argmax`` output, ``alloc`` failure."""
    weights = np.random.default_rng(0).normal(size=(3072, 10)).astype(np.float32) * 0.01
    inits = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([-1, 3072], np.int64), "flat")]
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["rows"]), helper.make_node("MatMul", ["rows", "w"], ["z"]),
             helper.make_node("Softmax", ["z"], ["probs"], axis=1)]
    out, shape, dtype = "probs", [batch, 10], TensorProto.FLOAT
    if kind == "4d":
        inits.append(numpy_helper.from_array(np.array([-1, 1, 1, 10], np.int64), "s4"))
        nodes.append(helper.make_node("Reshape", ["probs", "s4"], ["p4"]))
        out, shape = "p4", [batch, 1, 1, 10]
    elif kind == "argmax":
        nodes.append(helper.make_node("ArgMax", ["probs"], ["label"], axis=1, keepdims=0))
        out, shape, dtype = "label", [batch], TensorProto.INT64
    elif kind == "alloc":  # loads fine; each call asks for a 4-petabyte buffer
        inits.append(numpy_helper.from_array(np.array([1 << 20, 1 << 20, 1 << 10], np.int64), "huge"))
        nodes += [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
                  helper.make_node("Expand", ["m", "huge"], ["big"]),
                  helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
                  helper.make_node("Add", ["probs", "s"], ["scores"])]
        out = "scores"
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 32, 32, 3])],
                              [helper.make_tensor_value_info(out, dtype, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


TFLITE_BUILDER = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
out = sys.argv[1]
w = tf.constant(__import__("numpy").random.default_rng(0).normal(size=(3072, 10)).astype("float32") * 0.01)
def probs(x):
    return tf.nn.softmax(tf.reshape(x, [-1, 3072]) @ w)
variants = {
    "4d": (lambda x: tf.reshape(probs(x), [-1, 1, 1, 10]), None),
    "argmax": (lambda x: tf.argmax(probs(x), axis=1), None),
    "batch4": (probs, 4),
}
for name, (fn, batch) in variants.items():
    spec = tf.TensorSpec([batch, 32, 32, 3], tf.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([tf.function(fn).get_concrete_function(spec)])
    with open(os.path.join(out, name + ".tflite"), "wb") as fh:
        fh.write(converter.convert())
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """The odd models, written once: ONNX built here, TFLite converted by TensorFlow in a subprocess."""
    folder = tmp_path_factory.mktemp("odd-models")
    for kind, batch in (("4d", "N"), ("argmax", "N"), ("ok", 4), ("alloc", "N"), ("ok", "N")):
        (folder / f"{kind}{'' if batch == 'N' else batch}.onnx").write_bytes(onnx_model(kind, batch))
    proc = subprocess.run([sys.executable, "-c", TFLITE_BUILDER, str(folder)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


# --------------------------------------------------------------------------- refused at load
@pytest.mark.parametrize("names, fragment", [
    (("4d.onnx", "4d.tflite"), r"output is one row of class scores per image, shape \(N, classes\); "
                               r"this one returns shape \(-1, 1, 1, 10\)"),
    (("argmax.onnx", "argmax.tflite"), r"output float.* class scores; this one outputs .*int64"),
    (("ok4.onnx", "batch4.tflite"), r"batch of 1 or a dynamic batch; this one takes a fixed batch of 4"),
], ids=["4d-output", "int64-argmax-output", "fixed-batch-4"])
def test_models_of_unsupported_shapes_are_refused_at_load_naming_the_file(models, names, fragment):
    for name in names:
        with pytest.raises(ModelLoadError, match=fragment) as info:
            Classifier(models / name, labels=LABELS)
        assert str(models / name) in str(info.value)


def test_a_runtime_failure_inside_invoke_is_an_inference_error_naming_the_model(models):
    from edge_sdk.errors import InferenceError

    clf = Classifier(models / "alloc.onnx", labels=LABELS)  # loads: nothing is allocated until a call
    image = np.zeros((32, 32, 3), np.uint8)
    for call in (clf.classify, clf.probabilities, lambda img: clf.classify_batch([img, img])):
        with pytest.raises(InferenceError, match="onnxruntime failed to run the model: .*Failed to allocate memory") as info:
            call(image)
        assert str(models / "alloc.onnx") in str(info.value) and isinstance(info.value, EdgeSDKError)
    healthy = Classifier(models / "ok.onnx", labels=LABELS)  # the same graph without the allocation
    assert healthy.classify(image).top is not None


def test_predict_with_a_model_that_fails_at_run_time_prints_one_line_per_image(tmp_path):
    from PIL import Image

    picture = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(picture)
    model = tmp_path / "alloc.onnx"
    proto = onnx.load_from_string(onnx_model("alloc"))
    proto.metadata_props.extend(onnx.load(RESNET8_ONNX).metadata_props)  # labels and preprocessing for the CLI
    onnx.save(proto, model)
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "predict", str(picture), str(picture), "--model", str(model)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 2 and all("onnxruntime failed to run the model" in line for line in lines), proc.stderr
    assert all(line.startswith("cifar-edge predict: error: ") for line in lines)


def test_thread_counts_a_runtime_cannot_honour_are_refused_before_loading():
    for threads in (0, -3, 5000):
        with pytest.raises(ValueError, match=r"num_threads must lie in \[1, 1024\]"):
            Classifier(DEFAULT_TFLITE, num_threads=threads)


UNREADABLE = r"""
import sys
from edge_sdk import Classifier
try:
    Classifier(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_an_unreadable_model_file_is_a_model_load_error(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(DEFAULT_TFLITE.read_bytes())
    model.chmod(0o000)
    try:
        command = [sys.executable, "-c", UNREADABLE, str(model)]
        import os

        if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it first
            command = [sys.executable, "-c", _WITHOUT_ROOT_OVERRIDE, *command]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    finally:
        model.chmod(0o644)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"ModelLoadError cannot read model file {model}: Permission denied"), proc.stdout


# --------------------------------------------------------------------------- batches in chunks
class CountingBackend:
    """Wraps a backend and records the batch size of every runtime call."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def invoke(self, tensor):
        self.calls.append(len(tensor))
        return self.backend.invoke(tensor)


@pytest.mark.parametrize("model", [DEFAULT_TFLITE, RESNET8_ONNX], ids=["litert", "onnxruntime"])
def test_classify_batch_runs_in_chunks_with_the_same_results(model):
    clf = Classifier(model)
    counting = clf._backend = CountingBackend(clf._backend)
    images = np.random.default_rng(3).integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8)
    batch = clf.classify_batch(img for img in images)  # any iterable, a generator too
    assert len(batch) == 1000
    assert max(counting.calls) <= clf.batch_chunk < 1000 and sum(counting.calls) == 1000
    for i in (0, 63, 64, 500, 999):  # chunk edges included
        single = clf.classify(images[i])
        assert [c.index for c in batch[i].categories] == [c.index for c in single.categories]
        assert np.allclose([c.score for c in batch[i].categories], [c.score for c in single.categories], atol=1e-6)


PEAK = r"""
import json, resource, sys
import numpy as np
from edge_sdk import Classifier
clf = Classifier(sys.argv[1])
clf.classify_batch(list(np.zeros((8, 32, 32, 3), np.uint8)))
images = list(np.random.default_rng(0).integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = clf.classify_batch(images)
assert len(results) == 10_000
print(json.dumps({"growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""


@pytest.mark.parametrize("model", [DEFAULT_TFLITE, RESNET8_ONNX], ids=["litert", "onnxruntime"])
def test_classify_batch_of_10000_images_keeps_peak_memory_bounded(model):
    # Before chunking the peak grew by 0.8 GB (LiteRT) and 1.6 GB (ONNX Runtime) for these 30 MB of pixels.
    proc = subprocess.run([sys.executable, "-c", PEAK, str(model)], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth = json.loads(proc.stdout.strip().splitlines()[-1])["growth_mb"]
    assert growth < 100, f"peak RSS grew by {growth:.0f} MiB during one classify_batch of 10,000 images"
