"""Running sweeps: skip finished runs, resume interrupted ones, one run per device, CLI."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from dksflax import cli
from dksflax.sweep import Sweep, expand, run_locally, run_status, values

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(REPO, "configs", "digits_mlp.py") + ":tat,sgd"

# A stand-in for `dksflax train`: records its arguments and device, then writes the
# records the trainer writes (config.json at the start, results.json at the end).
FAKE_TRAIN = textwrap.dedent("""
    import json, os, sys, time
    args = sys.argv[1:]
    assert args[0] == "train", args
    workdir = args[args.index("--workdir") + 1]
    overrides = dict(a[len("--config."):].split("=", 1) for a in args
                     if a.startswith("--config."))
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(os.path.dirname(workdir), "trace.jsonl"), "a") as f:
      f.write(json.dumps(dict(name=os.path.basename(workdir), args=args,
                              device=os.environ.get("CUDA_VISIBLE_DEVICES"),
                              start=time.time(),
                              resumed=os.path.exists(os.path.join(workdir, "config.json"))))
              + "\\n")
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(overrides, f)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if os.environ.get("FAKE_FAIL") and overrides.get("shaping.eta") == "0.9":
      sys.exit(3)
    acc = float(overrides.get("shaping.eta", "0.5")) / 2
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(dict(status="completed", step=3, eval=dict(accuracy=acc),
                     train=dict(accuracy=acc)), f)
    with open(os.path.join(os.path.dirname(workdir), "trace.jsonl"), "a") as f:
      f.write(json.dumps(dict(name=os.path.basename(workdir), end=time.time())) + "\\n")
