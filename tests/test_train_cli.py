"""`dksflax train` / `dksflax eval` command lines: flags, overrides and clear errors."""

from __future__ import annotations

import os

import pytest

from dksflax import cli
from dksflax.cli_train import EXIT_CONFIG_ERROR, parse_train_flags
from dksflax.configlib import default_config
from dksflax.errors import ConfigError
from dksflax.train import durations, mesh
from dksflax.train import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "configs", "digits_mlp.py")


def test_overrides_and_config_args_are_applied():
  config, workdir = parse_train_flags(
      ["--config", f"{DIGITS}:dks,sgd", "--workdir", "/tmp/x",
       "--config.train.steps=7", "--config.train.epochs=-1", "--config.model.width=16",
       "--config.optimizer.learning_rate=0.05"])
  assert workdir == "/tmp/x"
  assert (config.shaping.method, config.optimizer.name) == ("dks", "sgd")
  assert (config.train.steps, config.model.width, config.optimizer.learning_rate) == (
      7, 16, 0.05)
  with pytest.raises(AttributeError):   # locked: no new keys
    config.train.new_key = 1


@pytest.mark.parametrize("extra, message", [
    (["--config.train.stepz=5"], r"unknown config key.*stepz.*steps"),
    (["--config.train.steps=abc"], r"bad command line.*config.train.steps=abc"),
    (["--config.model.width=1.5"], r"bad command line.*config.model.width"),
    (["--bogus=1"], r"bad command line.*bogus"),
])
def test_bad_overrides_are_config_errors(extra, message):
  with pytest.raises(ConfigError, match=message):
    parse_train_flags(["--config", DIGITS, "--workdir", "/tmp/x", *extra])


def test_missing_flags_and_files_are_config_errors(tmp_path):
  with pytest.raises(ConfigError, match="--config is required"):
    parse_train_flags(["--workdir", str(tmp_path)])
  with pytest.raises(ConfigError, match="--workdir is required"):
    parse_train_flags(["--config", DIGITS])
  with pytest.raises(ConfigError, match="cannot load the --config file"):
    parse_train_flags(["--config", str(tmp_path / "nope.py"), "--workdir", str(tmp_path)])
  with pytest.raises(ConfigError, match="config arg optimizer='sgdd' is not accepted"):
    parse_train_flags(["--config", f"{DIGITS}:tat,sgdd", "--workdir", str(tmp_path)])


@pytest.mark.parametrize("extra, message", [
    (["--config.optimizer.name=sgdd"], "optimizer.name='sgdd' is not accepted"),
    (["--config.train.epochs=3"], "set exactly one of train.steps"),
    (["--config.train.batch_size=7"], r"train.batch_size=7 must be a positive multiple of "
                                      r"the number of devices \(2\)"),
    (["--config.train.metric_writer=csv"], "train.metric_writer='csv' is not accepted"),
])
def test_dksflax_train_reports_bad_values_before_compute(tmp_path, capsys, extra, message):
  workdir = tmp_path / "run"
  status = cli.main(["train", "--config", DIGITS, "--workdir", str(workdir),
                     "--config.train.steps=3", "--config.train.epochs=-1", *extra])
  err = capsys.readouterr().err
  assert status == EXIT_CONFIG_ERROR
  assert err.startswith("dksflax train: error: ") and "Traceback" not in err
  assert __import__("re").search(message, err), err
  assert not workdir.exists()


def test_dksflax_eval_on_a_non_run_directory_is_a_clear_error(tmp_path, capsys):
  assert cli.main(["eval", "--workdir", str(tmp_path)]) == EXIT_CONFIG_ERROR
  assert "holds no config.json" in capsys.readouterr().err


def test_epochs_become_steps_once():
  train = default_config().train
  train.steps, train.epochs, train.batch_size = -1, 3, 64
  assert durations.total_steps(train, 1437) == 3 * 22
  with pytest.raises(ConfigError, match="exceeds the 50 training examples"):
    durations.steps_per_epoch(50, 64)
  train.steps = 10
  with pytest.raises(ConfigError, match="exactly one"):
    durations.total_steps(train, 1437)


def test_config_json_round_trip_restores_tuples_and_values():
  config = default_config()
  config.train.steps = 17
  config.optimizer.step_boundaries = (0.25, 0.5)
  back = workdir_lib.config_from_dict(workdir_lib.config_to_dict(config))
  assert back.train.steps == 17 and back.optimizer.step_boundaries == (0.25, 0.5)
  assert workdir_lib.config_to_dict(back) == workdir_lib.config_to_dict(config)
  with pytest.raises(ConfigError, match="'train.nope' is unknown"):
    workdir_lib.config_from_dict({"train": {"nope": 1}})


def test_multi_process_start_is_read_from_the_environment():
  assert mesh.distributed_request({}) is None
  assert mesh.distributed_request({"SLURM_NTASKS": "1"}) is None
  assert mesh.distributed_request({"SLURM_NTASKS": "4"}) == {}
  assert mesh.distributed_request({
      "DKSFLAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "DKSFLAX_NUM_PROCESSES": "2",
      "DKSFLAX_PROCESS_ID": "1"}) == dict(coordinator_address="10.0.0.1:1234",
                                          num_processes=2, process_id=1)
  with pytest.raises(ConfigError, match="needs all of"):
    mesh.distributed_request({"DKSFLAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})
  with pytest.raises(ConfigError, match="must be integers"):
    mesh.distributed_request({"DKSFLAX_COORDINATOR_ADDRESS": "h:1",
                              "DKSFLAX_NUM_PROCESSES": "two", "DKSFLAX_PROCESS_ID": "0"})
