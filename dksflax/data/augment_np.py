"""Batch image preprocessing in numpy (no TensorFlow): CIFAR crop+flip, normalisation, PLN.

Used for every dataset held in memory (CIFAR-10/100, digits, synthetic), so the offline
datasets run where TensorFlow is absent, and synthetic CIFAR-shaped data goes through
exactly the CIFAR code (the input-pipeline benchmark measures it).

CIFAR augmentation (TAT App. D, DKS §27.1; He et al. 2016): zero-pad 4 pixels on each side,
take a random 32x32 crop, flip horizontally with probability 1/2. The crop offsets and the
flip of the example at global stream position ``g`` come from ``(seed, g)``
(``dksflax.data.randomness``), so a resumed run augments exactly like an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from dksflax.data import randomness
from dksflax.shaping.pln import per_location_normalize

CIFAR_PAD = 4


def crop_flip_params(seed: int, positions: np.ndarray, pad: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Returns (offset_y, offset_x, flip) for each global stream position.

  Args:
    seed: Run seed.
    positions: int64 global stream positions ``[B]``.
    pad: Padding on each side; offsets are uniform on ``{0, ..., 2 * pad}``.

  Returns:
    Two int64 arrays of offsets and one bool array of flips, each ``[B]``.
  """
  oy = randomness.randint(seed, randomness.CROP_Y, positions, 2 * pad + 1)
  ox = randomness.randint(seed, randomness.CROP_X, positions, 2 * pad + 1)
  flip = randomness.uniform(seed, randomness.FLIP, positions) < 0.5
  return oy, ox, flip


def pad_crop_flip(images: np.ndarray, offset_y: np.ndarray, offset_x: np.ndarray,
                  flip: np.ndarray, pad: int = CIFAR_PAD) -> np.ndarray:
  """Zero-pads, crops back to the input size at the given offsets, and flips (one gather).

  Args:
    images: ``[B, H, W, C]`` array (any dtype).
    offset_y: int ``[B]`` crop row offsets into the padded image, in ``[0, 2 * pad]``.
    offset_x: int ``[B]`` crop column offsets, in ``[0, 2 * pad]``.
    flip: bool ``[B]``: mirror the crop left-right.
    pad: Zero padding on each side. (Default: 4, CIFAR)

  Returns:
    ``[B, H, W, C]`` array of ``images``' dtype.
  """
  b, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  rows = offset_y[:, None] + np.arange(h)[None, :]
  cols_fwd = np.arange(w)[None, :]
  cols = offset_x[:, None] + np.where(flip[:, None], w - 1 - cols_fwd, cols_fwd)
  return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalize(images: np.ndarray, scale: float, mean: np.ndarray, std: np.ndarray
              ) -> np.ndarray:
  """Returns float32 ``(images * scale - mean) / std``, per channel (channels last)."""
  x = images.astype(np.float32) * np.float32(scale)
  return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def apply_pln(images: np.ndarray, mode: str) -> np.ndarray:
  """Applies PLN (DKS §10.2) to a float batch ``[B, H, W, C]``; float32 out."""
  if mode == "none":
    return images
  return per_location_normalize(images, mode, has_batch_dim=True).astype(np.float32)
