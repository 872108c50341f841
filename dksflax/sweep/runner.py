"""Running a sweep's runs: locally one after another, one per device, or as commands.

Each run is the ``dksflax train`` command of `Run.train_args`, run in the project root.
Before starting anything the runner looks at each run's workdir:

  * ``finished``: ``results.json`` says ``completed`` or ``failed`` (a non-finite loss;
    rerunning would only reproduce it). Skipped: a rerun never overwrites its results.
  * ``interrupted``: the workdir exists but has no final ``results.json`` (killed, or
    ``preempted`` by SIGTERM). The same command is run again on the same workdir, which
    resumes from its newest checkpoint (`dksflax.train`).
  * ``new``: no workdir yet.

With ``devices=["0", "1", ...]`` up to one run per device runs at a time, each in its own
process with ``CUDA_VISIBLE_DEVICES`` set to its device. Output of each run is appended
to ``ROOT/SWEEP/logs/NAME.log`` (not inside the workdir, which the trainer guards).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from dksflax.errors import ConfigError
from dksflax.sweep.expand import Run

RESULTS_FILE = "results.json"
CONFIG_FILE = "config.json"
FINISHED_STATUSES = ("completed", "failed")


def read_results(workdir: str) -> dict[str, Any] | None:
  """Returns the parsed ``results.json`` of a workdir, or None when there is none.

  A file that cannot be parsed (a crash while writing; the trainer writes atomically, so
  only a foreign file can be broken) is treated as absent.
  """
  path = os.path.join(workdir, RESULTS_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, json.JSONDecodeError):
    return None
  return data if isinstance(data, dict) else None


def run_status(workdir: str) -> str:
  """Returns ``finished``, ``interrupted`` or ``new`` for a run directory."""
  results = read_results(workdir)
  if results is not None and results.get("status") in FINISHED_STATUSES:
    return "finished"
  if os.path.isdir(workdir) and os.listdir(workdir):
    return "interrupted"
  return "new"


def shell_command(run: Run, *, program: Sequence[str] = ("dksflax",)) -> str:
  """The run's train command as one shell-quoted line (run it in the project root)."""
  return shlex.join([*program, "train", *run.train_args()])


def pending_runs(runs: Sequence[Run], project_root: str) -> list[Run]:
  """The runs that are not finished (their workdirs resolved against the project root)."""
  return [r for r in runs if run_status(_abs(r.workdir, project_root)) != "finished"]


def _abs(path: str, root: str) -> str:
  return path if os.path.isabs(path) else os.path.join(root, path)


@dataclasses.dataclass
class Outcome:
  """What happened to one run: ``skipped`` (finished before), ``ok`` or ``error``."""

  run: Run
  status: str
  returncode: int = 0
  seconds: float = 0.0


def parse_devices(text: str | None) -> list[str] | None:
  """Parses ``--devices 0,1,2`` (None or "" means: one run at a time, all devices).

  Raises:
    ConfigError: for an empty entry or a repeated device.
  """
  if not text:
    return None
  devices = [d.strip() for d in text.split(",")]
  if any(not d for d in devices) or len(set(devices)) != len(devices):
    raise ConfigError(f"--devices {text!r} must be distinct comma-separated device ids, "
                      "e.g. 0,1,2,3")
  return devices


