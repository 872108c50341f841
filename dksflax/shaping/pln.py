"""Per-Location Normalization (PLN) of a network's input: the reference maths (DKS §10.2).

DKS needs uniform q values (DKS §10): every location vector of the input feature map must
have dimension-normalised squared norm ``||x_i||^2 / k = 1``. The naive normalisation
``sqrt(k) x_i / ||x_i||`` destroys a degree of freedom per location (for ``k = 1`` it maps
every value to +-1), so DKS §10.2 first appends an extra channel and then normalises:

* ``extra_channel`` (the variant used in DKS's experiments, §10.2 and §27.1): the extra
  channel holds ``h = (1/k E_j ||x_j||^2)^(1/2)``, the root mean square of the whole feature
  map ``X`` (average over all locations ``j`` and channels), and location ``i`` becomes

      (k + 1)^(1/2) [x_i; h] / (||x_i||^2 + h^2)^(1/2).

  Only one degree of freedom of ``X`` is lost. Needs many locations and/or channels.
* ``constant``: the extra channel is the constant 1 (DKS §10.2, for one location and few
  channels, e.g. an MLP input): ``(k + 1)^(1/2) [x; 1] / (||x||^2 + 1)^(1/2)``; invertible.
* ``none``: the input is passed through unchanged (no PLN).

This module is the float64 numpy reference; the input pipelines in ``dksflax.data`` apply
it (or, inside TensorFlow pipelines, an equivalent TF implementation that a test checks
against this one).
"""

from __future__ import annotations

import numpy as np

from dksflax.configlib.data import PLN_MODES
from dksflax.errors import ConfigError, check_choice

__all__ = ["PLN_MODES", "dimension_normalized_sq_norms", "extra_channel_value",
           "per_location_normalize", "pln_num_channels"]


def pln_num_channels(num_channels: int, mode: str) -> int:
  """Returns the channel count after PLN (DKS §10.2 adds one channel unless mode is none).

  Args:
    num_channels: Channels ``k`` of the input feature map.
    mode: One of ``PLN_MODES``.

  Returns:
    ``k`` for ``none``, ``k + 1`` otherwise.

  Raises:
    ConfigError: if ``mode`` is unknown or ``num_channels`` is not positive.
  """
  check_choice("data.pln", mode, PLN_MODES)
  if int(num_channels) != num_channels or num_channels < 1:
    raise ConfigError(f"num_channels={num_channels!r} must be a positive integer")
  return int(num_channels) + (0 if mode == "none" else 1)


def extra_channel_value(x: np.ndarray, *, has_batch_dim: bool = True) -> np.ndarray:
  """Returns ``(1/k E_j ||x_j||^2)^(1/2)`` per feature map (DKS §10.2).

  Args:
    x: Feature maps ``[..., k]`` (channels last); with ``has_batch_dim`` the first axis
      indexes independent examples, and every other non-channel axis indexes locations.
    has_batch_dim: Whether the first axis of ``x`` is a batch axis. (Default: True)

  Returns:
    float64 array of shape ``[B]`` (with a batch axis) or ``[]`` (without): the root mean
    square of each feature map over all its locations and channels.

  Raises:
    ValueError: if ``x`` has no channel axis (or only a batch axis).
  """
  x = np.asarray(x, dtype=np.float64)
  first = 1 if has_batch_dim else 0
  if x.ndim < first + 1:
    raise ValueError(
        f"PLN needs a channel axis: got shape {x.shape} with has_batch_dim={has_batch_dim}")
  axes = tuple(range(first, x.ndim))
  return np.sqrt(np.mean(np.square(x), axis=axes))


def per_location_normalize(x: np.ndarray, mode: str, *,
                           has_batch_dim: bool = True) -> np.ndarray:
  """Applies PLN (DKS §10.2) to channels-last feature maps, in float64.

  After ``extra_channel`` or ``constant`` every location vector ``z_i`` of the output
  satisfies ``||z_i||^2 / (k + 1) = 1``. An all-zero feature map has ``h = 0`` under
  ``extra_channel``; since the map ``x -> PLN(x)`` is invariant to a positive rescaling of
  the whole feature map, its value at any ``h > 0`` is ``[0, ..., 0, (k + 1)^(1/2)]`` at
  every location, and that is the value returned (never a NaN).

  Args:
    x: Feature maps ``[B, ..., k]`` (or ``[..., k]`` without a batch axis), channels last.
    mode: ``none`` (identity), ``extra_channel`` or ``constant``.
    has_batch_dim: Whether the first axis of ``x`` is a batch axis. (Default: True)

  Returns:
    float64 array ``[..., k]`` for ``none`` and ``[..., k + 1]`` otherwise.

  Raises:
    ConfigError: if ``mode`` is unknown.
    ValueError: if ``x`` lacks a channel axis or holds non-finite values.
  """
  check_choice("data.pln", mode, PLN_MODES)
  x = np.asarray(x, dtype=np.float64)
  if mode == "none":
    return x
  if not np.all(np.isfinite(x)):
    raise ValueError("PLN input holds non-finite values (NaN or inf); fix the data first")
  if mode == "extra_channel":
    h = extra_channel_value(x, has_batch_dim=has_batch_dim)
    # Scale invariance (see docstring): an all-zero map gets any positive h, here 1.
    h = np.where(h > 0.0, h, 1.0)
    h = h.reshape(h.shape + (1,) * (x.ndim - h.ndim))
    extra = np.broadcast_to(h, x.shape[:-1] + (1,))
  else:
    extra = np.ones(x.shape[:-1] + (1,), dtype=np.float64)
  z = np.concatenate([x, extra], axis=-1)
  k_plus_1 = z.shape[-1]
  norm = np.sqrt(np.sum(np.square(z), axis=-1, keepdims=True))
  return np.sqrt(k_plus_1) * z / norm


def dimension_normalized_sq_norms(z: np.ndarray) -> np.ndarray:
  """Returns ``||z_i||^2 / dim`` for every location vector (the q values of DKS §10.2).

  Args:
    z: Channels-last array.

  Returns:
    float64 array of ``z``'s shape without the channel axis.
  """
  z = np.asarray(z, dtype=np.float64)
  return np.mean(np.square(z), axis=-1)
