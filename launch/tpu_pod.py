"""Launch ``dksflax train`` on every worker of a Cloud TPU VM pod slice.

  python -m launch.tpu_pod --tpu my-v4-32 --zone us-central2-b --num-workers 4 \\
      [--project P] [--repo-dir dksflax] [--dry-run] -- \\
      --config configs/imagenet_resnet.py:vanilla,tat,kfac,50 --workdir gs://BUCKET/r50

Runs one command, ``gcloud compute tpus tpu-vm ssh NAME --zone Z --worker=all --command
CMD``: every worker executes the same CMD, which reads its worker number and worker 0's
address from the TPU VM metadata server, exports them as the ``DKSFLAX_*`` variables
(coordinator ``worker0:PORT``, ``--num-workers`` processes, this worker's id) and runs
the train command, so ``jax.distributed.initialize`` connects the hosts and the trainer's
mesh spans every chip of the slice. The workdir must be storage every worker sees (a
``gs://`` bucket, or a shared file system: pass ``--shared-workdir``), because
checkpoints are written collectively. ``--dry-run`` prints the command and exits.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence

from dksflax.errors import ConfigError
from launch.common import check_train_args, parse_env, train_line, workdir_of

METADATA = ("http://metadata.google.internal/computeMetadata/v1/instance/attributes/")
DEFAULT_PORT = 8476


def remote_command(*, num_workers: int, train_args: Sequence[str], repo_dir: str,
                   python: str, port: int, env: Sequence[tuple[str, str]] = ()) -> str:
  """The shell command every worker runs (see the module docstring)."""
  curl = "curl -sf -H Metadata-Flavor:Google " + METADATA
  parts = [
      "set -e",
      f"cd {shlex.quote(repo_dir)}",
      f"export DKSFLAX_PROCESS_ID=$({curl}agent-worker-number)",
      # worker-network-endpoints: "name:id:ip,..." (old) or "host,..." (new): first entry,
      # last colon-separated field.
      f"export DKSFLAX_COORDINATOR_ADDRESS=$({curl}worker-network-endpoints"
      f" | cut -d, -f1 | awk -F: '{{print $NF}}'):{port}",
      f"export DKSFLAX_NUM_PROCESSES={num_workers}",
  ]
  parts += [f"export {k}={shlex.quote(v)}" for k, v in env]
  parts.append(train_line(python, train_args))
  return "; ".join(parts)


def build_command(ns: argparse.Namespace) -> list[str]:
  """The gcloud command (a list of arguments) for parsed launcher options.

  Raises:
    ConfigError: for missing cluster settings (--tpu, --zone, --num-workers), a worker
      count below 1, train arguments without --config/--workdir, or a local workdir
      without --shared-workdir.
  """
  missing = [f"--{k.replace('_', '-')}" for k in ("tpu", "zone", "num_workers")
             if getattr(ns, k) in (None, "")]
  if missing:
    raise ConfigError(f"the TPU pod launch needs {', '.join(missing)} (the TPU VM name, "
                      "its zone and its number of worker hosts)")
  if ns.num_workers < 1:
    raise ConfigError(f"--num-workers={ns.num_workers} must be >= 1 (hosts in the slice)")
  train_args = check_train_args(ns.train_args)
  workdir = workdir_of(train_args)
  if not workdir.startswith("gs://") and not ns.shared_workdir:
    raise ConfigError(
        f"--workdir {workdir} is not a gs:// path: every worker must see the same workdir "
        "(checkpoints are written by all hosts together); use gs://BUCKET/..., or pass "
        "--shared-workdir if it is on a file system all workers mount")
  command = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", ns.tpu, "--zone", ns.zone]
  if ns.project:
    command += ["--project", ns.project]
  command += ["--worker=all", "--command",
              remote_command(num_workers=ns.num_workers, train_args=train_args,
                             repo_dir=ns.repo_dir, python=ns.python, port=ns.port,
                             env=parse_env(ns.env))]
  return command


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m launch.tpu_pod",
      description="Run dksflax train on every worker of a Cloud TPU VM pod slice.")
  parser.add_argument("--tpu", help="TPU VM name (required)")
  parser.add_argument("--zone", help="its zone (required)")
  parser.add_argument("--num-workers", type=int, help="worker hosts in the slice (required)")
  parser.add_argument("--project", default=None, help="GCP project (default: gcloud's)")
  parser.add_argument("--repo-dir", default="dksflax",
                      help="dksflax checkout on each worker (default: ~/dksflax)")
  parser.add_argument("--python", default="python3", help="Python on the workers")
  parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                      help=f"coordinator port on worker 0 (default: {DEFAULT_PORT})")
  parser.add_argument("--env", action="append", metavar="KEY=VALUE",
                      help="extra environment for the train command (repeatable)")
  parser.add_argument("--shared-workdir", action="store_true",
                      help="the --workdir is on a file system every worker mounts")
  parser.add_argument("--dry-run", action="store_true", help="print the command; run nothing")
  parser.add_argument("train_args", nargs=argparse.REMAINDER,
                      help="-- then the dksflax train arguments")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Parses the options, then prints (``--dry-run``) or runs the gcloud command."""
  ns = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
  try:
    command = build_command(ns)
  except ConfigError as e:
    print(f"launch.tpu_pod: error: {e}", file=sys.stderr)
    return 2
  print(shlex.join(command))
  if ns.dry_run:
    return 0
  return subprocess.call(command)


if __name__ == "__main__":
  sys.exit(main())
