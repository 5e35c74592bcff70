"""Deployment: ONNX / TorchScript export with parity checks, inference engines, prediction."""
