"""The table of dataset kinds: every named kind is spelled in the CLI's help, every kind loads."""

from __future__ import annotations

from squeezenet.arch.preprocess import CIFAR10, IMAGENET
from squeezenet.data.sources import NAMED, SOURCES, DataSpec, load_dataset, parse_data_spec


def test_every_named_dataset_is_in_the_cli_help() -> None:
    from squeezenet.cli.options import DATA_HELP

    assert NAMED == ("fashion-mnist", "cifar10", "synthetic")
    for name in NAMED:
        assert name in DATA_HELP
    assert {"csv", "npz", "folder"} <= set(SOURCES) - set(NAMED)


def test_a_spec_finds_its_source() -> None:
    assert parse_data_spec("synthetic").default_preset == CIFAR10
    assert DataSpec("folder").default_preset == IMAGENET
    train = load_dataset("synthetic", "train", synthetic_size=80)
    test = load_dataset("synthetic", "test", synthetic_size=80)
    assert (len(train), len(test)) == (80, 64)
