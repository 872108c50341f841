"""What each dataset is: classes, shapes, sizes, normalisation constants; cheap validation.

``get_dataset_info`` is the one entry point the trainer calls before any compute: it checks
the `data` config, and for the tfds datasets that the data is prepared (or can be), using
only the file system (no TensorFlow import), so a bad set-up fails in seconds with the
command that fixes it.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import ml_collections

from dksflax.configlib import data as data_cfg
from dksflax.errors import ConfigError
from dksflax.shaping.pln import pln_num_channels

#: Files the tfds imagenet2012 builder needs in the manual directory.
IMAGENET_MANUAL_FILES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model and a trainer need to know about a dataset.

  Attributes:
    name: ``data.name``.
    num_classes: Number of labels.
    image_shape: ``(H, W, C)`` of the images the pipeline yields, after PLN (which adds a
      channel, DKS §10.2).
    num_train_examples: Examples in the training split (all processes).
    num_eval_examples: Examples in the evaluation split (all processes).
  """
  name: str
  num_classes: int
  image_shape: tuple[int, int, int]
  num_train_examples: int
  num_eval_examples: int


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
  """Static facts of a dataset before PLN.

  Attributes:
    num_classes: Number of labels.
    image_shape: ``(H, W, C)`` as fed to the model before PLN.
    num_train: Training examples.
    num_eval: Evaluation examples.
    train_split: tfds split used for training ("" for offline sets).
    eval_split: tfds split used for evaluation.
    mean: Per-channel mean of the images scaled to [0, 1] (None: computed from the data).
    std: Per-channel standard deviation, same scale.
  """
  num_classes: int
  image_shape: tuple[int, int, int]
  num_train: int
  num_eval: int
  train_split: str = ""
  eval_split: str = ""
  mean: tuple[float, ...] | None = None
  std: tuple[float, ...] | None = None


