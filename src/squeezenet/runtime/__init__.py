"""The runtime: classify images with a ``.sqz`` or weights file using numpy (or ONNX Runtime on a
graph built from the file), without torch."""
