"""JAX initialisers and model-level initialisation procedures.

Pure ``(key, shape, dtype)`` initialisers (fan-in Gaussian, orthogonal, Gaussian Delta,
Orthogonal Delta / SUO, looks-linear; DKS §4), a registry by name, edge-of-chaos scaled
initialisers, and the procedures that act on a whole parameter tree: LSUV
(data-dependent), Fixup and RISOTTO. Imports JAX, never TensorFlow.
"""

from __future__ import annotations

from dksflax.init.fixup import fixup_rescale, fixup_scale
from dksflax.init.initializers import (delta, fan_in_gaussian, gaussian_bias, looks_linear,
                                       orthogonal, orthogonal_delta, suo_matrix, zeros)
from dksflax.init.lsuv import LSUVLayer, LSUVReport, kernel_layers, lsuv
from dksflax.init.registry import (EOCInitializers, eoc_initializers, get_initializer,
                                   initializer_names)
from dksflax.init.risotto import RisottoBlockInit, risotto_block

__all__ = [
    "EOCInitializers", "LSUVLayer", "LSUVReport", "RisottoBlockInit", "delta",
    "eoc_initializers", "fan_in_gaussian", "fixup_rescale", "fixup_scale", "gaussian_bias",
    "get_initializer", "initializer_names", "kernel_layers", "looks_linear", "lsuv",
    "orthogonal", "orthogonal_delta", "risotto_block", "suo_matrix", "zeros",
]