def run_locally(runs: Sequence[Run], project_root: str, *,
                devices: Sequence[str] | None = None,
                program: Sequence[str] | None = None,
                env: dict[str, str] | None = None,
                out: TextIO | None = None,
                poll_seconds: float = 0.5) -> list[Outcome]:
  """Runs the unfinished runs, sequentially or one per device; returns every outcome.

  Args:
    runs: the runs, in order.
    project_root: str. Working directory of each train command.
    devices: device ids, or None to run one at a time with the inherited environment.
      (Default: None)
    program: the command prefix before ``train``. (Default: this Python,
      ``-m dksflax.cli``)
    env: environment for the runs. (Default: os.environ)
    out: where progress lines go. (Default: sys.stdout)
    poll_seconds: float. How often finished processes are looked for. (Default: 0.5)

  Returns:
    One Outcome per run, in the order of ``runs``.
  """
  out = sys.stdout if out is None else out
  program = list(program or (sys.executable, "-m", "dksflax.cli"))
  base_env = dict(os.environ if env is None else env)
  slots: list[str | None] = list(devices) if devices else [None]
  outcomes: dict[str, Outcome] = {}
  todo: list[Run] = []
  for run in runs:
    status = run_status(_abs(run.workdir, project_root))
    if status == "finished":
      outcomes[run.name] = Outcome(run, "skipped")
      _say(out, f"skip   {run.name}: finished ({RESULTS_FILE} present)")
    else:
      todo.append(run)
  total = len(todo)
  running: dict[str | None, tuple[Run, subprocess.Popen, float, Any]] = {}
  started = 0
  while todo or running:
    for slot in slots:
      if slot not in running and todo:
        run = todo.pop(0)
        started += 1
        resumed = run_status(_abs(run.workdir, project_root)) == "interrupted"
        running[slot] = _start(run, slot, project_root, program, base_env)
        where = "" if slot is None else f" on device {slot}"
        _say(out, f"[{started}/{total}] {'resume' if resumed else 'start '} {run.name}{where}")
    finished = [s for s, (_, proc, _, _) in running.items() if proc.poll() is not None]
    if not finished:
      time.sleep(poll_seconds)
      continue
    for slot in finished:
      run, proc, t0, log = running.pop(slot)
      log.close()
      seconds = time.time() - t0
      ok = proc.returncode == 0
      outcomes[run.name] = Outcome(run, "ok" if ok else "error", proc.returncode, seconds)
      summary = _summary(_abs(run.workdir, project_root))
      _say(out, f"{'done ' if ok else 'FAIL '}  {run.name} in {seconds:.1f} s"
           f"{': ' + summary if summary else ''}"
           + ("" if ok else f" (exit {proc.returncode}; log {_log_path(run, project_root)})"))
  return [outcomes[r.name] for r in runs]


def _log_path(run: Run, project_root: str) -> str:
  sweep_dir = os.path.dirname(_abs(run.workdir, project_root))
  return os.path.join(sweep_dir, "logs", run.name + ".log")


def _start(run: Run, slot: str | None, project_root: str, program: list[str],
           base_env: dict[str, str]) -> tuple[Run, subprocess.Popen, float, Any]:
  env = dict(base_env)
  if slot is not None:
    env["CUDA_VISIBLE_DEVICES"] = slot
  log_path = _log_path(run, project_root)
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  log = open(log_path, "a")  # pylint: disable=consider-using-with
  log.write(f"\n$ {shlex.join([*program, 'train', *run.train_args()])}\n")
  log.flush()
  proc = subprocess.Popen([*program, "train", *run.train_args()], cwd=project_root, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
  return run, proc, time.time(), log


def _summary(workdir: str) -> str:
  results = read_results(workdir)
  if results is None:
    return ""
  acc = (results.get("eval") or {}).get("accuracy")
  text = f"status {results.get('status')}"
  if results.get("status") == "failed":
    text += f" at step {results.get('failed_step')}"
  if acc is not None:
    text += f", eval accuracy {acc:.4f}"
  return text


def _say(out: TextIO, line: str) -> None:
  out.write(line + "\n")
  out.flush()


def write_manifest(path: str, runs: Sequence[Run], *,
                   command: Callable[[Run], str] = shell_command) -> None:
  """Writes ``sweep.json``: every run's name, labels, config, overrides and command."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  data = [dict(name=r.name, labels=dict(r.labels), search=dict(r.search), seed=r.seed,
               config=r.config, overrides=dict(r.overrides), workdir=r.workdir,
               command=command(r)) for r in runs]
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2, default=repr)
    f.write("\n")
  os.replace(tmp, path)
