"""Where an int8 TFLite file loses its accuracy: the signal-to-noise ratio of every intermediate tensor.

LiteRT keeps every intermediate tensor with ``experimental_preserve_all_tensors=True`` (and the
built-in kernels, without the XNNPACK delegate, which hides its subgraph's tensors). The int8 file
and a float32 TFLite file of the same model, from the same converter, name their tensors alike, so
each dequantized int8 tensor is compared with the float tensor of the same name on the same images:
``snr_db = 10 log10(sum f^2 / sum (f - q)^2)``. Errors add up along the network, so the tensor that
*costs* the most is the one whose op adds the most noise: its output's noise-to-signal ratio minus
that of its noisiest input (``added_noise``, a fraction of the signal power).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSDKError, ModelLoadError

#: images the per-layer comparison runs on (it invokes both files once per image)
SNR_IMAGES = 256


def _interpreter(model: bytes) -> Any:
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():  # "preserve_all_tensors is intended for debugging": it is
        warnings.simplefilter("ignore")
        try:
            interpreter = Interpreter(
                model_content=model, experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interpreter.allocate_tensors()
        except Exception as exc:  # ValueError, RuntimeError, or whatever the native loader raises
            raise ModelLoadError(f"LiteRT cannot load the model for the per-layer comparison: {exc}") from exc
    return interpreter


def _feed(interpreter: Any, x: np.ndarray) -> None:
    """Set the input from normalized float images ``x`` (quantized for an integer input)."""
    detail = interpreter.get_input_details()[0]
    if np.dtype(detail["dtype"]) != np.float32:
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], x)


def layer_snr(int8_model: bytes, float_model: bytes, inputs: np.ndarray) -> dict[str, Any]:
    """Per-layer SNR of ``int8_model`` against ``float_model`` (two TFLite flatbuffers of one network; an
    integer tensor of either is dequantized) on
    the normalized float32 images ``inputs``, one at a time: for every op of the int8 file whose output
    has a float tensor of the same name, ``{"op", "tensor", "snr_db", "added_noise"}`` in graph order
    (``snr_db`` None for an exact tensor), plus ``costliest`` (the largest ``added_noise``) and
    ``lowest_snr``. Raises :class:`ModelLoadError` for a file LiteRT cannot load and
    :class:`EdgeSDKError` when fewer than half of the int8 file's op outputs have a float match.
    """
    quant, ref = _interpreter(int8_model), _interpreter(float_model)
    q_tensors = quant.get_tensor_details()
    f_tensors = ref.get_tensor_details()
    f_index = {d["name"]: d["index"] for d in f_tensors}
    ops = [op for op in quant._get_ops_details() if op["op_name"] != "DELEGATE"]
    # activations only (op outputs and the model input), never weights or biases
    activations = {int(op["outputs"][0]) for op in ops} | {int(d["index"]) for d in quant.get_input_details()}
    wanted = {t: f_index[q_tensors[t]["name"]] for t in activations if q_tensors[t]["name"] in f_index}
    matched = sum(int(op["outputs"][0]) in wanted for op in ops)
    if 2 * matched < len(ops):  # the input and output names alone match between any two conversions
        raise EdgeSDKError(f"the int8 and float TFLite files share no tensor names but {matched} of {len(ops)} "
                           "(two networks, or converted differently?)")
    signal = dict.fromkeys(wanted, 0.0)
    noise = dict.fromkeys(wanted, 0.0)
    for i in range(len(inputs)):
        _feed(quant, inputs[i : i + 1])
        _feed(ref, inputs[i : i + 1])
        quant.invoke()
        ref.invoke()
        for t, f in wanted.items():
            detail = q_tensors[t]
            try:
                value = _real(quant.get_tensor(t), detail)
                expected = _real(ref.get_tensor(f), f_tensors[f])
            except ValueError:  # an unallocated tensor
                continue
            if value.shape != expected.shape:
                continue
            signal[t] += float((expected ** 2).sum())
            noise[t] += float(((expected - value) ** 2).sum())
    nsr = {t: noise[t] / signal[t] for t in wanted if signal[t] > 0}  # noise-to-signal power ratio
    layers = []
    for op in ops:
        out = int(op["outputs"][0])
        if out not in nsr:
            continue
        inputs_nsr = [nsr[int(t)] for t in op["inputs"] if int(t) in nsr]
        layers.append({
            "op": op["op_name"],
            "tensor": q_tensors[out]["name"].split(";")[0],
            "snr_db": None if nsr[out] == 0 else round(float(-10 * np.log10(nsr[out])), 2),
            "added_noise": float(max(nsr[out] - max(inputs_nsr, default=0.0), 0.0)),
        })
    snrs = [layer for layer in layers if layer["snr_db"] is not None]
    return {
        "images": int(len(inputs)),
        "layers": layers,
        "costliest": max(layers, key=lambda layer: layer["added_noise"], default=None),
        "lowest_snr": min(snrs, key=lambda layer: layer["snr_db"], default=None),
    }



def _real(tensor: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A tensor's real values: an integer tensor dequantized by its scale and zero point."""
    if tensor.dtype.kind == "f":
        return tensor.astype(np.float64)
    scale, zero = detail["quantization"]
    return (tensor.astype(np.float64) - zero) * scale
