"""Run the service in a child process on a free localhost port, for the e2e test and the benchmark.

`--port 0` lets the OS pick a free port; the service prints `serving on http://HOST:PORT/`
once the model and the database are loaded, which is when the URL is handed back.
"""
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def running_service(flags, timeout=60, cwd=None):
    """Yield the base URL of `python -m deploy.serving --host 127.0.0.1 --port 0 FLAGS`; stop it afterwards.
    The service runs in cwd (default: this process's), so its relative defaults (./output) resolve there."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "deploy.serving", "--host", "127.0.0.1", "--port", "0", *flags],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline, url = [], time.monotonic() + timeout, None
    try:
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                if proc.poll() is not None or time.monotonic() >= deadline:
                    why = f"exited with status {proc.returncode}" if proc.poll() is not None else \
                        f"did not start within {timeout} s"
                    raise RuntimeError(f"the service {why}:\n" + "".join(seen)) from None
                continue
            seen.append(line)
            if "serving on http://" in line:
                url = line.split("serving on ")[1].strip()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
