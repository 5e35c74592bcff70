"""The browser demo: the page that decodes a ``.sqz`` and runs SqueezeNet v1.0 in plain
JavaScript, and its local server.

:mod:`squeezenet.demo.serve` hands the page out with the model, from the standard library
alone: below the torch line, so nothing here needs torch.
"""

from squeezenet.demo.serve import DemoFiles, make_server, sample_image, shipped_model, web_folder

__all__ = ["DemoFiles", "make_server", "sample_image", "shipped_model", "web_folder"]
