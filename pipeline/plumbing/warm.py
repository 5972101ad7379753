"""Warm stage processes: import torch, Lightning and MLflow once, fork a process per stage.

Every train and evaluate stage of ``dvc repro`` is a new ``zoo`` process, and each spends
6 to 9 seconds (on the 2-core machine) importing the same libraries before any work: 126
such stages in the default pipeline, a quarter of ``make repro``. ``zoo warm COMMAND``
runs COMMAND (``make repro`` runs ``zoo warm dvc repro``) beside a server that has done
those imports once. A ``zoo`` stage command started by COMMAND (``fetch``, ``reference``,
``train``, ``evaluate``, ``compare``) finds the server through ``ZOO_WARM_SOCKET``, hands it
its arguments, folder, environment and standard streams, and the server forks a child that
runs the command exactly as the ``zoo`` process would have: the project's own modules are
imported afresh from disk in the child, only the third-party libraries come pre-imported.

The ``zoo`` process stays in between, so that DVC and the shell see the stage as before:
it forwards signals (Ctrl-C, SIGTERM) to the child's process group, and exits with the
child's exit status, or dies of the same signal. If the ``zoo`` process is killed, the
server kills the child. Nothing is served, and the ``zoo`` process runs the stage itself,
when no server answers, or when the request differs from the server in what was fixed at
import time (the interpreter, ``sys.path``, environment variables such as
``OMP_NUM_THREADS``, ``PYTHON*``, ``CUDA_*``, ``MLFLOW_*``: ``IMPORT_TIME_ENV``). A child
does not delegate further: DDP ranks and other processes it starts run as usual.
``python benchmarks/cli_startup.py`` measures a stage process both ways.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Optional

ENV = "ZOO_WARM_SOCKET"
STARTED_ENV = "ZOO_WARM_STARTED"  # read (and removed) by pipeline.cli: the zoo process's start
STAGE_COMMANDS = ("fetch", "reference", "train", "evaluate", "compare")
IMPORT_TIME_ENV = ("PYTHON", "OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_", "TORCH", "PYTORCH_",
                   "LD_", "MALLOC_", "MLFLOW_", "PL_", "LIGHTNING_", "MPLBACKEND", "MPLCONFIGDIR", "LANG", "LC_")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
PROJECT_PACKAGES = ("pipeline", "lightning_modules")
DEFAULT_TARGET = "pipeline.cli:main"
_HEADER = struct.Struct("!I")


# ------------------------------------------------------------------- messages on the socket


def _send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    data = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [data], list(fds))
        data = data[sent:]
    sock.sendall(data)


def _receive(sock: socket.socket, max_fds: int = 0) -> tuple[Optional[dict], list[int]]:
    """One message and the descriptors that came with it; (None, []) when the peer closed."""
    fds: list[int] = []
    buffer = b""
    while len(buffer) < _HEADER.size or len(buffer) < _HEADER.size + _HEADER.unpack_from(buffer)[0]:
        if max_fds and not fds:
            chunk, fds, _, _ = socket.recv_fds(sock, 65536, max_fds)
        else:
            chunk = sock.recv(65536)
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None, []
        buffer += chunk
    return json.loads(buffer[_HEADER.size:].decode()), fds


def _import_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


# ------------------------------------------------------------------- the zoo process's side


def delegate(started: Optional[float] = None) -> None:
    """Hand this ``zoo`` stage command to the warm server, if one runs (``ZOO_WARM_SOCKET``),
    and exit as the served child did. Returns, and the caller runs the command itself, when
    there is no server, the command is not a stage, or the server declines. ``started``: the
    process's start (``time.perf_counter``), from which the stage's process time counts."""
    path = os.environ.get(ENV)
    argv = sys.argv
    if not path or len(argv) < 2 or argv[1] not in STAGE_COMMANDS or {"-h", "--help"} & set(argv[2:]):
        return
    forwarding = _Forwarding()  # from here on: a signal that arrives before the child exists waits for it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        request = {
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "executable": sys.executable,
            "path": sys.path,
            "main_spec": spec.name if spec is not None else None,
            "started": time.perf_counter() if started is None else started,
        }
        _send(sock, request, fds=(0, 1, 2))
        reply, _ = _receive(sock)
    except OSError:  # no server, a stale socket, a closed standard stream: run here
        reply = None
    if reply is None or "decline" in reply:
        sock.close()
        forwarding.cancel()
        return
    forwarding.to(reply["pid"])
    reply = forwarding.wait(sock)
    if reply is None:
        sys.stderr.write(f"error: the warm stage server went away while running pid {forwarding.pid}\n")
        code = 1
    else:
        code = int(reply["exit"])  # os.waitstatus_to_exitcode: negative for a signal
    if code < 0:  # the child died of a signal: so does this process, for DVC and the shell
        sys.stdout.flush()
        if -code in FORWARDED:  # a handler of ours: back to the default (SIGKILL has none)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)


class _Forwarding:
    """The ``zoo`` process's handlers for ``FORWARDED`` signals: each goes to the child's process
    group; one that arrives before the child's pid is known is held and sent once it is.

    Python runs a signal's handler in the main thread between bytecodes, not when the signal
    arrives: one that arrives after the last check and before a blocking ``recv`` would be
    forwarded only once ``recv`` returns, that is once the child has ended, and a sleeping
    child never would be. So the wait for the child's end (``wait``) also watches the signal
    wakeup fd, to which the interpreter writes the moment a signal arrives."""

    def __init__(self) -> None:
        self.pid: Optional[int] = None
        self.pending: list[int] = []
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)
        self.previous_wakeup = signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        self.previous = {signum: signal.signal(signum, self._handle) for signum in FORWARDED}

    def _handle(self, signum, frame) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def to(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self._handle(signum, None)

    def wait(self, sock: socket.socket) -> Optional[dict]:
        """The server's next message (None when it closed), forwarding signals meanwhile."""
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(self.wakeup_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is sock:
                        return _receive(sock)[0]
                    try:  # a signal arrived: its handler runs before the next select
                        while os.read(self.wakeup_r, 4096):
                            pass
                    except BlockingIOError:
                        pass

    def cancel(self) -> None:
        """Not served: the usual handlers back, and what arrived meanwhile delivered to them."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self.previous_wakeup)
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)
        for signum in self.pending:
            os.kill(os.getpid(), signum)


# ------------------------------------------------------------------- the server


class Server:
    """Accepts requests on a Unix socket and forks one child per request; a single thread and
    one selector, so that forking copies no lock held by another thread."""

    def __init__(self, path: str, target: str = DEFAULT_TARGET, idle_timeout: float = 3600.0, environ_before: Optional[dict] = None):
        """``environ_before``: the environment before the server's imports (some set variables,
        torch ``TORCHINDUCTOR_CACHE_DIR`` for one); requests are compared with it, and a child
        gets what the imports set, as a cold process would have."""
        environ_before = dict(os.environ if environ_before is None else environ_before)
        self.import_env = _import_env(environ_before)
        self.set_by_imports = {k: v for k, v in os.environ.items() if environ_before.get(k) != v}
        self.path = path
        self.target = target
        self.idle_timeout = idle_timeout
        self.parent = os.getppid()
        self.children: dict[int, socket.socket] = {}  # pid -> the zoo process's connection
        self.served = 0
        self.declined: dict[str, int] = {}
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)

    # -- lifecycle
    def serve(self, ready=None) -> None:
        signal.signal(signal.SIGCHLD, lambda *a: None)  # wakes the selector through the wakeup fd
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "child")
        if ready is not None:
            ready()
        idle_since = time.monotonic()
        try:
            while True:
                for key, _ in self.selector.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "child":  # a signal (SIGCHLD) arrived: drain its bytes, reap
                        while True:
                            try:
                                if not os.read(self.wakeup_r, 4096):
                                    break
                            except BlockingIOError:
                                break
                        self._reap()
                    else:  # the zoo process of a running child closed its end: it was killed
                        self._client_gone(key.data)
                self._reap()
                if self.children:
                    idle_since = time.monotonic()
                if os.getppid() != self.parent or time.monotonic() - idle_since > self.idle_timeout:
                    return
        finally:
            self._shutdown()

    def _stop(self, signum, frame):
        raise SystemExit(0)

    def _shutdown(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def summary(self) -> str:
        text = f"zoo warm: {self.served} stage processes forked from the warm server"
        if self.declined:
            text += "; ran cold: " + ", ".join(f"{n} ({why})" for why, n in self.declined.items())
        return text

    # -- requests
    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            conn.settimeout(10)
            request, fds = _receive(conn, max_fds=3)
            if request is None or len(fds) != 3:
                raise OSError("incomplete request")
            why = self._decline_reason(request)
            if why:
                self.declined[why] = self.declined.get(why, 0) + 1
                _send(conn, {"decline": why})
                conn.close()
                return
            sys.stdout.flush()
            sys.stderr.flush()
            # Held across the fork: the child takes a forwarded signal only once its own
            # handlers are in place, never the server's.
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            try:
                pid = os.fork()
                if pid == 0:
                    self._child(request, fds, conn)  # never returns
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"zoo warm: dropped a request: {exc}\n")
            conn.close()
            return
        finally:
            for fd in fds:  # the child has its copies (or there is no child)
                os.close(fd)
        try:
            os.setpgid(pid, pid)  # the child does it too: whichever runs first, the group exists for killpg
        except OSError:
            pass
        self.children[pid] = conn
        self.served += 1
        try:
            _send(conn, {"pid": pid})
            conn.settimeout(None)
            self.selector.register(conn, selectors.EVENT_READ, pid)
        except OSError:  # the zoo process left before it learnt the pid
            self._client_gone(pid)

    def _decline_reason(self, request: dict) -> str:
        if request.get("executable") != sys.executable:
            return "another Python"
        if list(request.get("path", []))[1:] != sys.path[1:]:
            return "another sys.path"
        theirs, ours = _import_env(request.get("env", {})), self.import_env
        if theirs != ours:
            names = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
            return "environment differs: " + " ".join(names)
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():  # a forked CUDA context is unusable
            return "CUDA initialised in the server"
        return ""

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            try:
                self.selector.unregister(conn)
            except (KeyError, ValueError):  # its zoo process is gone already
                pass
            try:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            except OSError:
                pass
            conn.close()

    def _client_gone(self, pid: int) -> None:
        conn = self.children.get(pid)
        if conn is None:
            return
        try:
            self.selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        try:
            os.killpg(pid, signal.SIGKILL)  # the zoo process was killed: so is its stage
        except ProcessLookupError:
            pass

    # -- the child
    def _child(self, request: dict, fds: list[int], conn: socket.socket) -> None:
        code = 1
        try:
            os.setpgid(0, 0)  # its own group: the zoo process forwards signals to it and its children
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
            self.selector.close()
            self.listener.close()
            for other in (conn, *self.children.values()):
                other.close()
            os.close(self.wakeup_r)
            os.close(self.wakeup_w)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            sys.stdout.reconfigure(line_buffering=os.isatty(1))
            os.chdir(request["cwd"])
            env = {**self.set_by_imports, **request["env"]}
            env.pop(ENV, None)  # what this child starts (DDP ranks...) runs cold
            env[STARTED_ENV] = repr(request["started"])
            os.environ.clear()
            os.environ.update(env)
            sys.argv = list(request["argv"])
            sys.path[:] = request["path"]
            _fresh_main(sys.argv[0], request.get("main_spec"))
            for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]:
                del sys.modules[name]  # the project's code, as it is on disk now
            module_name, func = self.target.split(":")
            import importlib

            getattr(importlib.import_module(module_name), func)()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            import traceback

            traceback.print_exc()
            code = -signal.SIGINT
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            _finish(code)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    sys.stderr.write(f"{value}\n")
    return 1


def _fresh_main(script: str, spec_name: Optional[str]) -> None:
    """A ``__main__`` as the zoo process had it, for code that re-executes the command (Lightning
    starting DDP ranks, multiprocessing's spawn): its file, or the module run with ``-m``."""
    import importlib.util
    import types

    main = types.ModuleType("__main__")
    main.__file__ = os.path.abspath(script)
    main.__spec__ = importlib.util.find_spec(spec_name) if spec_name else None
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main


def _finish(code: int) -> None:
    """End the child as the interpreter would (wait for its threads, run atexit handlers, flush),
    without tearing down the imported modules (which a forked child need not do)."""
    import atexit
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def preload() -> None:
    """What a stage imports from outside the project, with the collector paused and frozen
    (``pipeline.plumbing.startup``): torch, Lightning, MLflow and its database store, and the plotting
    and data libraries the stages use."""
    from pipeline.plumbing.startup import DATABASE_STORE, HEAVY, import_heavy

    import matplotlib

    matplotlib.use("Agg")  # what the stages choose; pyplot may then be preloaded
    import_heavy(*HEAVY, DATABASE_STORE, "matplotlib.pyplot", "numpy", "yaml", "PIL.Image")


# ------------------------------------------------------------------- zoo warm COMMAND


def server_command(path: str, target: str = DEFAULT_TARGET, preload_modules: bool = True) -> list[str]:
    """The command line of a server on socket ``path`` that forks ``target`` ("module:function")
    for each request, after the stages' imports (``preload``) unless ``preload_modules`` is
    false. It prints "ready" on stdout once it listens, and a summary on stderr when it ends."""
    code = "import sys; from pipeline.plumbing.warm import _server_main; _server_main(sys.argv[1:])"
    return [sys.executable, "-c", code, path, target, "1" if preload_modules else "0"]


def run(command: list[str], *, target: str = DEFAULT_TARGET, preload_modules: bool = True, ready_timeout: float = 600.0) -> int:
    """Run ``command`` with a warm server beside it; the exit code of ``command``. If the
    server does not come up, ``command`` still runs, its stages cold."""
    import subprocess
    import tempfile

    folder = tempfile.mkdtemp(prefix="zoo-warm-")
    path = os.path.join(folder, "socket")
    server = subprocess.Popen(
        server_command(path, target, preload_modules),
        stdout=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C reaches the zoo processes, which forward it, not the children twice
    )
    env = dict(os.environ)
    deadline = time.monotonic() + ready_timeout
    line = b""
    with selectors.DefaultSelector() as ready:
        ready.register(server.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and server.poll() is None:
            if ready.select(timeout=1.0):
                line = server.stdout.readline()
                break
    if line.strip() == b"ready":
        env[ENV] = path
    else:
        sys.stderr.write("zoo warm: the server did not start; running every stage cold\n")

    # Ctrl-C goes to COMMAND itself (the terminal's whole group gets it): wait for it to end
    previous = signal.signal(signal.SIGINT, lambda *a: None)
    try:
        code = subprocess.call(command, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        try:
            os.unlink(path)
        except OSError:
            pass
        os.rmdir(folder)
    return code


def _server_main(args: list[str]) -> None:
    path, target, preload_modules = args
    environ_before = dict(os.environ)
    started = time.perf_counter()
    if preload_modules == "1":
        preload()
    imported = time.perf_counter() - started
    server = Server(path, target, environ_before=environ_before)

    def ready():
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    try:
        server.serve(ready)
    finally:
        text = server.summary() + (f" (imports done once: {imported:.1f} s)" if preload_modules == "1" else "")
        sys.stderr.write(text + "\n")
