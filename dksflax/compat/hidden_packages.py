"""Make installed packages look absent, to run the GPU machines' software set on a CPU box.

The GPU machines (issue 9) have no TensorFlow, tfds or clu. On the CPU machine they are
installed, and some libraries load them whenever they can: tfp-nightly's JAX substrate
(under distrax, under kfac-jax) imports TensorFlow inside ``try/except`` when it is
installed (about 10 s). :class:`HiddenPackages` replaces ``sys.meta_path`` by one finder
that answers "not found" for the hidden top-level packages and asks the original finders
for every other name, so ``import tensorflow`` raises ``ModuleNotFoundError`` and
``importlib.util.find_spec("tensorflow")`` returns None, exactly as where it is not
installed. The no-TensorFlow test and ``benchmarks/bench_gpu_resnet50.py`` use it.

Standard library only: install it before anything imports the packages it hides.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from typing import Any

#: TensorFlow and the packages that import it (clu's writers, tfds, Keras 2, TensorBoard).
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow_datasets", "tf_keras", "clu",
                       "tensorboard")


class HiddenPackages:
  """A ``sys.meta_path`` stand-in under which ``roots`` look not installed.

  Args:
    roots: Top-level package names to hide (``"tensorflow"`` hides
      ``tensorflow.*`` too).
  """

  def __init__(self, roots: Sequence[str] = TENSORFLOW_PACKAGES):
    self.roots = frozenset(roots)
    self.attempts: list[str] = []
    self._finders: list[Any] = []
    self._saved: list[Any] | None = None

  def find_spec(self, name: str, path: Any = None,
                target: Any = None) -> importlib.machinery.ModuleSpec | None:
    """``None`` for hidden names (recorded in ``attempts``); else the first finder's spec."""
    if name.split(".")[0] in self.roots:
      self.attempts.append(name)
      return None
    for finder in self._finders:
      find = getattr(finder, "find_spec", None)
      spec = find(name, path, target) if find is not None else None
      if spec is not None:
        return spec
    return None

  def invalidate_caches(self) -> None:
    """Forwards ``importlib.invalidate_caches`` to the original finders."""
    for finder in self._finders:
      if hasattr(finder, "invalidate_caches"):
        finder.invalidate_caches()

  def install(self) -> HiddenPackages:
    """Puts this finder in place of ``sys.meta_path``; returns ``self``.

    Raises:
      RuntimeError: If a hidden package is already imported (hiding it now would not
        unload it), naming the package.
    """
    loaded = sorted({m.split(".")[0] for m in sys.modules} & self.roots)
    if loaded:
      raise RuntimeError(f"cannot hide {loaded}: already imported in this process; "
                         "install HiddenPackages before anything imports them")
    if self._saved is None:
      self._saved = list(sys.meta_path)
      self._finders = list(sys.meta_path)
      sys.meta_path[:] = [self]
    return self

  def uninstall(self) -> None:
    """Restores the original ``sys.meta_path``."""
    if self._saved is not None:
      sys.meta_path[:] = self._saved
      self._saved = None

  def loaded(self) -> list[str]:
    """Hidden top-level packages that are imported anyway (should stay empty)."""
    return sorted({m.split(".")[0] for m in sys.modules} & self.roots)
