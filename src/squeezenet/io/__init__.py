"""Model weights files: safetensors with the model's name, config and preprocessing as metadata."""

from squeezenet.io.weights import LoadedModel, WeightsFileError, load_model, save_weights

__all__ = ["LoadedModel", "WeightsFileError", "load_model", "save_weights"]
