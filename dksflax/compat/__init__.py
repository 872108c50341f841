"""Small, tested, removable fixes for third-party packages on current JAX (see each module)."""
