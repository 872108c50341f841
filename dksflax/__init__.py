"""dksflax: deep kernel shaping for JAX/Flax.

Importing the package imports neither JAX nor TensorFlow: the shaping maths
(`dksflax.shaping`) is pure numpy/scipy, and each layer imports only what it needs.
"""

__version__ = "0.1.0"
