"""Conversion of trained Keras models to TFLite and ONNX (float and int8)."""
