"""Which model ``make sim`` runs: WEIGHTS=, the network name, the committed QAT defaults."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.tb.netsim import MODELS, choose_model, net_name, qat_models

REPO = Path(__file__).resolve().parent.parent


def test_committed_qat_models_are_found() -> None:
    assert qat_models("mlp256") == {"int4": MODELS / "mlp256_qat_int4.npz",
                                    "int2": MODELS / "mlp256_qat_w2a2.npz"}
    assert qat_models("l10") == {}


@pytest.mark.parametrize(("bits", "expected"), [
    ("w2a2", "mlp256_qat_w2a2.npz"), ("int2", "mlp256_qat_w2a2.npz"),
    ("int4", "mlp256_qat_int4.npz"), ("int8", "mlp256.npz"), ("int4-pn", "mlp256.npz")])
def test_prefer_qat_picks_the_formats_qat_model(bits: str, expected: str) -> None:
    path, note = choose_model("mlp256", bits, None, prefer_qat=True)
    assert path == MODELS / expected
    assert note.startswith(f"model: models/{expected}") and "WEIGHTS=" in note
    assert "\n" not in note
    if "qat" in expected:
        assert "the QAT model for" in note and "WEIGHTS=models/mlp256.npz" in note
    else:
        assert "QAT models exist for BITS=int4, w2a2" in note


def test_explicit_weights_and_no_preference_win() -> None:
    assert choose_model("mlp256", "w2a2", None, prefer_qat=False)[0] == MODELS / "mlp256.npz"
    mine = Path("build/mine.npz")
    path, note = choose_model("mine", "w2a2", mine, prefer_qat=True)
    assert path == mine and "as network mine (int2)" in note


def test_net_name_from_weights_stem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NET", raising=False)
    assert net_name(None, Path("build/models/mlp64x32.npz")) == "mlp64x32"
    assert net_name("other", Path("build/models/mlp64x32.npz")) == "other"
    assert net_name(None, None) == "mlp256"
    with pytest.raises(UserError, match=r"'my-net' \(the file name of .*\).*NET=<name>"):
        net_name(None, Path("my-net.npz"))


def _make_n(*args: str) -> str:
    drop = ("NET", "BITS", "WEIGHTS", "LAYERS", "IMAGE", "IMAGES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(["make", "-n", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, check=True).stdout


def test_make_passes_weights_layers_and_qat_preference() -> None:
    sim = _make_n("sim", "WEIGHTS=build/x/mlp64x32.npz")
    assert "--weights 'build/x/mlp64x32.npz'" in sim and "--net" not in sim
    assert "--net 'foo'" in _make_n("sim", "WEIGHTS=a.npz", "NET=foo")
    assert "--prefer-qat" in _make_n("sim", "BITS=w2a2")
    image = _make_n("sim", "IMAGE=my digit.png", "IMAGES=5")  # the image, not the sample's
    assert "--image 'my digit.png'" in image and "--images" not in image
    assert "--images '20'" in _make_n("sim")
    assert "--net 'm' --layers '784,64,32,10' --epochs '2'" in _make_n(
        "train", "NET=m", "LAYERS=784,64,32,10", "EPOCHS=2")
    assert "--net all" in _make_n("train")
    qat = _make_n("qat", "NET=m", "LAYERS=784,64,10", "BITS=int4")
    assert "--format 'int4'" in qat and "--out 'models/m_qat_int4.npz'" in qat
    gen = _make_n("gen", "WEIGHTS=b/m64.npz", "BITS=int4")
    assert "--weights 'b/m64.npz'" in gen and "--name 'm64'" in gen
    assert "--out 'build/gen/m64_int4'" in gen
    assert "--activation 'relu'" in _make_n("import", "FROM=m.pt", "ACTIVATION=relu")
    assert "--activation" not in _make_n("import", "FROM=m.pt")


# Every variable that a recipe hands to the shell, and the targets that use them.
MAKE_VARS = ("NET", "BITS", "IMAGES", "IMAGE", "P", "PE", "SIM", "WEIGHTS", "LAYERS", "EPOCHS",
             "FROM", "OUT", "ACTIVATION", "SHARD", "TARGET", "POINTS", "TEST_JOBS",
             "FUZZ_EXAMPLES", "CI")
MAKE_TARGETS = ("sim", "sim-netlist", "gen", "train", "synth", "regress-full", "qat",
                "import", "accuracy", "bench-hw", "fuzz", "sim-deps", "netlist-deps")


def _shell_tokens(script: str) -> list[str]:
    """The words and operators (``;``, ``&&``, ...) the shell sees in ``script``."""
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_make_quotes_every_variable(target: str) -> None:
    """A variable's value reaches the shell as one word: ``NET='x;touch X;'`` runs no touch."""
    bad = "x\";touch X;it's"  # both quote kinds: neither "..." nor '...' alone holds it
    recipe = _make_n(target, *(f"{v}={bad}" for v in MAKE_VARS))
    tokens = _shell_tokens(recipe)
    assert "touch" not in tokens, recipe
    assert any(bad in t for t in tokens) or target == "sim-deps", recipe


