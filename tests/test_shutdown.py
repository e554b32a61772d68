"""The command's SIGTERM guard (flows/shutdown.py), without Prefect: a process whose SIGTERM
handler has been replaced (as Prefect's flow engine replaces it) and whose unwinding never ends
still exits within the grace period with 143 and the one line, its child processes killed; with
the guard's own handler, the signal unwinds the ordinary way at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    from flows.shutdown import EXIT_CODE, Terminated, end_promptly_on_sigterm, tell_terminated

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with end_promptly_on_sigterm("test", grace_s=1.0):
        try:
            if sys.argv[1] == "stuck":
                # Like Prefect during a flow run: its own handler, and an unwinding that waits.
                signal.signal(signal.SIGTERM, lambda *args: None)
            print(child.pid, flush=True)
            time.sleep(300)
        except Terminated:
            child.terminate()
            tell_terminated("test")
            sys.exit(EXIT_CODE)
    """
)


def run_and_terminate(mode: str) -> tuple[subprocess.CompletedProcess, float, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child = int(process.stdout.readline())
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    elapsed = time.monotonic() - signalled
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), elapsed, child


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_stuck_process_is_ended_after_the_grace_period_with_its_children():
    done, elapsed, child = run_and_terminate("stuck")
    assert done.returncode == 143, done.stderr
    assert 1.0 <= elapsed < 10, elapsed
    assert done.stderr.strip() == "ridership test: terminated: stopped by SIGTERM; what was stored is complete (rerun the same command to resume)"
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(child)


def test_outside_a_flow_the_signal_unwinds_at_once():
    done, elapsed, child = run_and_terminate("plain")
    assert done.returncode == 143, done.stderr
    assert elapsed < 5, elapsed
    assert done.stderr.strip().startswith("ridership test: terminated:")
    assert "Traceback" not in done.stderr
