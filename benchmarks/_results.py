"""Shared by the benchmark scripts: machine facts and the sections of benchmarks/RESULTS.md.

Each benchmark prints its table and, when asked (``--write``), replaces its own
``## <section>`` of ``benchmarks/RESULTS.md`` with a dated block that starts with the
machine facts (:func:`machine_facts`); the other sections are kept as they are.

Usage from a script in this folder::

  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from benchmarks import _results
  _results.write_section("framework overhead", body)
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import re
import sys

#: The results file every benchmark writes its section into.
RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_ENV = "DKSFLAX_BENCH_RESULTS"


def machine_facts() -> str:
  """One sentence: UTC date and time, device, CPU count, load average, Python and jax.

  The 1-minute load average is measured now (call it at the end of the run); when it is
  above the core count the sentence says that other jobs shared the cores.

  Returns:
    e.g. ``"2026-11-26 09:12 UTC. Machine: cpu (cpu; x86_64, 2 cores, 1-min load
    average 1.9 at the end), Python 3.11.7, jax 0.10.2."``
  """
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  cores = os.cpu_count() or 1
  load = os.getloadavg()[0]
  shared = ": other jobs shared the cores" if load > 1.25 * cores else ""
  now = datetime.datetime.now(datetime.timezone.utc)
  return (f"{now:%Y-%m-%d %H:%M} UTC. Machine: {device.platform} ({device.device_kind}; "
          f"{platform.machine()}, {cores} CPU cores, {jax.device_count()} device(s), "
          f"1-min load average {load:.1f} at the end{shared}), Python "
          f"{platform.python_version()}, jax {jax.__version__}.")


def replace_section(text: str, section: str, body: str) -> str:
  """Returns ``text`` with ``## section`` replaced by ``body`` (appended if absent).

  Args:
    text: Markdown of the whole results file.
    section: Section title without the ``## `` prefix.
    body: New content of the section (without its title).

  Returns:
    The new markdown; every other section is unchanged.

  Raises:
    ValueError: if ``section`` is empty or spans several lines.
  """
  if not section.strip() or "\n" in section:
    raise ValueError(f"section={section!r} must be one non-empty line (a '## ' title)")
  block = f"## {section}\n\n{body.strip()}\n"
  pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
  if pattern.search(text):
    return pattern.sub(lambda _: block + "\n", text).rstrip() + "\n"
  return text.rstrip() + "\n\n" + block


def write_section(section: str, body: str,
                  path: pathlib.Path | str | None = None) -> None:
  """Replaces (or appends) ``## section`` of the results file and says so.

  Args:
    section: Section title without the ``## `` prefix.
    body: Markdown body; start it with :func:`machine_facts` and the command line.
    path: Results file. (Default: $DKSFLAX_BENCH_RESULTS if set, else
      benchmarks/RESULTS.md; the smoke tests write to a temporary file this way)
  """
  path = pathlib.Path(path or os.environ.get(RESULTS_ENV) or RESULTS)
  text = path.read_text() if path.exists() else "# Benchmark results\n"
  path.write_text(replace_section(text, section, body))
  print(f"wrote section '{section}' of {path}", flush=True)


def write_run(section: str, script: str, argv: list[str] | None, note: str,
              table: str) -> None:
  """Writes ``## section`` as machine facts, the command that ran, ``note`` and ``table``.

  Args:
    section: Section title without the ``## `` prefix.
    script: The benchmark's file name, e.g. ``bench_optimizers.py``.
    argv: The arguments given to its ``main`` (None: ``sys.argv[1:]``).
    note: Sentences after the command (target, rounds, ...).
    table: The markdown the script printed.
  """
  argv_text = " ".join(sys.argv[1:] if argv is None else argv)
  write_section(section, f"{machine_facts()} Command: `.venv/bin/python "
                f"benchmarks/{script} {argv_text}`. {note}\n\n{table}")
