"""``dksflax demo``: the offline demonstration behind ``make demo``.

Two parts, each in its own module:
  * `kernel_maps`: predicted network C maps of deep vanilla nets (numpy only).
  * `training`: the same kind of deep vanilla MLP trained on digits with standard
    initialisation, EOC, DKS and TAT, plus a standard ResNet reference, through the real
    trainer (`runs`), best learning rate per method (`table`), training curves (`curves`).
"""
