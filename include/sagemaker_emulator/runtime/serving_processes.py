"""How many serving processes an instance's worker runs, and how they share its port.

An instance type's vCPUs mean something: SageMaker's model servers (MMS/TorchServe behind the
inference toolkit) start one worker per vCPU unless ``SAGEMAKER_MODEL_SERVER_WORKERS`` says how many.
The emulator's worker does the same with *preload, then fork*, as ``gunicorn --preload`` does:

1. the first process loads the model once (``model_fn``),
2. binds the instance's port (the one the router calls) once per serving process with SO_REUSEPORT
   and, when there is more than one serving process, one private socket per process (its health port),
3. forks the others. Each runs its own event loop and inference thread and accepts connections on its
   socket of the instance's port, so any of them may answer ``/ping`` or an invocation; the model's
   memory is shared copy-on-write.

Why one socket each rather than one shared socket: with a shared socket, the first process to wake
accepts every pending connection at once (asyncio accepts up to its backlog per wake-up), so the
router's few keep-alive connections all landed on one process and the others idled. With
SO_REUSEPORT the kernel spreads new connections over the processes' sockets by a hash of the
connection. The spread is even on average but not load-aware (MMS's frontend queues requests for
idle workers instead); with a few more connections than workers every process stays busy.

The instance's health check pings every health port, so one hung process (stopped, or a handler
holding the GIL) is noticed even while its siblings answer the shared port. The first process
supervises the others: if one exits, the instance stops (exit code 1) and its fleet replaces it, as
AWS replaces an instance whose container fails; if the first process dies, the kernel kills the
others (``PR_SET_PDEATHSIG``).

A multi-model container keeps one serving process: its models are loaded into a process through
the management API (``/models``), and a model loaded into one process would be missing from the others.
Forking a process that has started threads (some model_fn do) only keeps the forking thread; that
is gunicorn's ``--preload`` caveat too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field

log = logging.getLogger("sagemaker_emulator.worker")

WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
# An emulator bound, not AWS's: an ml.m5.24xlarge (96 vCPUs) on a laptop gets 32 processes.
MAX_SERVING_PROCESSES = 32
REAP_POLL_SECONDS = 0.05


class WorkerCountError(ValueError):
    """SAGEMAKER_MODEL_SERVER_WORKERS is not a usable number."""


def serving_process_count(vcpus: int, environment: dict[str, str] | os._Environ, multi_model: bool) -> int:
    """One serving process per vCPU, capped by ``SAGEMAKER_MODEL_SERVER_WORKERS`` when the container sets it.

    The inference toolkit lets the variable go above the vCPUs; the emulator caps it, so an instance never
    runs more model servers than its type has vCPUs (an ml.c5.large is never an ml.c5.xlarge in disguise).
    """
    if multi_model:
        return 1
    raw = (environment.get(WORKERS_ENV) or "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise WorkerCountError(
                f"{WORKERS_ENV} must be a positive whole number of model server workers, got {raw!r}. "
                "Set it in the model's container Environment, or remove it to run one worker per vCPU.")
        wanted = min(wanted, max(vcpus, 1))
    else:
        wanted = max(vcpus, 1)
    if wanted > MAX_SERVING_PROCESSES:
        log.warning("Running %d model server workers instead of %d: the emulator's limit per instance",
                    MAX_SERVING_PROCESSES, wanted)
    return min(wanted, MAX_SERVING_PROCESSES)


@dataclass
class Listeners:
    """Per serving process: a socket on the instance's port and, with several processes, a private one."""

    shared: list[socket.socket]  # all bound to the instance's port (SO_REUSEPORT when more than one)
    private: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Read while every socket is open: after the fork each process closes its siblings' sockets.
        self.port: int = self.shared[0].getsockname()[1]
        self.health_ports: list[int] = [s.getsockname()[1] for s in self.private] or [self.port]


def bind_listeners(host: str, port: int, count: int) -> Listeners:
    """Bind and listen before forking, so the instance's port accepts connections from the start."""
    sockets: list[socket.socket] = []
    try:
        # The first socket takes its port (0: any free one) without SO_REUSEPORT, so the kernel cannot
        # hand it a port another instance's SO_REUSEPORT group holds; it joins the option before listening.
        sockets.append(_listen(host, port, reuse_port_after_bind=count > 1))
        port = sockets[0].getsockname()[1]
        sockets += [_listen(host, port, reuse_port_before_bind=True) for _ in range(count - 1)]
        private = [_listen(host, 0) for _ in range(count)] if count > 1 else []
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return Listeners(sockets, private)


