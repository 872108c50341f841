"""Settings shared by the TAT (Zhang et al., ICLR 2022) ImageNet experiments.

The networks of the tables (TAT §5) and the grid search of TAT Appendix D, as sweep
settings on top of ``configs/imagenet_resnet.py`` (90 epochs, batch 1024, label
smoothing 0.1, 5-epoch warm-up then /10 at 4/9 and 7/9, K-FAC damping 1e-3 and norm
constraint 1e-3, LARS trust 1e-3, momentum 0.9, Orthogonal Delta init: see that file).

Network builders (each a `Setting` with its config string and overrides):
  * `resnet`: standard ResNet-V2, batch norm, ReLU, sigma_w = sqrt(2) (TAT §5).
  * `eoc_relu`: vanilla ReLU net on the edge of chaos, (sigma_w, sigma_b) = (sqrt 2, 0).
  * `eoc_tanh`: vanilla tanh net on the edge of chaos with sigma_w = 1.302 (TAT §5.4).
  * `tat`: TAT, leaky ReLU (TReLU, eta) or smooth (tau); w = 0 is the vanilla net.
  * `dks`: DKS (zeta = 1.5) with any activation; w = 0 is the vanilla net.
  * `relu_rescaled`: rescaled ResNet (TAT Eq. 6) with plain ReLU and sigma_w = sqrt 2.
  * `shortcut_free`: vanilla ReLU net with batch norm or layer norm (TAT Table 3).

`paper_search(cell)` is the search of TAT App. D for that cell: learning rate from the
optimizer's grid, L2 from {5e-5, 2e-5, 0}, penultimate dropout from {0.2, 0} for nets
without batch norm, eta from {0.9, 0.95} for TReLU (§5), tau from {0.2, 0.3, 0.5} for
smooth TAT and zeta from {1.5, 10, 100} for DKS with smooth activations (§5.4).
"""

from __future__ import annotations

from typing import Any

from dksflax.sweep import Setting, grid, setting, values

CONFIG = "configs/imagenet_resnet.py"
NUM_TRAIN = 1_281_167
#: TAT App. D learning-rate grids; Adam/Shampoo are not in TAT (DKS §27.5 settings).
LEARNING_RATES = {
    "sgd": (1.0, 0.3, 0.1, 0.03, 0.01),
    "kfac": (0.003, 0.001, 0.0003, 0.0001, 0.00003),
    "lars": (10.0, 3.0, 1.0, 0.3, 0.1),
}
L2_GRID = (5e-5, 2e-5, 0.0)
DROPOUT_GRID = (0.2, 0.0)
ETA_GRID = (0.9, 0.95)
TAU_GRID = (0.2, 0.3, 0.5)
ZETA_GRID = (1.5, 10.0, 100.0)
OPTIMIZER_LABELS = {"kfac": "K-FAC", "sgd": "SGD", "lars": "LARS", "adam": "Adam",
                    "shampoo": "Shampoo"}
#: q* of the tanh edge of chaos with sigma_w = 1.302 (TAT §5.4, after Hayou et al. 2019):
#: sigma_w^2 E[tanh'(sqrt(q*) z)^2] = 1 gives q* = 0.506798 and then sigma_b = 0.198.
#: (The printed (1.302, 0.02) is not on the edge of chaos: its chi_1 is 1.064.)
EOC_TANH_Q_STAR = 0.5067981462019508


def _config(variant: str, method: str, optimizer: str, depth: int) -> str:
  return f"{CONFIG}:{variant},{method},{optimizer},{depth}"


