"""`squeezenet serve-demo`: serve the browser demo, which decodes a .sqz in JavaScript."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from squeezenet.cli.app import err, out
from squeezenet.cli.arguments import user_paths


def serve_demo_cmd(
    file: Annotated[
        str | None,
        typer.Argument(
            help="The .sqz to serve, or a shipped model's name (default: squeezenet1_0-dc)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the browser demo: the page decodes the .sqz and classifies images in JavaScript."""
    from squeezenet.demo.serve import DemoFiles, make_server, shipped_model
    from squeezenet.runtime.model_file import PRETRAINED, pretrained_path

    model = str(pretrained_path(file)) if file in PRETRAINED else file or str(shipped_model())
    with user_paths(reads=[model]):
        server = make_server(DemoFiles(Path(model)), host, port)
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    out.print(f"http://{bound_host}:{bound_port}/", highlight=False)
    err.print(f"serving {model}; Ctrl-C stops", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
