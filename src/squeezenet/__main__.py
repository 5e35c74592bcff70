"""Entry point for `python -m squeezenet` (also what `torchrun -m squeezenet` runs)."""

from squeezenet.cli import main

if __name__ == "__main__":
    main()