def warmup_override(batch_size: int) -> dict[str, int]:
  """5 epochs of linear warm-up (TAT App. D) at another batch size, in steps."""
  return {"train.batch_size": batch_size,
          "optimizer.warmup_steps": 5 * (NUM_TRAIN // batch_size)}


def resnet(depth: int, optimizer: str, **overrides: Any) -> Setting:
  """Standard ResNet-V2 (batch norm, ReLU, He-scaled Orthogonal Delta)."""
  return setting(config=_config("standard", "none", optimizer, depth), overrides=overrides)


def eoc_relu(depth: int, optimizer: str, **overrides: Any) -> Setting:
  """Vanilla ReLU network on the edge of chaos (sigma_w^2 = 2, sigma_b = 0)."""
  return setting(config=_config("vanilla", "eoc", optimizer, depth), overrides=overrides)


def eoc_tanh(depth: int, optimizer: str) -> Setting:
  """Vanilla tanh network on the edge of chaos with sigma_w = 1.302 (see module doc)."""
  return setting(config=_config("vanilla", "eoc", optimizer, depth),
                 overrides={"model.activation": "tanh",
                            "shaping.eoc_q_star": EOC_TANH_Q_STAR})


def _shaped(method: str, depth: int, optimizer: str, w: float, activation: str,
            extra: dict[str, Any]) -> Setting:
  variant = "vanilla" if w == 0.0 else "rescaled"
  overrides = {"model.activation": activation}
  if w != 0.0:
    overrides["shaping.shortcut_weight"] = w
  overrides.update(extra)
  return setting(config=_config(variant, method, optimizer, depth), overrides=overrides)


def tat(depth: int, optimizer: str, w: float = 0.0, activation: str = "leaky_relu",
        **extra: Any) -> Setting:
  """TAT: TReLU for leaky_relu (eta), smooth TAT otherwise (tau); w = 0 is vanilla."""
  return _shaped("tat", depth, optimizer, w, activation, extra)


def dks(depth: int, optimizer: str, w: float = 0.0, activation: str = "softplus",
        **extra: Any) -> Setting:
  """DKS with zeta from the config (1.5); w = 0 is vanilla."""
  return _shaped("dks", depth, optimizer, w, activation, extra)


def relu_rescaled(depth: int, optimizer: str, w: float) -> Setting:
  """Rescaled ResNet (no normalisation) with ReLU and sigma_w = sqrt 2; w = 0: vanilla EOC."""
  if w == 0.0:
    return eoc_relu(depth, optimizer)
  return setting(config=_config("rescaled", "none", optimizer, depth),
                 overrides={"shaping.shortcut_weight": w})


def shortcut_free(depth: int, optimizer: str, normalization: str) -> Setting:
  """Vanilla ReLU network with batch norm or layer norm after each convolution."""
  return setting(config=_config("vanilla", "none", optimizer, depth),
                 overrides={"model.normalization": normalization})


def _parse(cell: Setting) -> tuple[str, str, str, str, str, str]:
  """Returns (variant, method, optimizer, depth, activation, normalization) of a cell."""
  path, _, arg = (cell.config or "").partition(":")
  if path != CONFIG:
    raise ValueError(f"paper_search needs a {CONFIG} cell, got {cell.config!r}")
  variant, method, optimizer, depth = arg.split(",")
  ovr = cell.override_dict()
  default_act = {"tat": "leaky_relu", "dks": "softplus"}.get(method, "relu")
  activation = ovr.get("model.activation", default_act)
  norm = ovr.get("model.normalization", "batch_norm" if variant == "standard" else "none")
  return variant, method, optimizer, depth, activation, norm


def paper_search(cell: Setting) -> tuple[Setting, ...]:
  """The TAT App. D grid search for one cell (see the module docstring)."""
  _, method, optimizer, _, activation, norm = _parse(cell)
  ovr = cell.override_dict()
  axes = [values("optimizer.learning_rate", LEARNING_RATES[optimizer], label=""),
          values("optimizer.l2", L2_GRID, label="")]
  if norm != "batch_norm" and "model.dropout" not in ovr:
    axes.append(values("model.dropout", DROPOUT_GRID, label=""))
  if method == "tat" and activation == "leaky_relu" and "shaping.eta" not in ovr:
    axes.append(values("shaping.eta", ETA_GRID, label=""))
  if method == "tat" and activation != "leaky_relu" and "shaping.tau" not in ovr:
    axes.append(values("shaping.tau", TAU_GRID, label=""))
  if method == "dks" and activation in ("softplus", "tanh") and "shaping.zeta" not in ovr:
    axes.append(values("shaping.zeta", ZETA_GRID, label=""))
  return grid(*axes)


def search_size(cell: Setting) -> int:
  """Number of points of `paper_search(cell)` (for tests and run-count estimates)."""
  return len(paper_search(cell))
