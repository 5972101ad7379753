"""The warm stage server (pipeline/plumbing/warm.py, `zoo warm`): a served stage behaves as the `zoo`
process would have (streams, folder, environment, exit status, Ctrl-C, being killed), runs
cold when the server cannot serve it, and trains bit for bit the same model.

The mechanics are tested on a stand-in stage (tests/warm_target.py) served without the heavy
imports; the last test trains a real experiment both ways. The end-to-end pipeline test runs
`zoo warm dvc repro`, as `make repro` does, and checks its stages were served."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO
from pipeline.plumbing import warm

TESTS = Path(__file__).resolve().parent
CLIENT = "import sys; from pipeline.plumbing.warm import delegate; delegate(); print('ran cold', flush=True)"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (warm.ENV, "ZOO_ROOT")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS)])
    return env


@pytest.fixture
def server(tmp_path):
    """A server of tests/warm_target.py: (socket path, process)."""
    path = str(tmp_path / "socket")
    proc = subprocess.Popen(
        warm.server_command(path, "warm_target:main", preload_modules=False),
        env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    yield path, proc
    proc.terminate()
    proc.wait(10)


def client(path: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {**base_env(), warm.ENV: path, **(env or {})}
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_a_served_stage_gets_the_streams_folder_environment_and_exit_status(server, tmp_path):
    path, _ = server
    code, out, err = finish(client(path, "train", "echo", "a", "b"))
    assert (code, out, err) == (0, "out a b\n", "err a b\n")  # the child's output; no "ran cold"
    assert finish(client(path, "train", "exit", "3"))[0] == 3

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    proc = client(path, "train", "info", "ZOO_TEST_VALUE", env={"ZOO_TEST_VALUE": "42"}, cwd=folder)
    code, out, err = finish(proc)
    info = json.loads(out)
    assert code == 0, err
    assert info["pid"] != proc.pid  # a forked child, not the zoo process
    assert info["cwd"] == str(folder) and info["value"] == "42"
    assert info["socket"] is None  # what the child starts runs cold


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_the_server_sleeps_between_requests(server):
    """It once spun on an undrained signal pipe after its first child exited, taking a core
    from the stages it served."""
    path, proc = server
    for _ in range(3):
        assert finish(client(path, "train", "echo"))[0] == 0
    before = cpu_seconds(proc.pid)
    time.sleep(1.0)
    assert cpu_seconds(proc.pid) - before < 0.1


def test_ctrl_c_reaches_the_child_and_its_exit_status_comes_back(server):
    path, _ = server
    proc = client(path, "train", "wait")
    child = int(proc.stdout.readline())
    assert child != proc.pid
    proc.send_signal(signal.SIGINT)
    code, out, _ = finish(proc)
    assert (code, out) == (130, "interrupted\n")


def test_ctrl_c_that_comes_just_as_the_zoo_process_starts_waiting_still_reaches_the_child(server):
    """Python runs a signal's handler between bytecodes: a Ctrl-C that arrived after the last
    check and before the zoo process blocked waiting for the child's end was forwarded only
    when the child ended, so a sleeping child never got it (about one Ctrl-C in 2000). Here
    every signal is taken by a second thread of the zoo process, which leaves its main thread's
    wait uninterrupted, as such a signal does."""
    taken_by_a_thread = (
        "import signal, threading, time; threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); "
        "signal.pthread_sigmask(signal.SIG_BLOCK, warm.FORWARDED); "
    )
    env = {**base_env(), warm.ENV: server[0]}
    proc = subprocess.Popen([sys.executable, "-c", "from pipeline.plumbing import warm; " + taken_by_a_thread + CLIENT, "train", "wait"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(child, signal.SIGKILL)
        proc.kill()
        proc.communicate()
        pytest.fail("the Ctrl-C did not reach the child")
    assert (proc.returncode, out) == (130, "interrupted\n")


def test_killing_the_zoo_process_kills_its_stage(server):
    path, _ = server
    proc = client(path, "train", "wait")
    child = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists(), "the stage outlived its zoo process"


def test_what_the_server_cannot_serve_runs_cold(server, tmp_path):
    path, proc = server
    # a setting read when torch is imported, different from the server's
    code, out, _ = finish(client(path, "train", "echo", "x", env={"OMP_NUM_THREADS": "7"}))
    assert (code, out) == (0, "ran cold\n")
    assert finish(client(path, "list"))[1] == "ran cold\n"  # not a stage
    assert finish(client(path, "train", "--help"))[1] == "ran cold\n"
    assert finish(client(str(tmp_path / "no-server"), "train", "echo"))[1] == "ran cold\n"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "ran cold: 1 (environment differs: OMP_NUM_THREADS)" in err


def test_zoo_warm_runs_the_command_beside_a_server_and_returns_its_status(tmp_path, monkeypatch):
    monkeypatch.delenv(warm.ENV, raising=False)
    monkeypatch.setenv("PYTHONPATH", base_env()["PYTHONPATH"])
    script = f"echo $ZOO_WARM_SOCKET > {tmp_path}/socket; {sys.executable} -c \"{CLIENT}\" train info X > {tmp_path}/info; exit 7"
    assert warm.run(["sh", "-c", script], target="warm_target:main", preload_modules=False) == 7
    info = json.loads((tmp_path / "info").read_text())
    assert info["socket"] is None and info["main_file"].endswith("-c")  # served (a cold run prints "ran cold")
    socket_path = Path((tmp_path / "socket").read_text().strip())
    assert socket_path.name == "socket" and not socket_path.parent.exists()  # the server's folder is gone


def test_a_served_training_run_is_bit_for_bit_the_cold_one(tmp_path):
    from test_faults import EXPERIMENT, env, small_project, weights

    def stage_lines(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "logs" / "stages.jsonl").read_text().splitlines()]

    runs = {}
    for how in ("cold", "warm"):
        folder = small_project(tmp_path / how)
        subprocess.run([sys.executable, "-m", "pipeline", "fetch", "parity"], cwd=folder, env=env(), check=True, capture_output=True)
        stages = f"{sys.executable} -m pipeline train {EXPERIMENT}"  # evaluate: served in the end-to-end test
        cmd = ["sh", "-c", stages] if how == "cold" else [sys.executable, "-m", "pipeline", "warm", "--", "sh", "-c", stages]
        proc = subprocess.run(cmd, cwd=folder, env=env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[how] = folder
        served = [e["warm"] for e in stage_lines(folder) if e["stage"] == "train"]
        assert served == [how == "warm"], proc.stderr[-3000:]
    cold, served = weights(runs["cold"]), weights(runs["warm"])
    assert cold.keys() == served.keys()
    assert all(torch.equal(cold[k], served[k]) for k in cold)
    curves = [(runs[h] / "curves" / f"{EXPERIMENT}.csv").read_text() for h in ("cold", "warm")]
    assert curves[0] == curves[1]  # every logged epoch mean too