# Channel statistics of the training sets (CIFAR: computed over the 50k training images;
# ImageNet: the usual torchvision/Flax constants).
_CIFAR10 = DatasetFacts(10, (32, 32, 3), 50_000, 10_000, "train", "test",
                        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_CIFAR100 = DatasetFacts(100, (32, 32, 3), 50_000, 10_000, "train", "test",
                         (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
_IMAGENET = DatasetFacts(1000, (224, 224, 3), 1_281_167, 50_000, "train", "validation",
                         (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: scikit-learn digits: 1,797 8x8 images; fixed split, the first 1,437 train, last 360 test.
DIGITS_NUM_TRAIN = 1437
DIGITS_NUM_TOTAL = 1797
_DIGITS = DatasetFacts(10, (8, 8, 1), DIGITS_NUM_TRAIN, DIGITS_NUM_TOTAL - DIGITS_NUM_TRAIN)
#: Uniform uint8 pixels scaled to [0, 1]: mean 1/2, std sqrt((256^2 - 1) / 12) / 255.
SYNTHETIC_MEAN = 0.5
SYNTHETIC_STD = float(((256.0 ** 2 - 1.0) / 12.0) ** 0.5 / 255.0)


def dataset_facts(data: ml_collections.ConfigDict) -> DatasetFacts:
  """Returns the facts of ``data.name`` (synthetic: from the data.synthetic_* keys).

  With ``data.train_examples = N > 0`` the training split is its first N examples.

  Raises:
    ConfigError: if the config is invalid, or N exceeds the training split.
  """
  facts = _full_facts(data)
  if data.train_examples > 0:
    if data.train_examples > facts.num_train:
      raise ConfigError(
          f"data.train_examples={data.train_examples} exceeds the {facts.num_train} "
          f"training examples of {data.name}; use -1 for all of them")
    facts = dataclasses.replace(facts, num_train=int(data.train_examples))
  return facts


def _full_facts(data: ml_collections.ConfigDict) -> DatasetFacts:
  """Facts of the whole dataset (before ``data.train_examples``); validates the config."""
  data_cfg.validate(data)
  if data.name == "cifar10":
    return _CIFAR10
  if data.name == "cifar100":
    return _CIFAR100
  if data.name == "imagenet2012":
    if data.image_size != -1:
      return dataclasses.replace(_IMAGENET, image_shape=(data.image_size, data.image_size, 3))
    return _IMAGENET
  if data.name == "digits":
    return _DIGITS
  shape = tuple(int(s) for s in data.synthetic_shape)
  channels = shape[-1]
  return DatasetFacts(int(data.synthetic_classes), shape, int(data.synthetic_examples),
                      int(data.synthetic_eval_examples),
                      mean=(SYNTHETIC_MEAN,) * channels, std=(SYNTHETIC_STD,) * channels)


def resolve_data_dir(data: ml_collections.ConfigDict) -> str:
  """Returns the tfds data directory: data.data_dir, else $TFDS_DATA_DIR, else the default."""
  if data.data_dir:
    return os.path.expanduser(data.data_dir)
  return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def is_prepared(data_dir: str, name: str) -> bool:
  """True if tfds has prepared ``name`` under ``data_dir`` (any version/config)."""
  return bool(glob.glob(os.path.join(data_dir, name, "**", "dataset_info.json"),
                        recursive=True))


def check_tfds_ready(data: ml_collections.ConfigDict) -> None:
  """Checks that a tfds dataset is prepared or can be prepared, before any compute.

  Remote data directories (``gs://...``) are checked later by tfds itself.

  Raises:
    ConfigError: naming what is missing and the ``tfds build`` command that prepares it.
  """
  if data.name not in data_cfg.TFDS_DATASETS:
    return
  data_dir = resolve_data_dir(data)
  if "://" in data_dir:
    return
  if data.data_dir and not os.path.isdir(data_dir):
    raise ConfigError(
        f"data.data_dir={data.data_dir!r} does not exist; point it at the tfds data "
        f"directory that holds {data.name}/ (prepare it with: tfds build {data.name} "
        f"--data_dir={data_dir})")
  if is_prepared(data_dir, data.name):
    return
  if data.name == "imagenet2012":
    manual = os.path.expanduser(data.manual_dir) if data.manual_dir else ""
    missing = [f for f in IMAGENET_MANUAL_FILES
               if not manual or not os.path.isfile(os.path.join(manual, f))]
    if missing:
      raise ConfigError(
          f"imagenet2012 is not prepared under data_dir={data_dir!r}, and "
          f"data.manual_dir={data.manual_dir!r} lacks {', '.join(missing)}. Download "
          f"{' and '.join(IMAGENET_MANUAL_FILES)} from https://image-net.org into a "
          "directory DIR, then either set data.manual_dir=DIR (the pipeline prepares the "
          "dataset once, which takes hours) or run: tfds build imagenet2012 "
          f"--data_dir={data_dir} --manual_dir=DIR")
    return
  if not data.download:
    raise ConfigError(
        f"{data.name} is not prepared under data_dir={data_dir!r} (no "
        f"{data.name}/<version>/dataset_info.json). Prepare it once with: tfds build "
        f"{data.name} --data_dir={data_dir} (needs internet), or set data.download=True")


def get_dataset_info(data: ml_collections.ConfigDict) -> DatasetInfo:
  """Returns the dataset's classes, image shape after PLN and split sizes; validates.

  Cheap: imports no TensorFlow and reads no data (tfds sets: only checks that the data is
  prepared, or that ImageNet's manual files are present).

  Args:
    data: The ``data`` config section.

  Returns:
    The DatasetInfo.

  Raises:
    ConfigError: on an invalid config or unprepared data (with the command to fix it).
  """
  facts = dataset_facts(data)
  check_tfds_ready(data)
  height, width, channels = facts.image_shape
  return DatasetInfo(
      name=data.name, num_classes=facts.num_classes,
      image_shape=(height, width, pln_num_channels(channels, data.pln)),
      num_train_examples=facts.num_train, num_eval_examples=facts.num_eval)
