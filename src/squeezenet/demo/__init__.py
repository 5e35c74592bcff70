"""The browser demo: the page and its JavaScript (package data here) and their local server.

``index.html`` and ``src/*.js`` decode a ``.sqz`` and run SqueezeNet v1.0 in plain JavaScript;
:mod:`squeezenet.demo.serve` hands them out with the model, from the standard library alone:
below the torch line, and served from an installed wheel as from a source checkout.
"""

from squeezenet.demo.serve import DemoFiles, make_server, sample_image, shipped_model, web_folder

__all__ = ["DemoFiles", "make_server", "sample_image", "shipped_model", "web_folder"]
