"""Published facts of every registered model: one frozen record each, as torchvision's ``meta``.

A record states what a model is at its registered defaults: its parameter count, its MACs at
its natural input size, the smallest input it accepts, the preprocessing preset it expects and
the accuracies published for it, each with its source. ``tests/models/test_facts.py`` checks
every record against the real model (and the torchvision ones against torchvision's own
``Weights.meta``), so a record cannot drift from the code.

Nothing here imports torch or ``squeezenet.data``: the preset is named, not imported.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where the numbers come from. The paper's accuracies are those of the released Caffe models
# (227 px crops, Caffe preprocessing, conv10 padding 1; its AlexNet is the Caffe two-tower
# baseline); torchvision's are its retrained weights at 224 px with ImageNet preprocessing, the
# layout our registered models have. Counts we derive ourselves say COUNTED.
PAPER_TABLE1 = "SqueezeNet (Iandola et al. 2016), Table 1"
PAPER_TABLE2 = "SqueezeNet (Iandola et al. 2016), Table 2"
PAPER_TABLE3 = "SqueezeNet (Iandola et al. 2016), Table 3"
AUTHORS_V1_1 = "the SqueezeNet authors' repository (v1.1 README: 2.4x less computation)"
TORCHVISION = "torchvision {}_Weights.IMAGENET1K_V1.meta"
COUNTED = "counted from the model (squeezenet.models.summary); not published elsewhere"


@dataclass(frozen=True)
class Accuracy:
    """A published single-crop ImageNet-1k validation accuracy of one set of weights."""

    top1: float  # percent
    top5: float  # percent
    source: str  # who published it, and where


@dataclass(frozen=True)
class ModelFacts:
    """What a registered model is at its default config; ``get_spec(name).facts``.

    Overrides (``create_model(name, num_classes=10)``) make another model: the record does not
    describe it.
    """

    params: int  # all parameters, weights and biases (32-bit size: 4 bytes each)
    macs: int  # multiply-accumulates of the convolutions and linear layers, one image
    input_size: int  # the natural square input in pixels, at which `macs` is counted
    min_input_size: int  # the smallest square input a forward pass accepts; one less raises
    preprocess: str  # the preset it expects: a key of `squeezenet.arch.preprocess.PRESETS`
    accuracy: tuple[Accuracy, ...] = ()  # published accuracies; none where none was published
    source: str = COUNTED  # who published `params`, `macs` and `min_input_size` (we count them)

    def __post_init__(self) -> None:
        # Records are written in code, not by users: a bad one is the writer's bug (ValueError).
        if not 1 <= self.min_input_size <= self.input_size:
            raise ValueError(
                f"ModelFacts.min_input_size: expected 1..input_size ({self.input_size}), "
                f"got {self.min_input_size}"
            )
        if self.params < 1 or self.macs < 1:
            raise ValueError(f"ModelFacts: expected positive params and macs, got {self}")

    @property
    def size_bytes(self) -> int:
        """Size of the parameters at 32 bits, the paper's size column."""
        return 4 * self.params


def _torchvision(weights: str, top1: float, top5: float) -> Accuracy:
    return Accuracy(top1, top5, TORCHVISION.format(weights))


_SQUEEZENET1_0 = ModelFacts(
    params=1_248_424,  # Table 1 (4.8 MB); torchvision num_params
    macs=818_924_576,  # 818.9 M at 224x224; torchvision _ops 0.819 (GMACs, despite the name)
    input_size=224,
    min_input_size=21,  # torchvision min_size (21, 21)
    preprocess="imagenet",
    accuracy=(Accuracy(57.5, 80.3, PAPER_TABLE2), _torchvision("SqueezeNet1_0", 58.092, 80.420)),
    source=f"{PAPER_TABLE1} (params); {TORCHVISION.format('SqueezeNet1_0')}",
)
_SQUEEZENET1_1 = ModelFacts(
    params=1_235_496,  # torchvision num_params
    macs=349_151_936,  # 349.2 M at 224x224, 2.4x fewer than v1.0; torchvision _ops 0.349
    input_size=224,
    min_input_size=17,  # torchvision min_size (17, 17)
    preprocess="imagenet",
    accuracy=(_torchvision("SqueezeNet1_1", 58.178, 80.624),),
    source=f"{AUTHORS_V1_1}; {TORCHVISION.format('SqueezeNet1_1')}",
)
# Sec. 6 trains the bypass variants of v1.0 only; the v1.1 variants have no published accuracy.
# A simple bypass adds no parameters and no MACs (the addition is not a multiply-accumulate).
_BYPASS_FACTS = {
    "squeezenet1_0_simple_bypass": ModelFacts(
        params=1_248_424,
        macs=818_924_576,
        input_size=224,
        min_input_size=21,
        preprocess="imagenet",
        accuracy=(Accuracy(60.4, 82.5, PAPER_TABLE3),),
    ),
    "squeezenet1_0_complex_bypass": ModelFacts(
        params=1_589_672,  # + 341,248 for the four 1x1 shortcuts; Table 3's 7.7 MB is not this
        macs=1_165_298_720,
        input_size=224,
        min_input_size=21,
        preprocess="imagenet",
        accuracy=(Accuracy(58.8, 82.0, PAPER_TABLE3),),
    ),
    "squeezenet1_1_simple_bypass": ModelFacts(
        params=1_235_496, macs=349_151_936, input_size=224, min_input_size=17, preprocess="imagenet"
    ),
    "squeezenet1_1_complex_bypass": ModelFacts(
        params=1_572_648, macs=447_660_736, input_size=224, min_input_size=17, preprocess="imagenet"
    ),
}
_SQUEEZENET_SMALL = ModelFacts(
    params=733_514,  # 10 classes, RGB, batch norm
    macs=23_511_040,
    input_size=32,
    min_input_size=8,
    preprocess="cifar10",  # the defaults (3 channels, 32 px, 10 classes) are CIFAR-10's
)
_ALEXNET = ModelFacts(
    params=61_100_840,  # torchvision num_params (Table 2's 240 MB is the two-tower Caffe model)
    macs=714_188_480,  # torchvision _ops 0.714
    input_size=224,
    min_input_size=63,  # torchvision min_size (63, 63)
    preprocess="imagenet",
    accuracy=(Accuracy(57.2, 80.3, PAPER_TABLE2), _torchvision("AlexNet", 56.522, 79.066)),
    source=TORCHVISION.format("AlexNet"),
)

FACTS: dict[str, ModelFacts] = {
    "squeezenet1_0": _SQUEEZENET1_0,
    "squeezenet1_1": _SQUEEZENET1_1,
    **_BYPASS_FACTS,
    "squeezenet_small": _SQUEEZENET_SMALL,
    "alexnet": _ALEXNET,
}
