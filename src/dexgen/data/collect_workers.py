"""The workers of a collection (``dexgen.data.collect``) and the parent's side of them: local worker processes
(``multiprocessing``, forkserver start), Ray actors (``CollectWorker``), the ``_Committer`` that writes their
episodes in a fixed order, and the handling of Ctrl-C."""

from __future__ import annotations

import collections
import contextlib
import queue as queue_mod
import signal
import threading
import time

import numpy as np

from dexgen.data.collect_experts import CollectError
from dexgen.data.collect_rollout import Rollout, make_rollouts, step_worker
from dexgen.data.schema import PRIMITIVES

QUEUE_SIZE = 256
"""Finished episodes that may wait in the queue between the workers and the writer."""

FORKSERVER_PRELOAD = ["dexgen.data.collect", "dexgen.sim.env", "dexgen.rl.numpy_actor"]
"""Modules the fork server imports once, so that workers start without importing MuJoCo and the simulator again
(the experts act through numpy, so no worker imports torch)."""

RAY_CHUNK_STEPS = 4
"""Control steps a Ray worker takes per call (every simulation of every wrist steps this many times) before it
returns the episodes that ended."""

RAY_NEEDED = "the ray backend needs Ray: pip install 'dexgen[ray]'"
"""The error when --backend ray is asked for and Ray is not installed."""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:400]


def _worker_entropy(seed: int, index: int, at_open: int) -> list[int]:
    """Entropy of worker ``index``'s ``SeedSequence`` (either backend): the collection's seed, the worker's index and
    the number of episodes in the file when it was opened, so a resumed round draws other episodes than the rounds
    before it."""
    return [seed, index, at_open]


def _start_rollouts(spec: dict, index: int, entropy: list[int]) -> list[Rollout]:
    """A worker's rollouts. The worker's BLAS runs on one thread: the experts' small matrix products gain nothing
    from more, and OpenBLAS threads that spin after each product took a sixth of the core from the physics."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    return make_rollouts(spec, np.random.SeedSequence(entropy), index)


def _send(episodes: queue_mod.Queue, stop, message: tuple) -> bool:
    """Put ``message`` on the queue, waiting while it is full; False (without sending) once the parent is done."""
    while True:
        try:
            episodes.put(message, timeout=0.5)
            return True
        except queue_mod.Full:
            if stop.poll():
                return False


def _worker_main(spec: dict, index: int, entropy: list[int], episodes: queue_mod.Queue, stop) -> None:
    """A worker process: step the rollouts and send each finished episode until it has stepped its share
    (``spec["quota"]`` transitions; then it sends ("done", index, None)), or until ``stop`` (the read end of a pipe
    that only the parent writes to) says the parent is done or gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    try:
        rollouts = _start_rollouts(spec, index, entropy)
        episodes.put(("ready", index, None))
        stepped, finished = 0, False
        while not finished:
            if stop.poll():
                episodes.cancel_join_thread()  # the parent no longer reads: exit without flushing
                return
            ended, stepped, finished = step_worker(rollouts, stepped=stepped, quota=spec["quota"])
            for episode in ended:
                if not _send(episodes, stop, ("episode", index, episode)):
                    episodes.cancel_join_thread()
                    return
        if _send(episodes, stop, ("done", index, None)):
            stop.poll(None)  # wait for the parent to finish
        else:
            episodes.cancel_join_thread()
    except BaseException as e:  # reported to the parent, which raises it
        if not stop.poll():
            episodes.put(("error", index, _one_line(e)))
        else:
            episodes.cancel_join_thread()


class CollectWorker:
    """A worker of the Ray backend, run as an actor (``ray.remote(num_cpus=1)(CollectWorker)``): the rollouts a local
    worker process would step, stepped a chunk of control steps per call. Its methods answer with the messages a
    local worker sends: ("ready", index, None), ("episodes", index, [episode, ...]), ("done", index, [episode, ...])
    once it has stepped its share (``spec["quota"]``), or ("error", index, one line)."""

    def __init__(self, spec: dict, index: int, entropy: list[int]):
        self.spec, self.index, self.entropy = spec, index, entropy
        self.rollouts: list[Rollout] = []
        self.stepped = 0

    def start(self) -> tuple:
        """Build the rollouts (environments and experts)."""
        try:
            self.rollouts = _start_rollouts(self.spec, self.index, self.entropy)
        except Exception as e:
            return ("error", self.index, _one_line(e))
        return ("ready", self.index, None)

    def run(self, steps: int) -> tuple:
        """Step every rollout ``steps`` control steps, in the order a local worker steps them; the episodes that
        ended, in the order they ended."""
        episodes = []
        try:
            for _ in range(steps):
                ended, self.stepped, finished = step_worker(self.rollouts, stepped=self.stepped,
                                                            quota=self.spec["quota"])  # fmt: skip
                episodes += ended
                if finished:
                    return ("done", self.index, episodes)
        except Exception as e:
            return ("error", self.index, _one_line(e))
        return ("episodes", self.index, episodes)


