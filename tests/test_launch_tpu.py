"""TPU VM pod launcher: the dry-run command for a 4-host pod, and what each worker runs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from launch import tpu_pod

TRAIN = ["--", "--config", "configs/imagenet_resnet.py:vanilla,tat,kfac,50",
         "--workdir", "gs://bucket/runs/r50", "--config.train.steps=100"]


def _argv(*extra):
  return ["--tpu", "my-v4-32", "--zone", "us-central2-b", "--num-workers", "4",
          "--dry-run", *extra, *TRAIN]


def test_dry_run_prints_the_gcloud_command_for_a_4_host_pod(capsys):
  assert tpu_pod.main(_argv("--project", "proj")) == 0
  (line,) = capsys.readouterr().out.strip().splitlines()
  argv = shlex.split(line)
  assert argv[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-v4-32", "--zone",
                      "us-central2-b"]
  assert argv[8:12] == ["--project", "proj", "--worker=all", "--command"]
  remote = argv[12]
  assert len(argv) == 13
  assert "export DKSFLAX_NUM_PROCESSES=4" in remote
  assert remote.endswith(
      "python3 -m dksflax.cli train --config configs/imagenet_resnet.py:vanilla,tat,kfac,50"
      " --workdir gs://bucket/runs/r50 --config.train.steps=100")


def test_each_worker_gets_its_id_and_worker0_as_coordinator(tmp_path):
  """Runs the remote command with stub curl/python: worker 2 of 4, coordinator worker 0."""
  ns = tpu_pod.build_parser().parse_args(_argv("--repo-dir", str(tmp_path),
                                               "--python", str(tmp_path / "py"),
                                               "--env", "XLA_FLAGS=--x=1"))
  remote = tpu_pod.build_command(ns)[-1]
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "curl").write_text(
      "#!/bin/sh\ncase \"$*\" in\n"
      "  *agent-worker-number*) echo 2;;\n"
      "  *worker-network-endpoints*) echo 'w0:id0:10.0.0.7,w1:id1:10.0.0.8,"
      "w2:id2:10.0.0.9,w3:id3:10.0.0.10';;\nesac\n")
  (tmp_path / "py").write_text(
      "#!/bin/sh\necho ID=$DKSFLAX_PROCESS_ID N=$DKSFLAX_NUM_PROCESSES "
      "C=$DKSFLAX_COORDINATOR_ADDRESS X=$XLA_FLAGS PWD=$(pwd) ARGS=\"$*\"\n")
  for f in (bin_dir / "curl", tmp_path / "py"):
    f.chmod(0o755)
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
  out = subprocess.run(["bash", "-c", remote], env=env, capture_output=True, text=True,
                       check=True).stdout.strip()
  assert out.startswith(f"ID=2 N=4 C=10.0.0.7:8476 X=--x=1 PWD={tmp_path} ARGS=-m "
                        "dksflax.cli train --config")
  assert out.endswith("--workdir gs://bucket/runs/r50 --config.train.steps=100")


@pytest.mark.parametrize("argv, message", [
    (["--zone", "z", "--num-workers", "4", *TRAIN], "--tpu"),
    (["--tpu", "t", "--num-workers", "4", *TRAIN], "--zone"),
    (["--tpu", "t", "--zone", "z", *TRAIN], "--num-workers"),
    (["--tpu", "t", "--zone", "z", "--num-workers", "0", *TRAIN], ">= 1"),
    (["--tpu", "t", "--zone", "z", "--num-workers", "4", "--", "--workdir", "gs://b/r"],
     "--config"),
    (["--tpu", "t", "--zone", "z", "--num-workers", "4", "--", "--config", "c.py",
      "--workdir", "/local/run"], "gs://"),
    (["--tpu", "t", "--zone", "z", "--num-workers", "4", "--env", "1X=2", *TRAIN], "--env"),
])
def test_missing_cluster_settings_fail_clearly(argv, message, capsys):
  assert tpu_pod.main([*argv, "--dry-run"] if "--" not in argv else
                      argv[:argv.index("--")] + ["--dry-run"] + argv[argv.index("--"):]) == 2
  captured = capsys.readouterr()
  assert message in captured.err and captured.out == ""


def test_shared_workdir_flag_accepts_a_mounted_path(capsys):
  argv = ["--tpu", "t", "--zone", "z", "--num-workers", "2", "--shared-workdir", "--dry-run",
          "--", "--config", "c.py", "--workdir", "/nfs/run"]
  assert tpu_pod.main(argv) == 0
  assert "--workdir /nfs/run" in capsys.readouterr().out


def test_module_runs_as_a_script():
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, "-m", "launch.tpu_pod", *_argv()], cwd=repo,
                       capture_output=True, text=True, check=True).stdout
  assert out.startswith("gcloud compute tpus tpu-vm ssh my-v4-32")
