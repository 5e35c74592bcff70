"""Models the package ships (package data): see ``squeezenet.jobs.load.PRETRAINED``."""
