"""Flax linen models built from `dksflax.shaping.architectures` specs, and the config entry.

  build.py          build_network(config, *, num_classes, input_shape) -> (model, init_fn,
                    report); shaping_for(config) -> ShapingPlan (no params built)
  shaping_plan.py   solver dispatch and derived kernel quantities (no JAX)
  compatibility.py  which shaping method works with which model (no JAX)
  registry.py       model.name -> spec builder; spec -> module class
  resnet.py         ResNet-V2 / Wide-ResNet module (intermediates "stem", "block_i", ...)
  blocks.py         residual blocks: standard, rescaled, vanilla, Fixup, SkipInit, RISOTTO
  mlp.py            MLP module ("layer_i")
  norm.py, pooling.py, model_inits.py   normalisation, (weighted) mean pooling, init bundle
  activations.py    JAX activation twins and transformed activations

Nothing is imported here, so `dksflax.models.compatibility` stays importable without JAX.
"""