def _context():
    """The multiprocessing context of the workers: forkserver, with torch, MuJoCo and the expert code preloaded."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


def _stop_workers(procs: list, stop_w) -> None:
    stop_w.close()  # every worker sees EOF on its end and returns
    deadline = time.monotonic() + 10.0
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5.0)


class _Committer:
    """The parent's side of either backend: commits episodes with the writer until the file holds ``target``
    transitions, counting the transitions of each primitive and the dropped episodes, and advancing the progress
    bar (``start_bar``).

    Episodes are committed in a fixed order, one from each worker in turn (worker 0's first, worker 1's first, ...,
    worker 0's second, ...; a worker that is done and has none left is passed over), whatever order they arrive
    in: each worker's episodes are a deterministic sequence, so the same seed and worker count give the same file
    however the operating system schedules the workers."""

    def __init__(self, writer, target: int):
        self.writer, self.target, self.bar = writer, target, None
        self.waiting: list[collections.deque] = []
        self.finished: list[bool] = []
        self.turn = 0
        n0 = writer.num_transitions
        self.counts = np.bincount(writer.file["steps"]["primitive_id"][:n0], minlength=len(PRIMITIVES))
        self.drops = int(np.sum(writer.file["steps"]["dropped"][:n0]))

    @property
    def done(self) -> bool:
        return self.writer.num_transitions >= self.target

    def start_bar(self, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.target, initial=self.writer.num_transitions, unit="step", desc="collecting",
                        smoothing=0.1, disable=not enabled)  # fmt: skip

    def set_workers(self, workers: int) -> None:
        """Number of workers whose episodes take turns."""
        self.waiting = [collections.deque() for _ in range(workers)]
        self.finished = [False] * workers
        self.turn = 0

    def add(self, worker: int, episode: tuple[dict[str, np.ndarray], str, str]) -> None:
        """Receive a finished episode of ``worker``; commit every episode whose turn has come."""
        self.waiting[worker].append(episode)
        self._commit_ready()

    def finish(self, worker: int) -> None:
        """``worker`` has sent its last episode."""
        self.finished[worker] = True
        self._commit_ready()

    @property
    def starved(self) -> bool:
        """Every worker is done and nothing waits, yet the target is not reached."""
        return not self.done and all(self.finished) and not any(self.waiting)

    def _commit_ready(self) -> None:
        while not self.done and not self.starved:
            if self.waiting[self.turn]:
                self._commit(self.waiting[self.turn].popleft())
            elif not self.finished[self.turn]:
                return  # this worker's next episode decides the order: wait for it
            self.turn = (self.turn + 1) % len(self.waiting)

    def _commit(self, episode: tuple[dict[str, np.ndarray], str, str]) -> None:
        steps, object_name, wrist = episode
        self.writer.append_episode(steps, object_name=object_name, wrist=wrist)
        n = len(steps["joint_pos"])
        self.counts += np.bincount(steps["primitive_id"], minlength=len(PRIMITIVES))
        self.drops += int(steps["dropped"][-1])
        if self.bar is not None:
            self.bar.update(min(n, self.target - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _ctrl_c_recorded():
    """Within the block, Ctrl-C (SIGINT) is only recorded in the list it yields, for the parent's loop to raise
    as KeyboardInterrupt where it checks (a KeyboardInterrupt raised wherever the signal lands, e.g. in a
    finalizer, can be swallowed and the collection go on). In the main thread only (elsewhere Python delivers
    no signal)."""
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Block SIGINT in this thread while the block starts processes (the fork server, on first use, and the
    workers), which inherit the blocked signal: Ctrl-C in a terminal reaches the whole process group, and the
    parent alone handles it (it stops the workers)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _quota(committer: _Committer, workers: int) -> int:
    """Each worker's share of the transitions still needed: a worker steps this many, then ends its open episodes
    and stops, so a collection steps about as many transitions as it writes."""
    return -(-(committer.target - committer.writer.num_transitions) // workers)


def _import_ray():
    """The ray module, or a one-line CollectError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise CollectError(RAY_NEEDED) from None
    return ray


def _check_workers(procs: list, episodes) -> None:
    """Raise if a worker has exited while the parent still needs it (with its error message if it sent one)."""
    dead = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode is not None]
    if not dead:
        return
    try:
        while True:
            kind, index, payload = episodes.get(timeout=1.0)
            if kind == "error":
                raise CollectError(f"collect worker {index}: {payload}")
    except queue_mod.Empty:
        pass
    i, code = dead[0]
    raise CollectError(f"collect worker {i} exited unexpectedly (exit code {code})")
