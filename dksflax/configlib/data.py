"""`data.*` config keys: dataset, augmentation, per-location normalisation."""

from __future__ import annotations

import ml_collections

from dksflax.errors import check_choice

DATASET_NAMES = ("cifar10", "cifar100", "imagenet2012", "digits", "synthetic")
PLN_MODES = ("none", "extra_channel", "constant")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "digits"
  c.data_dir = ""           # tfds data_dir ("" = tfds default)
  c.manual_dir = ""         # ImageNet manual download directory
  c.pln = "none"            # per-location normalisation (DKS §10.2)
  c.augment = True
  c.shuffle_buffer = 10_000
  c.image_size = -1         # -1: the dataset's standard size
  c.synthetic_shape = (32, 32, 3)
  c.synthetic_classes = 10
  c.synthetic_examples = 1024
  return c


def validate(data: ml_collections.ConfigDict) -> None:
  check_choice("data.name", data.name, DATASET_NAMES)
  check_choice("data.pln", data.pln, PLN_MODES)
