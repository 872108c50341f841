"""Paper reproductions as sweeps: one file per table (TAT) or experiment (DKS).

Each file defines ``SWEEP`` (a `dksflax.sweep.Sweep`) and ``PAPER_RESULTS`` (the
numbers as printed, keyed by the cell's label values). Run and tabulate with

  dksflax sweep experiments/tat_table2.py --root runs [--search] [--devices 0,1,...]
  dksflax report experiments/tat_table2.py --root runs
"""
