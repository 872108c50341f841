"""Test set-up: two fake CPU devices for every test process (set before JAX loads)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_flag = "--xla_force_host_platform_device_count=2"
if _flag not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
# Keep TensorFlow (tfds pipelines) off any accelerator and from grabbing all cores.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