def test_shell_tokens_sees_an_unquoted_command() -> None:
    """The check above is not vacuous: an unquoted value splits into commands."""
    assert "touch" in _shell_tokens("python -m mnist_fpga.tb.netsim --net x;touch X;")
    assert "touch" not in _shell_tokens("python -m mnist_fpga.tb.netsim --net 'x;touch X;it'\\''s'")


def test_make_sim_hostile_net_runs_nothing(tmp_path: Path) -> None:
    """``make sim NET='l10;touch <tmp>/X;'``: the network-name error line, and no X."""
    marker = tmp_path / "X"
    env = {k: v for k, v in os.environ.items() if k not in ("NET", "BITS", "WEIGHTS", "IMAGES")}
    env["BUILD_DIR"] = str(tmp_path / "build")
    proc = subprocess.run(["make", "-s", "sim", f"NET=l10;touch {marker};", "IMAGES=1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and not marker.exists(), proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: network name 'l10;touch {marker};' is not a valid VHDL identifier"), proc.stderr


def _netsim(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NET", "BITS", "IMAGES")}
    env["BUILD_DIR"] = str(tmp_path / "build")
    return subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_sim_w2a2_runs_the_qat_model_and_says_so(tmp_path: Path) -> None:
    from mnist_fpga.tb.common import simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)
    proc = _netsim("--format", "w2a2", "--images", "3", "--prefer-qat", tmp_path=tmp_path)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[0].startswith("model: models/mlp256_qat_w2a2.npz, the QAT model for w2a2")
    assert lines[-1].startswith("SUMMARY net=mlp256 format=int2 images=3 bit_exact=3 "
                                "rtl_correct=3")


def test_sim_weights_of_a_layers_trained_net(tmp_path: Path) -> None:
    """A 784-64-32-10 net trained with --layers (a short synthetic run), by WEIGHTS=: bit-exact."""
    from mnist_fpga.tb.common import simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)
    torch = pytest.importorskip("torch")
    from mnist_fpga.train.train import recipe_for, save_model, train_net
    from tests.test_train import _synthetic

    torch.set_num_threads(1)
    images, labels = _synthetic(600, seed=2)
    arrays = train_net("mlp64x32", images, labels, images[:50], labels[:50], epochs=1, seed=0,
                       log=lambda _msg: None, recipe=recipe_for("mlp64x32", "784,64,32,10"))
    path = tmp_path / "mlp64x32.npz"
    save_model(arrays, path)
    proc = _netsim("--weights", str(path), "--format", "int8", "--images", "3", "--p", "3",
                   tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == f"model: {path.name} as network mlp64x32 (int8)"
    assert "SUMMARY net=mlp64x32 format=int8 images=3 bit_exact=3" in proc.stdout
    assert "TIMING p=3,3,3" in proc.stdout
    assert np.load(path)["W1"].shape == (32, 64)
