"""The pipeline's configuration: data, model, per-stage training budgets, pruning and bits."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squeezenet.compress.config import BitsRules, check_bits_rules
from squeezenet.errors import ConfigError
from squeezenet.formats.policy import PrunePolicy
from squeezenet.train.config import TrainConfig, recipe

# Deep Compression's SqueezeNet pattern (PAPER_RULES in squeezenet.compress.prune), heavier so
# that the small-input model's file stays well under 1/10 of its 32-bit size (batch norm adds
# 52 kB of float32 statistics to the file; 75 % on expand 3x3 measured only 1/10.6): the expand
# 3x3 layers hold 75 % of the weights and take most of the pruning, conv10 is pruned hard as in
# the paper, the 1x1 layers by half, and conv1 (576 weights) stays dense. Measured on the default
# Fashion-MNIST run: 73 % of all weights pruned, file 1/11.3 of dense, top-1 -0.15 points.
DEFAULT_POLICY = PrunePolicy(
    (
        ("fire*.expand3x3", 0.80),
        ("conv10", 0.80),
        ("fire*.expand1x1", 0.50),
        ("fire*.squeeze", 0.50),
    )
)
STAGES: tuple[str, ...] = ("dense", "prune", "quantize", "encode")


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline trains on and for how long; saved as pipeline.json, checked on resume.

    Budgets are epochs of the (subset) training set and may be fractional: a stage trains one
    pass over a seeded draw of ``round(epochs * n)`` images, so its LR schedule always completes.
    """

    data: str = "fashion-mnist"  # dataset spec (squeezenet.data.load_dataset): name, CSV, folder
    data_dir: str | None = None  # where a named dataset's files are (None: its usual place)
    download: bool = False  # let torchvision download a missing named dataset
    model: str = "squeezenet_small"  # registry name: the small-input SqueezeNet with batch norm
    overrides: Mapping[str, Any] = field(default_factory=dict)  # model config fields (base_e=16)
    train_images: int = 0  # train on a seeded subset of this many images (0: the whole split)
    test_images: int = 0  # evaluate on a seeded subset of this many images (0: the whole split)
    batch_size: int = 128  # images per SGD step, every stage
    dense_epochs: float = 1.5  # stage 1, the bulk of the 15 min budget: 88 % on Fashion-MNIST
    dense_lr: float = 0.05  # the "small" recipe's LR; cosine decay after a 5 % warm-up
    prune_epochs: float = 1.0  # stage 2, retraining with masks: 0.5 recovered 0.4 point less
    prune_lr: float = 0.01  # low, no warm-up: the weights start from a trained model
    quantize_epochs: float = 0.25  # stage 3: fine-tuning centroids, biases and batch norm
    quantize_lr: float = 0.002  # a centroid's gradient sums over its members (Sec. 3.3): keep low
    policy: PrunePolicy = DEFAULT_POLICY  # which layers to prune and how much
    bits: int | BitsRules = 6  # codebook index width, one for all or (pattern, bits) rules
    check_images: int = 64  # test images on which decoded and fine-tuned logits must agree
    tolerance: float = 1e-6  # largest |logit difference| accepted (same weights: 0 expected)
    seed: int = 0  # model init, subsets, data order, augmentation and dropout

    def __post_init__(self) -> None:
        self._check_inputs()
        for stage in ("dense", "prune", "quantize"):
            for name in (f"{stage}_epochs", f"{stage}_lr"):
                if not getattr(self, name) > 0:
                    raise ConfigError(
                        f"PipelineConfig.{name}: expected > 0, got {getattr(self, name)}"
                    )
        if not isinstance(self.policy, PrunePolicy):
            raise ConfigError(f"PipelineConfig.policy: expected a PrunePolicy, got {self.policy!r}")
        check_bits_rules(self.bits, "PipelineConfig.bits")
        if not self.tolerance >= 0:
            raise ConfigError(f"PipelineConfig.tolerance: expected >= 0, got {self.tolerance}")

    def _check_inputs(self) -> None:
        """The data, model and image-count fields."""
        for name in ("data", "model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"PipelineConfig.{name}: expected a non-empty string")
        if not isinstance(self.overrides, Mapping):
            raise ConfigError(f"PipelineConfig.overrides: expected a mapping, got {self.overrides}")
        for name in ("train_images", "test_images"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"PipelineConfig.{name}: expected an integer >= 0 (0: all)")
        for name in ("batch_size", "check_images"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"PipelineConfig.{name}: expected an integer >= 1")

    @classmethod
    def quick(cls, **changes: Any) -> PipelineConfig:
        """A ~1 minute run: 4,000 training and 1,000 test images, ~13,000 images trained."""
        values: dict[str, Any] = {
            "train_images": 4000,
            "test_images": 1000,
            "dense_epochs": 2.0,
            "prune_epochs": 0.75,
            "quantize_epochs": 0.5,
        }
        return cls(**{**values, **changes})

    def train_config(self, stage: str) -> TrainConfig:
        """The fit recipe of a training stage (one pass over the stage's draw of images)."""
        if stage == "dense":
            # float32 like the fine-tuning stages (the recorded pipeline results are float32)
            return recipe(
                "small", epochs=1, batch_size=self.batch_size, lr=self.dense_lr,
                warmup_epochs=0.05, seed=self.seed, bf16=False,
            )  # fmt: skip
        lr = {"prune": self.prune_lr, "quantize": self.quantize_lr}[stage]
        seed = self.seed + STAGES.index(stage)
        return recipe("finetune", epochs=1, batch_size=self.batch_size, lr=lr, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the policy as ``{"rules": [[pattern, amount], ...], "method": ...}``."""
        document: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))
        return document
