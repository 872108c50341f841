"""SLURM launcher: the sbatch script for a 2-node job, per GPU and per node, executed."""

from __future__ import annotations

import os
import subprocess

import pytest

from launch import slurm

TRAIN = ["--", "--config", "configs/imagenet_resnet.py:vanilla,tat,kfac,50",
         "--workdir", "/shared/runs/r50"]


def _script(capsys, *extra):
  argv = ["--nodes", "2", "--gpus-per-node", "4", "--repo-dir", "/repo", "--dry-run",
          *extra, *TRAIN]
  assert slurm.main(argv) == 0
  out = capsys.readouterr().out
  lines = out.splitlines()
  assert lines[0] == "# dksflax.sbatch" and lines[-1] == "# then: sbatch dksflax.sbatch"
  return "\n".join(lines[1:-1]) + "\n"


def test_dry_run_per_gpu_for_two_nodes(capsys):
  script = _script(capsys, "--partition", "gpu", "--time", "24:00:00", "--account", "acc")
  lines = script.splitlines()
  assert lines[:5] == ["#!/bin/bash", "#SBATCH --job-name=dksflax", "#SBATCH --nodes=2",
                       "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4"]
  for directive in ("#SBATCH --time=24:00:00", "#SBATCH --partition=gpu",
                    "#SBATCH --account=acc"):
    assert directive in lines
  assert "export DKSFLAX_NUM_PROCESSES=8" in lines
  assert "JAX_LOCAL_DEVICE_IDS=$SLURM_LOCALID" in lines[-1]
  assert lines[-1].startswith("srun --kill-on-bad-exit=1 bash -c ")
  assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def _execute(tmp_path, script: str, ntasks: int) -> list[str]:
  """Runs the script with stub scontrol/srun/python: srun starts ``ntasks`` tasks."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  (bin_dir / "scontrol").write_text("#!/bin/sh\nprintf 'node-a\\nnode-b\\n'\n")
  (bin_dir / "srun").write_text(
      "#!/bin/bash\nshift\n"   # drop --kill-on-bad-exit=1
      f"for i in $(seq 0 {ntasks - 1}); do\n"
      f"  SLURM_PROCID=$i SLURM_LOCALID=$((i % {max(ntasks // 2, 1)})) \"$@\"\ndone\n")
  (bin_dir / "python").write_text(
      "#!/bin/sh\necho P=$DKSFLAX_PROCESS_ID N=$DKSFLAX_NUM_PROCESSES "
      "C=$DKSFLAX_COORDINATOR_ADDRESS L=$JAX_LOCAL_DEVICE_IDS ARGS=\"$*\"\n")
  for name in ("scontrol", "srun", "python"):
    (bin_dir / name).chmod(0o755)
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_NODELIST="x")
  script = script.replace("cd /repo", f"cd {tmp_path}")
  out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                       check=True).stdout
  return out.strip().splitlines()


def test_per_gpu_tasks_get_ids_and_one_gpu_each(tmp_path, capsys):
  lines = _execute(tmp_path, _script(capsys), ntasks=8)
  assert len(lines) == 8
  assert lines[5].startswith("P=5 N=8 C=node-a:12355 L=1 ARGS=-m dksflax.cli train "
                             "--config configs/imagenet_resnet.py:vanilla,tat,kfac,50")
  assert {line.split()[3] for line in lines} == {"L=0", "L=1", "L=2", "L=3"}


def test_per_node_task_drives_every_gpu_of_its_node(tmp_path, capsys):
  script = _script(capsys, "--per", "node", "--port", "5000")
  assert "#SBATCH --ntasks-per-node=1" in script
  assert "export DKSFLAX_NUM_PROCESSES=2" in script
  lines = _execute(tmp_path, script, ntasks=2)
  assert [line.split()[:4] for line in lines] == [
      ["P=0", "N=2", "C=node-a:5000", "L=0,1,2,3"], ["P=1", "N=2", "C=node-a:5000", "L=0,1,2,3"]]


@pytest.mark.parametrize("argv, message", [
    (["--gpus-per-node", "4", *TRAIN], "--nodes"),
    (["--nodes", "2", *TRAIN], "--gpus-per-node"),
    (["--nodes", "0", "--gpus-per-node", "4", *TRAIN], "--nodes=0 must be >= 1"),
    (["--nodes", "2", "--gpus-per-node", "4", "--time", "tomorrow", *TRAIN], "--time"),
    (["--nodes", "2", "--gpus-per-node", "4", "--", "--config", "c.py"], "--workdir"),
])
def test_missing_cluster_settings_fail_clearly(argv, message, capsys, tmp_path):
  cut = argv.index("--")
  assert slurm.main(argv[:cut] + ["--dry-run"] + argv[cut:]) == 2
  captured = capsys.readouterr()
  assert message in captured.err and captured.out == ""


def test_without_dry_run_the_script_is_written_and_submitted(tmp_path, monkeypatch, capsys):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "sbatch").write_text("#!/bin/sh\necho \"Submitted $1\"\n")
  (bin_dir / "sbatch").chmod(0o755)
  monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
  path = tmp_path / "job.sbatch"
  argv = ["--nodes", "2", "--gpus-per-node", "4", "--script", str(path), *TRAIN]
  assert slurm.main(argv) == 0
  assert path.read_text().startswith("#!/bin/bash\n#SBATCH --job-name=dksflax")
  assert f"wrote {path}" in capsys.readouterr().out
