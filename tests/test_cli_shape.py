"""`dksflax shape` / `dksflax demo`: JSON results against independent computations, errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dksflax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(capsys, *argv: str) -> dict:
  rc = cli.main(list(argv))
  captured = capsys.readouterr()
  assert rc == 0, captured.err
  return json.loads(captured.out)


def _lrelu_c_map(c, slope):
  """TAT Eq. (20), written independently of dksflax.shaping.tat."""
  c = np.clip(c, -1.0, 1.0)
  return c + (1 - slope)**2 / (np.pi * (1 + slope**2)) * (np.sqrt(1 - c * c) - c * np.arccos(c))


def test_dks_mlp_reaches_zeta(capsys):
  report = _run(capsys, "shape", "--arch", "mlp", "--depth", "20", "--method", "dks",
                "--activation", "softplus", "--zeta", "1.5")
  ach = report["achieved"]
  # mu(psi) = psi^20 for a 20-layer vanilla MLP, so psi = 1.5^(1/20) (DKS §23.5).
  assert ach["psi"] == pytest.approx(1.5**(1 / 20), rel=1e-9)
  assert ach["max_slope_mu_psi"]["value"] == pytest.approx(1.5, rel=1e-9)
  assert ach["local_c_slope"] == pytest.approx(1.5**(1 / 20), rel=1e-7)
  assert abs(ach["local_c0"]) < 1e-9 and abs(ach["network_c0"]) < 1e-9
  assert ach["local_q1"] == pytest.approx(1.0, rel=1e-9)
  assert report["network"]["nonlinear_layers_on_longest_path"] == 20


def test_dks_rescaled_resnet_uses_eq20(capsys):
  report = _run(capsys, "shape", "--arch", "resnet101", "--variant", "rescaled",
                "--shortcut-weight", "0.8", "--method", "dks", "--activation", "tanh")
  psi = report["achieved"]["psi"]
  w2 = 1 - 0.8**2  # DKS's residual weight squared
  eq20 = (w2 * psi**3 + 1 - w2)**((101 - 14) / 3) * (w2 * psi**2 + 1 - w2)**4 * psi**5
  assert eq20 == pytest.approx(1.5, rel=1e-8)
  assert report["achieved"]["max_slope_mu_psi"]["attained_by"] == "network"


def test_tat_leaky_relu_resnet50_vanilla_matches_bisection(capsys):
  report = _run(capsys, "shape", "--arch", "resnet50", "--variant", "vanilla", "--method",
                "tat", "--activation", "leaky_relu", "--eta", "0.9")
  slope = report["params"]["negative_slope"]
  # Independent: 49 nonlinear layers in a chain, C_f(0) = C^49(0) = eta; bisect on slope.

  def c0(s):
    c = 0.0
    for _ in range(49):
      c = _lrelu_c_map(c, s)
    return c

  lo, hi = 0.0, 1.0
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if c0(mid) > 0.9 else (lo, mid)
  assert slope == pytest.approx(0.5 * (lo + hi), abs=1e-7)
  assert report["achieved"]["max_c0"]["value"] == pytest.approx(0.9, abs=1e-9)
  assert report["params"]["output_scale"] == pytest.approx(math.sqrt(2 / (1 + slope**2)))


def test_tat_smooth_curvature(capsys):
  report = _run(capsys, "shape", "--arch", "mlp", "--depth", "10", "--method", "tat",
                "--activation", "softplus", "--tau", "0.3")
  ach = report["achieved"]
  assert ach["kappa"] == pytest.approx(0.03, rel=1e-9)  # L kappa = tau, TAT §4.2
  assert ach["local_c_curvature"] == pytest.approx(0.03, rel=1e-6)
  assert ach["local_c_slope"] == pytest.approx(1.0, rel=1e-6)
  assert ach["max_curvature"]["value"] == pytest.approx(0.3, rel=1e-9)


def test_eoc_tanh_mlp(capsys):
  report = _run(capsys, "shape", "--arch", "mlp", "--depth", "30", "--method", "eoc",
                "--activation", "tanh")
  params = report["params"]
  assert params["chi1"] == pytest.approx(1.0, abs=1e-8)
  # Unshaped deep nets degenerate: C_f(0) of a 30-layer EOC tanh net is close to 1 (but
  # the same net after DKS has C_f(0) = 0).
  assert 0.8 < report["achieved"]["network_c0"] < 1.0


def test_config_file_and_flag_override(capsys, tmp_path):
  cfg = tmp_path / "cfg.py"
  cfg.write_text(textwrap.dedent("""
      from dksflax.configlib import default_config

      def get_config(arg=None):
        c = default_config()
        c.model.name, c.model.depth, c.model.activation = "mlp", int(arg or 12), "tanh"
        c.shaping.method, c.shaping.zeta = "dks", 1.2
        return c
  """))
  report = _run(capsys, "shape", "--config", f"{cfg}:15")
  assert report["achieved"]["psi"] == pytest.approx(1.2**(1 / 15), rel=1e-9)
  report = _run(capsys, "shape", "--config", str(cfg), "--zeta", "1.5")
  assert report["achieved"]["psi"] == pytest.approx(1.5**(1 / 12), rel=1e-9)


def test_plot_writes_png(capsys, tmp_path):
  out = tmp_path / "maps.png"
  report = _run(capsys, "shape", "--arch", "mlp", "--depth", "8", "--method", "tat",
                "--activation", "leaky_relu", "--eta", "0.5", "--plot", str(out))
  assert report["plot"] == str(out)
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize("argv, needle", [
    (["--arch", "resnet50", "--variant", "standard"], "batch_norm"),
    (["--arch", "resnet50", "--variant", "standard", "--normalization", "none"], "rescaled"),
    (["--arch", "mlp", "--zeta", "0.5"], "zeta"),
    (["--arch", "mlp", "--method", "tat", "--activation", "relu"], "leaky_relu"),
    (["--arch", "mlp", "--activation", "nosuch"], "known activations"),
    (["--arch", "wrn", "--depth", "27"], "6n+4"),
    (["--arch", "resnet50", "--depth", "101"], "contradicts"),
    (["--arch", "mlp", "--depth", "3", "--method", "tat", "--activation", "leaky_relu",
      "--eta", "0.99"], "eta"),
])
def test_errors_exit_cleanly(capsys, argv, needle):
  assert cli.main(["shape", *argv]) == 2
  err = capsys.readouterr().err
  assert err.startswith("dksflax shape: error:") and needle in err
  assert "Traceback" not in err


def test_usage_error_exits_2(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["shape", "--method", "magic"])
  assert e.value.code == 2
  assert "invalid choice" in capsys.readouterr().err


def test_subprocess_shape_imports_no_jax_or_tensorflow():
  code = textwrap.dedent("""
      import json, sys
      from dksflax import cli
      rc = cli.main(["shape", "--arch", "wrn", "--depth", "16", "--variant", "rescaled",
                     "--method", "dks", "--activation", "tanh"])
      print(json.dumps({"rc": rc, "jax": "jax" in sys.modules,
                        "tf": "tensorflow" in sys.modules}))
  """)
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert json.loads(lines[-1]) == {"rc": 0, "jax": False, "tf": False}
  report = json.loads("\n".join(lines[:-1]))
  assert report["achieved"]["max_slope_mu_psi"]["value"] == pytest.approx(1.5, rel=1e-9)
  # python -m dksflax.cli reports errors with status 2 and no traceback.
  proc = subprocess.run([sys.executable, "-m", "dksflax.cli", "shape", "--arch", "mlp",
                         "--zeta", "1.0"], cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 2 and "zeta" in proc.stderr and "Traceback" not in proc.stderr
