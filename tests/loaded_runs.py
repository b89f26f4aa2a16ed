"""The whole suite, several times in a row, while busy loops keep every core busy.

    python tests/loaded_runs.py [--runs 5] [--loops N] [-- PYTEST ARGS...]

(``make test-loaded``, which passes ``make test``'s xdist options after ``--``.) Starts
``--loops`` busy loops (default: one per core) at normal priority, runs ``python -m
pytest -q`` under the ``ci`` hypothesis profile ``--runs`` times, one after the other,
and prints one line per run (result, duration, the summary line, the examples run); then
stops the loops, by pid, whatever happened. Exits 1 if any run failed. Each run's whole
output (stdout, then stderr) is kept in ``--logs`` (default ``loaded-runs/`` here,
git-ignored) as ``run-N.log``, so a failure can be read afterwards. A flaky test is a
defect: this is how the suite shows it has none
(TESTING.md, "Load").
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="suite runs in a row (default 5)")
    ap.add_argument("--loops", type=int, default=os.cpu_count() or 1, help="busy loops (default: one per core)")
    ap.add_argument("--logs", default=os.path.join(ROOT, "loaded-runs"),
                    help="folder for each run's whole output, run-N.log (default: loaded-runs/)")
    ap.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = ap.parse_args(argv)
    os.makedirs(args.logs, exist_ok=True)
    # Ctrl-C stops the runs (pytest cleans up its clusters), even when this was started as
    # a background job of a non-interactive shell, which ignores SIGINT for its children
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = dict(os.environ, ECHOFINN_HYPOTHESIS="ci")
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
             for _ in range(args.loops)]
    failed = 0
    try:
        print(f"{args.loops} busy loops (pids {', '.join(str(p.pid) for p in loops)}); {args.runs} runs", flush=True)
        for run in range(1, args.runs + 1):
            t = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                               cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            took = time.monotonic() - t
            log = os.path.join(args.logs, f"run-{run}.log")
            with open(log, "w") as f:
                f.write(r.stdout + "\n--- stderr ---\n" + r.stderr)
            lines = r.stdout.strip().splitlines()
            summary = lines[-1] if lines else "(no output)"
            drawn = re.search(r"hypothesis profile 'ci': (\d+) examples run", r.stdout)
            failed += r.returncode != 0
            print(f"run {run}: {'ok' if r.returncode == 0 else 'FAILED'} in {took / 60:.1f} min, "
                  f"load {os.getloadavg()[0]:.1f}: {summary}"
                  + (f"; {int(drawn.group(1)):,} examples" if drawn else ""), flush=True)
            if r.returncode:
                said = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
                print("\n".join(said or r.stderr.strip().splitlines()[-5:]), flush=True)
                print(f"the whole output: {log}", flush=True)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    print(f"{args.runs - failed} of {args.runs} runs passed; the busy loops are stopped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