def _listen(host: str, port: int, *, reuse_port_before_bind: bool = False,
            reuse_port_after_bind: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port_before_bind:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if reuse_port_after_bind:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ServingProcess:
    """This process's share of the instance: its sockets and, in the first process, its siblings."""

    def __init__(self, index: int, listeners: Listeners, children: list[int]):
        self.index = index
        self.listeners = listeners
        self.sockets = [listeners.shared[index]] + ([listeners.private[index]] if listeners.private else [])
        self._children: dict[int, int | None] = {pid: None for pid in children}  # pid -> exit code once reaped
        self._stopping = False
        self._failed = False
        self._pidfds: dict[int, int] = {}  # sibling pid -> its pidfd, while it is watched

    @property
    def primary(self) -> bool:
        return self.index == 0

    @property
    def pids(self) -> list[int]:
        return [os.getpid(), *self._children]

    def supervise(self, stop: asyncio.Event) -> None:
        """First process: when a sibling exits before the instance is stopped, stop the instance.

        Each sibling is watched through a pidfd (readable once it exits), not SIGCHLD: uvloop keeps
        SIGCHLD for itself, and a pidfd names one process, so the model's own subprocesses are left alone.
        """
        loop = asyncio.get_running_loop()

        def reap() -> None:
            self._reap()
            self._unwatch(exited_only=True)  # an exited process's pidfd stays readable
            if self._failed and not self._stopping:
                stop.set()

        for pid in self._live():
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:  # already reaped
                continue
            except (AttributeError, OSError):  # no pidfds (Linux < 5.3): look every REAP_POLL_SECONDS
                self._poll(loop, reap)
                break
            self._pidfds[pid] = pidfd
            loop.add_reader(pidfd, reap)
        reap()  # one may have died before it was watched

    def _poll(self, loop: asyncio.AbstractEventLoop, reap) -> None:
        def again() -> None:
            reap()
            if self._live() and not self._stopping:
                loop.call_later(REAP_POLL_SECONDS, again)

        loop.call_later(REAP_POLL_SECONDS, again)

    def _unwatch(self, exited_only: bool = False) -> None:
        loop = asyncio.get_running_loop()
        for pid in [pid for pid in self._pidfds if not exited_only or self._children[pid] is not None]:
            pidfd = self._pidfds.pop(pid)
            loop.remove_reader(pidfd)
            os.close(pidfd)

    def _reap(self) -> None:
        """Collect the siblings that exited. Only their pids: never waitpid(-1), which would steal the
        exit status of a subprocess the model's own code is waiting for."""
        for pid, code in self._children.items():
            if code is not None:
                continue
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped, status = pid, 0
            if reaped:
                self._children[pid] = os.waitstatus_to_exitcode(status)
                if not self._stopping:
                    self._failed = True
                    log.error("Model server worker process %d exited (code %d); stopping the instance so that "
                              "it is replaced", pid, self._children[pid])

    async def finish(self, grace: float) -> int:
        """Stop the siblings (SIGTERM, then SIGKILL after ``grace``) and return this process's exit code."""
        if not self.primary:
            return 0
        self._stopping = True
        self._unwatch()
        self._signal_live(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self._live() and time.monotonic() < deadline:
            await asyncio.sleep(REAP_POLL_SECONDS)
            self._reap()
        if self._live():
            log.warning("Model server worker processes %s did not stop within %.0f s; killing them",
                        self._live(), grace)
            self._signal_live(signal.SIGKILL)
            while self._live():
                await asyncio.sleep(REAP_POLL_SECONDS)
                self._reap()
        return 1 if self._failed else 0

    def _live(self) -> list[int]:
        return [pid for pid, code in self._children.items() if code is None]

    def _signal_live(self, signum: int) -> None:
        for pid in self._live():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def fork_serving_processes(listeners: Listeners, count: int, close_in_children: tuple[int, ...] = ()) -> ServingProcess:
    """Fork ``count - 1`` more serving processes; return this process's part (in each of them)."""
    parent = os.getpid()
    children: list[int] = []
    for index in range(1, count):
        pid = os.fork()
        if pid == 0:
            _become_child(parent, close_in_children)
            return _child_part(index, listeners)
        children.append(pid)
    for sock in listeners.shared[1:] + listeners.private[1:]:
        sock.close()
    return ServingProcess(0, listeners, children)


def _become_child(parent: int, close_in_children: tuple[int, ...]) -> None:
    _die_with(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    for fd in close_in_children:
        try:
            os.close(fd)
        except OSError:
            pass


def _child_part(index: int, listeners: Listeners) -> ServingProcess:
    for sockets in (listeners.shared, listeners.private):
        for position, sock in enumerate(sockets):
            if position != index:
                sock.close()
    return ServingProcess(index, listeners, [])


def _die_with(signum: int) -> None:
    """Linux: have the kernel send ``signum`` to this process when its parent dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
