"""Deployment: ONNX / TorchScript export with parity checks, int8, self-checking ONNX files,
inference engines, benchmarks and prediction."""

from squeezenet.deploy.bench import BenchRow, benchmark
from squeezenet.deploy.export import ExportParityError, ExportReport, export_model
from squeezenet.deploy.int8 import Int8Config, export_int8
from squeezenet.deploy.onnx_file import OnnxFile, read_onnx
from squeezenet.deploy.predict import Prediction, predict
from squeezenet.deploy.selfcheck import ModelCheckError

__all__ = [
    "BenchRow",
    "ExportParityError",
    "ExportReport",
    "Int8Config",
    "ModelCheckError",
    "OnnxFile",
    "Prediction",
    "benchmark",
    "export_int8",
    "export_model",
    "predict",
    "read_onnx",
]
