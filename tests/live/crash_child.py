"""The runner as a child process, for tests/live/test_crash.py's ``kill -9`` matrix.

A run is one ``run_deployment`` of a testnet replay against the loopback exchange the test
process serves (``Run``, one JSON object). ``PEAK_LIVE_CRASH_AT`` (``Run.crash``) makes the
runner SIGKILL itself at a point of the order lifecycle; the credentials come from the
environment, as they would for ``peak live run``.

Two ways to run it:

``python crash_child.py run RUN.json``: one run in this process (exit 0 when it finished, -9
when the crash point killed it). Slow to start (peakdsl, numba, ccxt: seconds of imports).

``python crash_child.py serve WARM.json``: a fork server, so that a matrix of a few hundred
runs does not pay those seconds each time. It imports everything and runs the spec once in
paper mode (loading the compiled kernels), prints ``ready``, then reads one ``Run`` per line on
stdin; each is run in a ``fork()`` of this warmed, single-threaded process — a process of its
own, killed for real — and answered with one line ``{"rc": …, "seconds": …}`` (``rc`` as
``subprocess`` reports it: -9 for SIGKILL; ``"timeout"`` when the run outlived its
``timeout_s`` and was killed). The run's stdout and stderr go to its ``log`` file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
POLL_S = 0.01  # how often the fork server looks whether its child ended


@dataclass(frozen=True)
class Run:
    """One run of the deployment (all paths absolute; the project is the spec's, the account
    the default one)."""

    spec: str
    start: str
    end: str
    url: str
    min_history: int = 40
    timeout_ms: int = 1_000  # the ccxt client's: a held answer costs this much
    crash: str | None = None  # PEAK_LIVE_CRASH_AT, e.g. "submitted:3"
    count: bool = False  # count the crash points reached (written to ``out``)
    out: str | None = None  # where a finished run writes its summary (JSON)
    log: str | None = None  # the run's stdout and stderr (fork server only)
    timeout_s: float = 60.0  # the fork server kills a run that takes longer

    @classmethod
    def of(cls, text: str) -> Run:
        return cls(**json.loads(text))

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def counting(counts: Counter[str]) -> Callable[[str], None]:
    """A ``crashpoint`` that also counts the points reached (the test sizes ``n`` by them)."""
    from peakdsl.live import execute

    real = execute.crashpoint

    def point(name: str) -> None:
        counts[name] += 1
        real(name)

    return point


def run(config: Run) -> dict[str, Any]:
    """``run_deployment`` as ``peak live run --mode testnet --replay`` would call it."""
    from peakdsl.live import execute, runner
    from peakdsl.live.run import LiveRequest
    from peakdsl.live.runner import RunnerSettings, run_deployment

    os.environ.pop(execute.CRASH_ENV, None)
    if config.crash is not None:
        os.environ[execute.CRASH_ENV] = config.crash
    counts: Counter[str] = Counter()
    if config.count:
        hook = counting(counts)
        execute.crashpoint = hook  # type: ignore[assignment]
        runner.crashpoint = hook  # type: ignore[assignment,attr-defined]  # imported by name
    request = LiveRequest(config.spec, "testnet", True, config.start, config.end,
                          min_history=config.min_history)
    settings = RunnerSettings(endpoint=config.url, resolve_delay_s=0.0,
                              timeout_ms=config.timeout_ms)
    summary = run_deployment(request, settings)
    result = {"ticks": summary.ticks, "fills": len(summary.fills), "notes": summary.notes,
              "counts": dict(counts)}
    if config.out is not None:
        Path(config.out).write_text(json.dumps(result, sort_keys=True))
    return result


# ---------------------------------------------------------------------- the fork server

def warm(config: Run) -> None:
    """Import and load everything a run needs, so that a forked run starts at once: the
    spec's paper replay (compiler, engine kernels) and ccxt's binance client."""
    import ccxt

    from peakdsl.live import runner, venue
    from peakdsl.live.run import LiveRequest, run_live

    ccxt.binance()
    run_live(LiveRequest(config.spec, "paper", True, config.start, config.end,
                         min_history=config.min_history))
    assert runner and venue  # imported for their own imports


def child(config: Run) -> int:
    """In the forked process: the run, its output in its log; the exit status."""
    if config.log is not None:
        fd = os.open(config.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        run(config)
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def reap(pid: int, timeout_s: float) -> int | str:
    """Wait for ``pid``; its status as ``subprocess`` reports it (-N: killed by signal N),
    or ``"timeout"`` after killing it when it took longer than ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(POLL_S)


def fork_run(config: Run) -> dict[str, Any]:
    """One run in a forked child; its exit status and duration."""
    if threading.active_count() != 1:  # a fork copies no thread but every lock they held
        raise RuntimeError("the fork server must stay single-threaded")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os._exit(child(config))
    return {"rc": reap(pid, config.timeout_s), "seconds": time.monotonic() - started}


def serve(warm_config: Run) -> NoReturn:
    """The fork server's loop (module docstring): one answer line per request line."""
    import netguard

    netguard.install()
    warm(warm_config)
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed here must not look like an answer
    answer.write("ready\n")
    for line in sys.stdin:
        if line.strip():
            answer.write(json.dumps(fork_run(Run.of(line))) + "\n")
    answer.close()
    os._exit(0)  # nothing to clean up: skip the interpreter's slow shutdown (numba, ccxt)


def main(argv: list[str]) -> int:
    sys.path[:0] = [str(HERE.parent), str(HERE)]  # netguard, loopback_setup
    mode, path = argv[1], Path(argv[2])
    config = Run.of(path.read_text())
    if mode == "serve":
        serve(config)
    import netguard

    netguard.install()
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
