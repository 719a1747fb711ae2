"""A Spark standalone cluster (one master, N workers) on 127.0.0.1, for tests and one-machine users.

Why it exists: `refinery submit` must be tested against a real cluster manager, and a
user who has outgrown `local[*]` on one large machine gets the same submission path
(separate executor JVMs, a web UI, kill endpoints) without installing anything:
pyspark's wheel ships `spark-class`, which starts the master and workers.

Processes are started in their own sessions, so stopping a daemon kills its process
group (the worker together with its executor JVMs and Python workers) by pid; nothing
is ever killed by name. The cluster's pids and ports are saved to `cluster.json` in
its state folder so that `refinery cluster stop` works from another shell.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.framework.run_processes import (
    group_alive,
    group_members,
    process_facts,
    stop_group,
    wait_group_gone,
)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"
STATE_FILE = "cluster.json"


class ClusterError(RuntimeError):
    """A daemon did not start or answer; the message names its log file."""


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (or $SPARK_HOME when set)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


@dataclass
class Daemon:
    """One master or worker process: its pid (= process group id), ports and log file."""

    role: str
    pid: int
    web_port: int
    log: str
    port: int | None = None

    def runs_here(self) -> bool:
        """Whether its process group still runs this daemon: cluster.json outlives the processes it
        names (a reboot, a kill), and their numbers may be other programs' by now, never signalled."""
        java_class = MASTER_CLASS if self.role == "master" else WORKER_CLASS
        members = (process_facts(pid) for pid in group_members(self.pid))
        return any(
            java_class in found.args and str(self.web_port) in found.args for found in members if found
        )


@dataclass
class LocalCluster:
    """A standalone master and workers on loopback; `start()` returns when every worker is registered."""

    state_dir: Path
    workers: int = 1
    worker_cores: int = 1
    worker_memory: str = "1g"
    master: Daemon | None = None
    worker_daemons: list[Daemon] = field(default_factory=list)

    # ------------------------------------------------------------------ urls
    @property
    def url(self) -> str:
        """The master URL to pass to `refinery submit --master`."""
        assert self.master is not None and self.master.port is not None
        return f"spark://{HOST}:{self.master.port}"

    @property
    def web_url(self) -> str:
        assert self.master is not None
        return f"http://{HOST}:{self.master.web_port}"

    # ------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Start the master, then the workers; stop whatever started if anything fails."""
        self.state_dir = Path(self.state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            port, web = free_port(), free_port()
            self.master = self._spawn(
                "master", [MASTER_CLASS, "--host", HOST, "--port", str(port), "--webui-port", str(web)], web
            )
            self.master.port = port
            # Workers retry until the master listens: starting them together saves a JVM start-up.
            for _ in range(self.workers):
                self._spawn_worker()
            self.save()
            self._wait(
                lambda: self.alive_workers() >= self.workers, timeout, [self.master, *self.worker_daemons]
            )
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, timeout: float = 120.0) -> Daemon:
        """Start one more worker (also how tests replace a worker they killed)."""
        daemon = self._spawn_worker()
        self.save()
        address = f"http://{HOST}:{daemon.web_port}"
        self._wait(lambda: address in self.alive_worker_uis(), timeout, [daemon])
        return daemon

    def _spawn_worker(self) -> Daemon:
        index = len(self.worker_daemons)
        web = free_port()
        work_dir = self.state_dir / f"worker-{index}"
        work_dir.mkdir(parents=True, exist_ok=True)
        daemon = self._spawn(
            f"worker-{index}",
            [
                WORKER_CLASS,
                self.url,
                "--host",
                HOST,
                "--webui-port",
                str(web),
                "--cores",
                str(self.worker_cores),
                "--memory",
                self.worker_memory,
                "--work-dir",
                str(work_dir),
            ],
            web,
        )
        self.worker_daemons.append(daemon)
        return daemon

    def kill_worker(self, daemon: Daemon) -> None:
        """SIGKILL a worker and its executors at once, as a machine failure would."""
        if daemon.runs_here():
            os.killpg(daemon.pid, signal.SIGKILL)
            wait_group_gone(daemon.pid, 5.0)

    def stop(self) -> list[str]:
        """Stop workers, then the master, by their process groups; safe to call twice. Returns the
        daemons that no longer ran (their pids were left alone)."""
        gone = []
        for daemon in [*self.worker_daemons, *([self.master] if self.master else [])]:
            if daemon.runs_here():
                stop_group(daemon.pid, 10.0, daemon.runs_here)
            else:
                gone.append(f"{daemon.role} (pid {daemon.pid}) was no longer running; nothing was signalled")
        state = self.state_dir / STATE_FILE
        state.unlink(missing_ok=True)
        return gone

    # ---------------------------------------------------------------- status
    def master_state(self) -> dict[str, Any] | None:
        """The master's JSON status page (workers, active and completed apps), or None if it does not answer."""
        try:
            return http_json(f"{self.web_url}/json/")
        except OSError:
            return None

    def alive_worker_uis(self) -> list[str]:
        """Web UI addresses of the workers the master counts as alive (they identify our daemons)."""
        state = self.master_state() or {}
        return [w.get("webuiaddress", "") for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def alive_workers(self) -> int:
        return len(self.alive_worker_uis())

    # ----------------------------------------------------------- persistence
    def save(self) -> None:
        payload = {
            "workers": self.workers,
            "worker_cores": self.worker_cores,
            "worker_memory": self.worker_memory,
            "master": asdict(self.master) if self.master else None,
            "worker_daemons": [asdict(d) for d in self.worker_daemons],
        }
        tmp = self.state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(payload, indent=2))
        os.replace(tmp, self.state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> LocalCluster:
        path = Path(state_dir) / STATE_FILE
        if not path.is_file():
            raise ClusterError(
                f"no cluster recorded in {state_dir} (start one with `refinery cluster start`)"
            )
        try:
            data = json.loads(path.read_text())
            return cls(
                state_dir=Path(state_dir),
                workers=data["workers"],
                worker_cores=data["worker_cores"],
                worker_memory=data["worker_memory"],
                master=Daemon(**data["master"]) if data["master"] else None,
                worker_daemons=[Daemon(**d) for d in data["worker_daemons"]],
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ClusterError(
                f"{path} is not a cluster record ({type(exc).__name__}: {exc}); stop the daemons "
                "it named by hand if they still run, then delete it"
            ) from exc

    # ------------------------------------------------------------- internals
    def _spawn(self, role: str, args: list[str], web_port: int) -> Daemon:
        log = self.state_dir / f"{role}.log"
        env = {
            **os.environ,
            "SPARK_LOCAL_IP": HOST,
            "SPARK_HOME": str(spark_home()),
            "SPARK_NO_DAEMONIZE": "1",
        }
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        return Daemon(role=role, pid=proc.pid, web_port=web_port, log=str(log))

    def _wait(self, ready: Any, timeout: float, daemons: list[Daemon]) -> None:
        """Poll `ready` until true; fail early, with the daemon's log, if one of `daemons` exits."""
        deadline = time.monotonic() + timeout
        daemon = daemons[0]
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [d for d in daemons if not group_alive(d.pid)]
            if dead:
                daemon = dead[0]
                break
            time.sleep(0.5)
        tail = Path(daemon.log).read_text(errors="replace")[-2000:] if Path(daemon.log).exists() else ""
        raise ClusterError(f"Spark {daemon.role} did not come up; its log is {daemon.log}:\n{tail}")
