"""Executes the notebooks in place, so that they are committed with their outputs.

  .venv/bin/python notebooks/execute.py                      # both notebooks
  .venv/bin/python notebooks/execute.py sweep_results.ipynb  # one of them

Each notebook runs with nbclient on the kernel "python3", which jupyter_client resolves to
the interpreter running this script (the project's venv), with notebooks/ as the working
directory, as tests/test_notebooks.py runs them. A cell error stops with a non-zero exit
status and leaves the file untouched. Per-cell execution timestamps and widget state are
dropped before writing, so a re-execution only changes the outputs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ("shaping_walkthrough.ipynb", "sweep_results.ipynb")


def strip_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
  """Removes execution timestamps and widget state (they change on every run).

  Args:
    nb: the executed notebook (modified in place).

  Returns:
    The same notebook.
  """
  nb.metadata.pop("widgets", None)
  for cell in nb.cells:
    cell.metadata.pop("execution", None)
    cell.metadata.pop("widgets", None)
  return nb


def execute(path: str, *, timeout: int = 600) -> float:
  """Executes one notebook and writes it back with its outputs.

  Args:
    path: the .ipynb file.
    timeout: seconds allowed per cell. (Default: 600)

  Returns:
    The wall-clock seconds the execution took.

  Raises:
    FileNotFoundError: no such notebook.
    CellExecutionError: a cell raised (the file is not rewritten).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"notebook {path!r} does not exist; choose from {NOTEBOOKS}")
  nb = nbformat.read(path, as_version=4)
  start = time.perf_counter()
  NotebookClient(nb, timeout=timeout, kernel_name="python3",
                 resources={"metadata": {"path": HERE}}).execute()
  seconds = time.perf_counter() - start
  nbformat.write(strip_metadata(nb), path)
  return seconds


def main(argv: Sequence[str]) -> int:
  """Executes the named notebooks (all when none is named); returns the exit status."""
  names = list(argv) or list(NOTEBOOKS)
  for name in names:
    path = name if os.path.isabs(name) else os.path.join(HERE, os.path.basename(name))
    print(f"executing {path} ...", flush=True)
    try:
      seconds = execute(path)
    except (FileNotFoundError, CellExecutionError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
    print(f"  done in {seconds:.1f} s, outputs written", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
