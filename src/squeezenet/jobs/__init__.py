"""File-to-file workflows: compress a file, a training run, building a model and its data, loading
any model file. Everything here sits above the libraries it combines; experiments and the CLI sit
above it.
"""
