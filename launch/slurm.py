"""Launch ``dksflax train`` as a SLURM job: one process per GPU or one per node.

  python -m launch.slurm --nodes 2 --gpus-per-node 8 [--per gpu|node] [--partition P] \\
      [--time 24:00:00] [--dry-run] -- \\
      --config configs/imagenet_resnet.py:vanilla,tat,kfac,50 --workdir /shared/runs/r50

Writes an sbatch script (``--script FILE``, default ``dksflax_<job>.sbatch``) and submits
it with ``sbatch``; ``--dry-run`` prints the script and the sbatch command instead. In
the job, ``srun`` starts ``--nodes x tasks`` copies of the same train command; each
exports ``DKSFLAX_COORDINATOR_ADDRESS`` (the job's first node, ``--port``),
``DKSFLAX_NUM_PROCESSES`` and ``DKSFLAX_PROCESS_ID`` (``$SLURM_PROCID``), so the trainer
calls ``jax.distributed.initialize`` and its mesh spans every GPU of the job.

Which GPUs a process drives is set with ``JAX_LOCAL_DEVICE_IDS``: ``--per gpu`` gives
task ``$SLURM_LOCALID`` its own GPU; ``--per node`` gives the single task of a node all
of them. (Left alone, JAX would pick GPU ``$SLURM_LOCALID`` only in both cases, because it
detects SLURM: one process per node would then use one GPU per node.)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence

from dksflax.errors import ConfigError
from launch.common import check_train_args, parse_env, train_line, workdir_of

DEFAULT_PORT = 12355
_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")


def sbatch_script(*, nodes: int, gpus_per_node: int, per: str, train_args: Sequence[str],
                  job_name: str = "dksflax", partition: str | None = None,
                  account: str | None = None, time: str | None = None,
                  cpus_per_task: int | None = None, repo_dir: str = ".",
                  python: str = "python", port: int = DEFAULT_PORT,
                  env: Sequence[tuple[str, str]] = (), log_dir: str = ".") -> str:
  """The sbatch script text (see the module docstring for what it does)."""
  tasks_per_node = gpus_per_node if per == "gpu" else 1
  lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --nodes={nodes}",
           f"#SBATCH --ntasks-per-node={tasks_per_node}",
           f"#SBATCH --gpus-per-node={gpus_per_node}"]
  if cpus_per_task:
    lines.append(f"#SBATCH --cpus-per-task={cpus_per_task}")
  if time:
    lines.append(f"#SBATCH --time={time}")
  if partition:
    lines.append(f"#SBATCH --partition={partition}")
  if account:
    lines.append(f"#SBATCH --account={account}")
  lines.append(f"#SBATCH --output={os.path.join(log_dir, job_name)}-%j.out")
  lines += [
      "set -euo pipefail",
      f"cd {shlex.quote(repo_dir)}",
      'export DKSFLAX_COORDINATOR_ADDRESS="$(scontrol show hostnames "$SLURM_JOB_NODELIST"'
      f' | head -n 1):{port}"',
      f"export DKSFLAX_NUM_PROCESSES={nodes * tasks_per_node}",
  ]
  lines += [f"export {k}={shlex.quote(v)}" for k, v in env]
  local_ids = ("$SLURM_LOCALID" if per == "gpu"
               else ",".join(str(i) for i in range(gpus_per_node)))
  task = (f"export DKSFLAX_PROCESS_ID=$SLURM_PROCID JAX_LOCAL_DEVICE_IDS={local_ids}; "
          f"exec {train_line(python, train_args)}")
  lines.append(f"srun --kill-on-bad-exit=1 bash -c {shlex.quote(task)}")
  return "\n".join(lines) + "\n"


def check(ns: argparse.Namespace) -> list[str]:
  """Checks the launcher options; returns the train arguments.

  Raises:
    ConfigError: for missing --nodes/--gpus-per-node, counts below 1, a malformed
      --time, or train arguments without --config/--workdir.
  """
  missing = [f"--{k.replace('_', '-')}" for k in ("nodes", "gpus_per_node")
             if getattr(ns, k) is None]
  if missing:
    raise ConfigError(f"the SLURM launch needs {', '.join(missing)} (how many nodes, and "
                      "GPUs on each)")
  for key in ("nodes", "gpus_per_node"):
    if getattr(ns, key) < 1:
      raise ConfigError(f"--{key.replace('_', '-')}={getattr(ns, key)} must be >= 1")
  if ns.time and not _TIME.match(ns.time):
    raise ConfigError(f"--time={ns.time!r} must be a SLURM time such as 24:00:00 or "
                      "2-00:00:00")
  args = check_train_args(ns.train_args)
  workdir_of(args)
  return args


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m launch.slurm",
      description="Run dksflax train as a multi-node SLURM job (jax.distributed).")
  parser.add_argument("--nodes", type=int, help="nodes (required)")
  parser.add_argument("--gpus-per-node", type=int, help="GPUs per node (required)")
  parser.add_argument("--per", choices=("gpu", "node"), default="gpu",
                      help="one process per GPU (default) or one per node")
  parser.add_argument("--job-name", default="dksflax")
  parser.add_argument("--partition", default=None)
  parser.add_argument("--account", default=None)
  parser.add_argument("--time", default=None, help="time limit, e.g. 24:00:00")
  parser.add_argument("--cpus-per-task", type=int, default=None)
  parser.add_argument("--repo-dir", default=os.getcwd(),
                      help="dksflax checkout on the nodes (default: this directory)")
  parser.add_argument("--python", default="python", help="Python on the nodes")
  parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                      help=f"coordinator port on the first node (default: {DEFAULT_PORT})")
  parser.add_argument("--env", action="append", metavar="KEY=VALUE",
                      help="extra environment for the train command (repeatable)")
  parser.add_argument("--log-dir", default=".", help="where SLURM writes the job's output")
  parser.add_argument("--script", default=None,
                      help="sbatch script to write (default: <job-name>.sbatch)")
  parser.add_argument("--dry-run", action="store_true",
                      help="print the script and the sbatch command; submit nothing")
  parser.add_argument("train_args", nargs=argparse.REMAINDER,
                      help="-- then the dksflax train arguments")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Writes and submits the sbatch script, or prints it (``--dry-run``)."""
  ns = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
  try:
    train_args = check(ns)
    script = sbatch_script(
        nodes=ns.nodes, gpus_per_node=ns.gpus_per_node, per=ns.per, train_args=train_args,
        job_name=ns.job_name, partition=ns.partition, account=ns.account, time=ns.time,
        cpus_per_task=ns.cpus_per_task, repo_dir=ns.repo_dir, python=ns.python,
        port=ns.port, env=parse_env(ns.env), log_dir=ns.log_dir)
  except ConfigError as e:
    print(f"launch.slurm: error: {e}", file=sys.stderr)
    return 2
  path = ns.script or f"{ns.job_name}.sbatch"
  if ns.dry_run:
    print(f"# {path}")
    print(script, end="")
    print(f"# then: sbatch {shlex.quote(path)}")
    return 0
  with open(path, "w") as f:
    f.write(script)
  print(f"wrote {path}")
  return subprocess.call(["sbatch", path])


if __name__ == "__main__":
  sys.exit(main())
