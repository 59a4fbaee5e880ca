"""Simulator selection: per-simulator build folders, one clear skip line without NVC."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_fpga.tb import common

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("sim", common.SIMULATORS)
def test_each_simulator_has_its_own_build_folder(sim: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """GHDL's executable and NVC's library folder both take the top's name: never share."""
    seen: dict[str, str] = {}

    def fake_run(**kwargs: object) -> None:
        seen["sim_build"] = str(kwargs["sim_build"])

    import cocotb_test.simulator

    monkeypatch.setattr(cocotb_test.simulator, "run", fake_run)
    monkeypatch.setenv("SIM", sim)
    common.run_sim(toplevel="x_tb", module="test_x", vhdl_sources=[], build_dir=tmp_path,
                   bench_dir=tmp_path)
    assert seen["sim_build"] == str(tmp_path / sim)
    assert (tmp_path / sim / "sim.log").exists()


NVC_MISSING = "simulator 'nvc' not found on PATH (install NVC >= 1.22: docs/simspeed.md says how)"


def _bench_without_nvc(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    """One argmax bench case with SIM=nvc and no simulator on PATH, with or without CI."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"SIM": "nvc", "PATH": str(tmp_path), "BUILD_DIR": str(tmp_path / "b")}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:xdist", "-p", "no:cacheprovider",
         "tb/argmax/test_argmax.py", "-k", "n1-int8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_bench_skips_with_one_line_without_nvc(tmp_path: Path) -> None:
    """SIM=nvc where NVC is not installed: the bench's cases skip, saying why, in one line."""
    proc = _bench_without_nvc(tmp_path, ci=False)
    skips = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(skips) == 1, proc.stdout
    assert skips[0].endswith(NVC_MISSING), skips[0]
    assert "1 skipped" in proc.stdout


def test_ci_fails_where_the_selected_simulator_is_missing(tmp_path: Path) -> None:
    """The same case under CI=true: a failure, with one line naming the missing tool."""
    proc = _bench_without_nvc(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CI=true: ")]
    assert lines == [f"CI=true: {NVC_MISSING} (under CI a missing tool fails, not skips)"], (
        proc.stdout)
    assert "1 failed" in proc.stdout and "skipped" not in proc.stdout


def test_ci_keeps_optional_skips(tmp_path: Path) -> None:
    """Under CI=true a skip whose reason starts with ``optional:`` (the fuzz replay without
    FUZZ_SEED) stays a skip."""
    env = {k: v for k, v in os.environ.items() if k != "FUZZ_SEED"} | {"CI": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:xdist", "-p", "no:cacheprovider",
         "tb/fuzz/test_fuzz.py", "-k", "replay"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout and "optional: set FUZZ_SEED" in proc.stdout


def test_ghdl_library_cache_follows_the_committed_sources(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled library of the committed units is reused only while they are unchanged,
    and a generated unit that uses them is analysed on every build."""
    import logging

    if reason := common.simulator_missing("ghdl"):
        pytest.skip(reason)
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.setattr(common, "BUILD", tmp_path / "build")
    rtl, gen = tmp_path / "rtl", tmp_path / "build" / "gen"
    rtl.mkdir()
    gen.mkdir(parents=True)
    unit, top = rtl / "val.vhd", gen / "top.vhd"
    cache = tmp_path / "build" / "ghdl-lib"

    def build_and_run(value: int, offset: int) -> str:
        unit.write_text(f"entity val is port (v : out integer := {value}); end entity;\n"
                        "architecture a of val is begin end architecture;\n")
        top.write_text(
            "entity top is end entity;\n"
            "architecture a of top is\n  signal v : integer;\nbegin\n"
            "  u : entity work.val port map (v => v);\n"
            f"  process begin wait for 1 ns; report \"value \" & integer'image(v + {offset});"
            " wait; end process;\nend architecture;\n")
        sim_dir = tmp_path / "sim"
        assert common.ghdl_build("top", "top", [str(unit), str(top)], ["--std=08"], sim_dir,
                                 logging.getLogger("test"))
        # ghdl -r: the executable (llvm, gcc) or the library itself (mcode writes none)
        out = subprocess.run(["ghdl", "-r", "--std=08", "--work=top", "top"], cwd=sim_dir,
                             capture_output=True, text=True, timeout=60)
        return out.stdout + out.stderr

    assert "value 11" in build_and_run(10, 1)
    assert "value 12" in build_and_run(10, 2)  # the generated unit changed: cache reused
    assert len(list(cache.iterdir())) == 1
    assert "value 22" in build_and_run(20, 2)  # the committed unit changed: a new library
    assert len(list(cache.iterdir())) == 2


# ---------------------------------------------------------------- one build folder, two runs


def _netsim(build: Path, *args: str) -> subprocess.Popen[str]:
    """``tb.netsim --net zero --images 2`` in the background, building under ``build``."""
    env = {k: v for k, v in os.environ.items() if k not in ("SIM", "WAVES", "VERBOSE")}
    env["BUILD_DIR"] = str(build)
    return subprocess.Popen([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "zero",
                             "--images", "2",
                             *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _passed(run: subprocess.Popen[str]) -> None:
    """The run ends (bounded) with both images bit-exact."""
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert "SUMMARY net=zero format=int8 images=2 bit_exact=2 " in out, out


def test_two_runs_of_one_configuration_both_pass(tmp_path: Path) -> None:
    """Two ``make sim`` of one configuration at once (one BUILD_DIR) share build/sim/<tag>:
    without the lock, 2 of 3 such pairs failed ("produced no results")."""
    if reason := common.simulator_missing("ghdl"):
        pytest.skip(reason)
    runs = [_netsim(tmp_path) for _ in range(2)]
    for run in runs:
        _passed(run)


def test_a_run_waits_while_its_build_folder_is_locked(tmp_path: Path) -> None:
    """While another holder has ``<work>.lock``, a run says it waits and writes nothing."""
    if reason := common.simulator_missing("ghdl"):
        pytest.skip(reason)
    work = tmp_path / "sim" / "t"
    with common.work_lock(work):
        run = _netsim(tmp_path, "--tag", "t")
        try:
            ready, _, _ = select.select([run.stderr], [], [], 300)  # bounded: it must say so
            line = run.stderr.readline() if ready else "(nothing in 300 s)"
            assert line.startswith(f"waiting for another run that uses {work}"), line
            assert not work.exists()
        except BaseException:
            run.kill()
            run.wait()
            raise
    _passed(run)


def test_waves_run_names_its_waveform(tmp_path: Path) -> None:
    """``WAVES=1``: the run prints ``waveform: <path>``, a file GHDL wrote (``<top>.ghw``)."""
    if reason := common.simulator_missing():
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k not in ("SIM", "VERBOSE")}
    env |= {"BUILD_DIR": str(tmp_path), "WAVES": "1"}
    proc = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "zero",
                           "--images", "1"],
                          cwd=ROOT, env=env, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    named = [line for line in proc.stdout.splitlines() if line.startswith("waveform: ")]
    assert len(named) == 1, proc.stdout
    wave = Path(named[0].removeprefix("waveform: ").split(" (")[0])
    assert wave.suffix == ".ghw" and wave.is_relative_to(tmp_path), wave
    assert wave.stat().st_size > 0
