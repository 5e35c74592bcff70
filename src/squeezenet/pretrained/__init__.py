"""Models the package ships (package data): see ``squeezenet.workflows.load.PRETRAINED``."""

__all__: list[str] = []
