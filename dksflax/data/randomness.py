"""Counter-based randomness for input pipelines: every draw is a function of its indices.

A training run must be reproducible and resumable mid-epoch without replaying the stream
(user_needs §5: init2winit 7cd5e05, axlearn#820), so no pipeline keeps RNG state:

* the order of epoch ``e`` is ``epoch_permutation(seed, e, n)``: a fresh
  ``np.random.default_rng`` seeded with ``(seed, e)`` (no global RNG);
* the random choices for the example at global stream position ``g`` (crop offsets, flip)
  are ``uniform(seed, purpose, g)``: a SplitMix64 hash of the three integers. Positions
  are distinct across processes (see ``dksflax.data.stream``), so hosts never share draws.
"""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)

#: Purposes: one independent stream per kind of random choice.
CROP_Y = 1
CROP_X = 2
FLIP = 3
CROP_SCALE = 4
PERMUTATION = 5


def _splitmix64(z: np.ndarray) -> np.ndarray:
  """The SplitMix64 finaliser (Steele et al. 2014), elementwise on uint64 arrays."""
  with np.errstate(over="ignore"):
    z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return z ^ (z >> np.uint64(31))


def hash_bits(seed: int, purpose: int, index: np.ndarray | int) -> np.ndarray:
  """Returns 64 pseudo-random bits for each ``index``, fixed by ``(seed, purpose, index)``.

  Args:
    seed: Run seed (any non-negative integer below 2**63).
    purpose: Which random choice (one of the module constants).
    index: Non-negative integer(s), e.g. global example positions.

  Returns:
    uint64 array of ``index``'s shape.
  """
  idx = np.asarray(index, dtype=np.uint64)
  with np.errstate(over="ignore"):
    key = _splitmix64(np.uint64(seed) ^ (np.uint64(purpose) << np.uint64(56)))
    return _splitmix64(key ^ _splitmix64(idx))


def uniform(seed: int, purpose: int, index: np.ndarray | int) -> np.ndarray:
  """Returns float64 draws in ``[0, 1)`` fixed by ``(seed, purpose, index)`` (53-bit)."""
  bits = hash_bits(seed, purpose, index) >> np.uint64(11)
  return bits.astype(np.float64) * (1.0 / (1 << 53))


def randint(seed: int, purpose: int, index: np.ndarray | int, high: int) -> np.ndarray:
  """Returns int64 draws in ``[0, high)`` fixed by ``(seed, purpose, index)``."""
  return np.minimum(np.floor(uniform(seed, purpose, index) * high), high - 1).astype(np.int64)


def epoch_permutation(seed: int, epoch: int, n: int, shard: int = 0) -> np.ndarray:
  """Returns the order of epoch ``epoch`` over ``n`` examples, fixed by the arguments.

  ``shard`` (a data shard's index) varies the order between shards; shards are disjoint
  slices of the split, so this can never make two of them read the same example.
  """
  rng = np.random.default_rng([int(seed), int(epoch), PERMUTATION, int(shard)])
  return rng.permutation(n)


def tf_seed_key(seed: int, purpose: int) -> int:
  """Returns a 31-bit key for TF stateless ops: the pair ``[key, g]`` seeds example ``g``."""
  return int(hash_bits(seed, purpose, 0) >> np.uint64(33))