""")


@pytest.fixture
def fake_program(tmp_path):
  path = tmp_path / "fake_train.py"
  path.write_text(FAKE_TRAIN)
  return [sys.executable, str(path)]


def _trace(sweep_dir):
  path = os.path.join(sweep_dir, "trace.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def _sweep():
  return Sweep(name="eta", title="eta sweep", config=DIGITS,
               cells=values("shaping.eta", [0.5, 0.9, 0.95], label="eta"),
               plot_key="shaping.eta")


def test_skips_finished_and_resumes_interrupted(tmp_path, fake_program):
  root = str(tmp_path / "runs")
  runs = expand(_sweep(), root=root)
  finished, interrupted, new = runs
  os.makedirs(finished.workdir)
  sentinel = dict(status="completed", eval=dict(accuracy=0.123), note="keep me")
  with open(os.path.join(finished.workdir, "results.json"), "w") as f:
    json.dump(sentinel, f)
  os.makedirs(interrupted.workdir)
  with open(os.path.join(interrupted.workdir, "config.json"), "w") as f:
    f.write("{}")
  assert [run_status(r.workdir) for r in runs] == ["finished", "interrupted", "new"]

  log = tmp_path / "progress.txt"
  with open(log, "w") as out:
    outcomes = run_locally(runs, str(tmp_path), program=fake_program, out=out,
                           poll_seconds=0.05)
  assert [o.status for o in outcomes] == ["skipped", "ok", "ok"]
  with open(os.path.join(finished.workdir, "results.json")) as f:
    assert json.load(f) == sentinel            # never overwritten
  starts = [t for t in _trace(os.path.join(root, "eta")) if "start" in t]
  assert [t["name"] for t in starts] == [interrupted.name, new.name]
  assert starts[0]["resumed"] and not starts[1]["resumed"]
  # The resumed run got exactly its own train command (same workdir, same overrides).
  assert starts[0]["args"] == ["train", *interrupted.train_args()]
  text = log.read_text()
  assert f"skip   {finished.name}" in text and f"resume {interrupted.name}" in text
  assert os.path.exists(os.path.join(root, "eta", "logs", f"{new.name}.log"))

  # A second pass has nothing left to do.
  with open(log, "w") as out:
    again = run_locally(runs, str(tmp_path), program=fake_program, out=out)
  assert [o.status for o in again] == ["skipped"] * 3


def test_one_run_per_device(tmp_path, fake_program):
  root = str(tmp_path / "runs")
  sweep = Sweep(name="dev", title="", config=DIGITS,
                cells=values("shaping.eta", [0.5, 0.6, 0.7, 0.8], label="eta"))
  runs = expand(sweep, root=root)
  env = dict(os.environ, FAKE_SLEEP="1.0")
  with open(os.devnull, "w") as out:
    outcomes = run_locally(runs, str(tmp_path), devices=["0", "1"], program=fake_program,
                           env=env, out=out, poll_seconds=0.05)
  assert all(o.status == "ok" for o in outcomes)
  trace = _trace(os.path.join(root, "dev"))
  starts = {t["name"]: t for t in trace if "start" in t}
  ends = {t["name"]: t["end"] for t in trace if "end" in t}
  assert {t["device"] for t in starts.values()} == {"0", "1"}
  # Never more than two at once, and the first two overlapped (one per device).
  events = sorted([(t["start"], 1) for t in starts.values()] + [(e, -1) for e in ends.values()])
  level, peak = 0, 0
  for _, delta in events:
    level += delta
    peak = max(peak, level)
  assert peak == 2
  first, second = runs[0].name, runs[1].name
  assert starts[second]["start"] < ends[first]
  assert starts[first]["device"] != starts[second]["device"]


def test_failed_run_is_reported_and_the_rest_go_on(tmp_path, fake_program):
  runs = expand(_sweep(), root=str(tmp_path / "runs"))
  env = dict(os.environ, FAKE_FAIL="1")
  with open(os.devnull, "w") as out:
    outcomes = run_locally(runs, str(tmp_path), program=fake_program, env=env, out=out)
  assert [o.status for o in outcomes] == ["ok", "error", "ok"]
  assert outcomes[1].returncode == 3
  assert run_status(runs[1].workdir) == "interrupted"     # rerun resumes it


def _experiment(tmp_path, body: str) -> str:
  path = tmp_path / "exp.py"
  path.write_text(textwrap.dedent(f"""
      from dksflax.sweep import Sweep, values
      SWEEP = Sweep(name="eta", title="eta sweep", config={DIGITS!r},
                    cells={body}, plot_key="shaping.eta",
                    paper={{("0.9",): 42.0}})
  """))
  return str(path)


def test_cli_print_and_write_commands(tmp_path, capsys):
  exp = _experiment(tmp_path, 'values("shaping.eta", [0.5, 0.9], label="eta")')
  root = str(tmp_path / "runs")
  done = expand(_sweep(), root=root)[0]
  os.makedirs(done.workdir)
  with open(os.path.join(done.workdir, "results.json"), "w") as f:
    json.dump(dict(status="completed", eval=dict(accuracy=0.5)), f)
  assert cli.main(["sweep", exp, "--root", root, "--print"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].startswith("# eta: 1 of 2 runs to do (1 finished")
  assert lines[1:] == [
      f"dksflax train --config {DIGITS} --workdir {root}/eta/eta-0.9__seed-0 "
      "--config.shaping.eta=0.9 --config.seed=0"]
  cmds = tmp_path / "cmds.txt"
  assert cli.main(["sweep", exp, "--root", root, "--write-commands", str(cmds)]) == 0
  assert cmds.read_text().splitlines() == lines[1:]
  assert not os.path.exists(os.path.join(root, "eta", "sweep.json"))  # printing runs nothing


def test_cli_rejects_bad_sweeps_before_starting(tmp_path, capsys):
  root = tmp_path / "runs"
  exp = _experiment(tmp_path, 'values("shaping.no_such_key", [0.5], label="eta")')
  assert cli.main(["sweep", exp, "--root", str(root)]) == 2
  err = capsys.readouterr().err
  assert "'shaping.no_such_key' does not exist" in err
  assert "keys under shaping: " in err and " eta," in err
  assert not root.exists()
  exp = _experiment(tmp_path, 'values("shaping.eta", [], label="eta")')
  assert cli.main(["sweep", exp, "--root", str(root)]) == 2
  assert "empty" in capsys.readouterr().err
  assert cli.main(["sweep", str(tmp_path / "missing.py")]) == 2
  assert "does not exist" in capsys.readouterr().err
  exp = _experiment(tmp_path, 'values("shaping.eta", [0.5], label="eta")')
  assert cli.main(["sweep", exp, "--root", str(root), "--devices", "0,,1"]) == 2
  assert "--devices" in capsys.readouterr().err
  assert not root.exists()


def test_dksflax_cli_dispatches_sweep_and_report(tmp_path, capsys):
  from dksflax import cli
  exp = _experiment(tmp_path, 'values("shaping.eta", [0.5], label="eta")')
  root = str(tmp_path / "runs")
  assert cli.main(["sweep", exp, "--root", root, "--print", "--skip-shaping-check"]) == 0
  assert "--config.shaping.eta=0.5 --config.seed=0" in capsys.readouterr().out
  assert cli.main(["report", exp, "--root", root]) == 0
  out = capsys.readouterr().out
  assert "| 0.5 | — | — | 0/1 | not run yet |" in out
  assert "| 0.9 | 42 | — | 0/0 | no cell of this sweep runs it |" in out


def test_cli_search_leaves_out_unreachable_points(tmp_path, capsys):
  path = tmp_path / "search.py"
  path.write_text(textwrap.dedent(f"""
      from dksflax.sweep import Sweep, values
      SWEEP = Sweep(name="s", title="", config={DIGITS!r},
                    cells=values("model.depth", [4], label="depth"),
                    search=values("shaping.eta", [0.5, 0.99], label=""))
  """))
  assert cli.main(["sweep", str(path), "--search", "--print"]) == 0
  captured = capsys.readouterr()
  assert captured.out.count("dksflax train") == 1 and "shaping.eta=0.5" in captured.out
  assert "run 'depth-4__shaping.eta-0.99__seed-0'" in captured.err
  assert "left out 1 search runs" in captured.err
