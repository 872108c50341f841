"""`data.*` config keys: dataset, augmentation, per-location normalisation."""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError, check_choice

DATASET_NAMES = ("cifar10", "cifar100", "imagenet2012", "digits", "synthetic")
PLN_MODES = ("none", "extra_channel", "constant")
#: Datasets read through tensorflow_datasets (the others need neither TF nor a download).
TFDS_DATASETS = ("cifar10", "cifar100", "imagenet2012")


def defaults() -> ml_collections.ConfigDict:
  """Returns the default `data` section (offline digits, no PLN, augmentation on)."""
  c = ml_collections.ConfigDict()
  c.name = "digits"
  c.data_dir = ""           # tfds data_dir ("" = $TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.manual_dir = ""         # ImageNet manual download directory (ILSVRC2012_img_*.tar)
  c.download = False        # cifar10/100 only: download + prepare when not yet prepared
  c.pln = "none"            # per-location normalisation (DKS §10.2)
  c.augment = True          # training augmentation (CIFAR crop+flip, Inception crop+flip)
  c.shuffle_buffer = 10_000  # ImageNet streaming shuffle buffer (in-memory sets: full permutation)
  c.image_size = -1         # -1: the dataset's standard size; other values: imagenet2012 only
  c.train_examples = -1    # use only the first N training examples (-1: all); sharded after
  c.prefetch = 2            # batches prepared ahead (host thread and device transfer)
  c.synthetic_shape = (32, 32, 3)
  c.synthetic_classes = 10
  c.synthetic_examples = 1024       # training examples
  c.synthetic_eval_examples = 256   # evaluation examples
  c.synthetic_seed = 0      # seed of the synthetic images/labels (the data, not the run)
  return c


def _int_at_least(key: str, value: object, low: int) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < low:
    raise ConfigError(f"{key}={value!r} must be an integer >= {low}")


def validate(data: ml_collections.ConfigDict) -> None:
  """Checks the `data` section (no file-system access; see dksflax.data.get_dataset_info)."""
  check_choice("data.name", data.name, DATASET_NAMES)
  check_choice("data.pln", data.pln, PLN_MODES)
  _int_at_least("data.shuffle_buffer", data.shuffle_buffer, 1)
  _int_at_least("data.prefetch", data.prefetch, 0)
  if data.train_examples != -1:
    _int_at_least("data.train_examples", data.train_examples, 1)
  if data.image_size != -1:
    if data.name != "imagenet2012":
      raise ConfigError(
          f"data.image_size={data.image_size!r} is only accepted for data.name='imagenet2012'"
          f" (data.name={data.name!r} has a fixed size); use -1")
    _int_at_least("data.image_size", data.image_size, 16)
  if data.name == "synthetic":
    shape = tuple(data.synthetic_shape)
    if len(shape) != 3 or any(
        not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
      raise ConfigError(
          f"data.synthetic_shape={data.synthetic_shape!r} must be (height, width, channels)"
          " of positive integers")
    _int_at_least("data.synthetic_classes", data.synthetic_classes, 2)
    _int_at_least("data.synthetic_examples", data.synthetic_examples, 1)
    _int_at_least("data.synthetic_eval_examples", data.synthetic_eval_examples, 1)
    _int_at_least("data.synthetic_seed", data.synthetic_seed, 0)
