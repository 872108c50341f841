"""TensorFlow per-example ops for the streaming ImageNet pipeline (and PLN inside tf.data).

* Training (Szegedy et al. 2015 "Inception" crop, as in DKS §27.1 and TAT App. D): a random
  box covering 8%-100% of the image with aspect ratio in [3/4, 4/3] (10 attempts, else the
  central crop), decoded straight from the JPEG, resized to ``size`` x ``size``, then a
  random horizontal flip.
* Evaluation: the central crop of side ``size / (size + 32) * min(h, w)`` (224 / 256 of the
  short side, the same as resizing the short side to 256 and cropping 224), resized.

Randomness is stateless: the ops of the example at global stream position ``g`` are seeded
by ``[key, g]`` with ``key = randomness.tf_seed_key(seed, purpose)``.
"""

from __future__ import annotations

import tensorflow as tf

from dksflax.configlib.data import PLN_MODES
from dksflax.errors import check_choice

AREA_RANGE = (0.08, 1.0)
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
MAX_ATTEMPTS = 10
CROP_PADDING = 32


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
  image = tf.image.resize(image, [size, size], method="bicubic")
  return tf.clip_by_value(image, 0.0, 255.0)


def center_crop(jpeg: tf.Tensor, size: int) -> tf.Tensor:
  """Decodes the central crop (``size / (size + 32)`` of the short side), resizes; float32."""
  shape = tf.io.extract_jpeg_shape(jpeg)
  height, width = shape[0], shape[1]
  side = tf.cast(
      (size / (size + CROP_PADDING)) * tf.cast(tf.minimum(height, width), tf.float32),
      tf.int32)
  top = (height - side + 1) // 2
  left = (width - side + 1) // 2
  window = tf.stack([top, left, side, side])
  image = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3)
  return _resize(tf.cast(image, tf.float32), size)


def inception_crop_flip(jpeg: tf.Tensor, size: int, crop_seed: tf.Tensor,
                        flip_seed: tf.Tensor) -> tf.Tensor:
  """Random-resized crop + flip from stateless seeds (int64 ``[2]`` each); float32 out."""
  shape = tf.io.extract_jpeg_shape(jpeg)
  whole = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=whole, seed=crop_seed, min_object_covered=0.1,
      aspect_ratio_range=ASPECT_RATIO_RANGE, area_range=AREA_RANGE,
      max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  top, left, _ = tf.unstack(begin)
  height, width, _ = tf.unstack(crop_size)
  window = tf.stack([top, left, height, width])
  failed = tf.reduce_all(tf.equal(shape[:2], crop_size[:2]))  # no box found: whole image

  def cropped():
    image = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3)
    return _resize(tf.cast(image, tf.float32), size)

  image = tf.cond(failed, lambda: center_crop(jpeg, size), cropped)
  return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def normalize(image: tf.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> tf.Tensor:
  """Returns ``(image / 255 - mean) / std`` per channel, float32."""
  image = tf.cast(image, tf.float32) / 255.0
  return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def per_location_normalize(image: tf.Tensor, mode: str) -> tf.Tensor:
  """PLN (DKS §10.2) of one ``[H, W, C]`` image; the TF twin of ``dksflax.shaping.pln``.

  Args:
    image: float32 ``[H, W, C]``.
    mode: ``none``, ``extra_channel`` (extra channel ``(1/k E_j ||x_j||^2)^(1/2)``) or
      ``constant`` (extra channel 1).

  Returns:
    float32 ``[H, W, C]`` for ``none``, ``[H, W, C + 1]`` otherwise, every location with
    dimension-normalised squared norm 1.
  """
  check_choice("data.pln", mode, PLN_MODES)
  if mode == "none":
    return image
  ones = tf.ones_like(image[..., :1])
  if mode == "extra_channel":
    h = tf.sqrt(tf.reduce_mean(tf.square(image)))
    h = tf.where(h > 0.0, h, 1.0)  # all-zero map: scale invariance, see shaping.pln
    extra = ones * h
  else:
    extra = ones
  z = tf.concat([image, extra], axis=-1)
  return z * tf.math.rsqrt(tf.reduce_mean(tf.square(z), axis=-1, keepdims=True))
