"""Whether a pid that a run record (or its submit.json) names is that run's process.

A run record is data in a lake: it can be edited, copied from another lake, or outlive its
process, whose pid the system then hands to another. `refinery cancel` signals a pid and
`refinery status` trusts one as a run's driver, so both first compare what runs under it now
with what the record says ran there:
  - its start time: a run's driver began before the run's `started_at` (it writes that itself);
    a process that began later reused the pid after the driver exited;
  - its command line: a submission names the run (`--run-id ID`, the run's exit-file path), a
    local `refinery run` names the run id or the spec file.
A process that fails either is not signalled. Signals go through a pidfd where the OS has one (a
process group's members one by one), so a pid reused between the check and the signal is never hit.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pipelines.framework.runrecord import RunRecord

# How much later than the record's start time a process may seem to have started and still be the
# run's driver: /proc gives boot time in whole seconds, `ps` gives start times in whole seconds.
START_SLACK_SECONDS = 2.0


class ProcessFacts(NamedTuple):
    """What runs under a pid on this host: enough to tell whether it is a run's driver."""

    start: float | None  # seconds since the epoch; None when it could not be read
    args: list[str]  # its command line (empty for a kernel thread)
    group: int  # its process group


def process_facts(pid: int) -> ProcessFacts | None:
    """The live process `pid` on this host, or None when there is none (exited, or a zombie).

    A pid in a run record is only a number that some process once had; before one is trusted or
    signalled, what runs under it now is compared with what the record says ran there."""
    if pid <= 0:
        return None
    if Path("/proc/self/stat").is_file():
        return _proc_facts(pid)
    return _ps_facts(pid)


def _proc_facts(pid: int) -> ProcessFacts | None:
    """Linux: /proc/<pid>/stat (state, group, start in clock ticks since boot) and its cmdline."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        args = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    if fields[0] in ("Z", "X"):
        return None
    start = None
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            start = int(line.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return ProcessFacts(start, [a.decode(errors="replace") for a in args.split(b"\0") if a], int(fields[2]))


def _ps_facts(pid: int) -> ProcessFacts | None:
    """Elsewhere (macOS, BSD): `ps`, whose command line is split at blanks (run ids hold none)."""
    shown = subprocess.run(
        ["ps", "-ww", "-o", "stat=,pgid=,lstart=,args=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout.split()
    if len(shown) < 7 or shown[0].startswith("Z"):
        return None
    try:
        start: float | None = time.mktime(time.strptime(" ".join(shown[2:7]), "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        start = None
    return ProcessFacts(start, shown[7:], int(shown[1]))


def started_after(record: RunRecord, process: ProcessFacts) -> bool:
    """Whether `process` began after the run started, so cannot be its driver (a reused pid).

    The driver writes `started_at` itself (a local run even creates the record), so it began
    before; an unknown or unreadable start time proves nothing and is not held against it."""
    try:
        started = datetime.fromisoformat(record.started_at or record.created_at).timestamp()
    except ValueError:
        return False
    return process.start is not None and process.start > started + START_SLACK_SECONDS


def group_members(pgid: int) -> list[int]:
    """The live processes of a group, leader first (the leader may be gone while its children run)."""
    if not Path("/proc/self/stat").is_file():
        shown = subprocess.run(["ps", "-A", "-o", "pid=,pgid="], capture_output=True, text=True, check=False)
        pairs = [line.split() for line in shown.stdout.splitlines() if len(line.split()) == 2]
        return sorted({int(pid) for pid, group in pairs if int(group) == pgid}, key=lambda p: p != pgid)
    members = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split() if stat else []
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return sorted(members, key=lambda p: p != pgid)


class ProcessCheck(NamedTuple):
    """What runs under the pid a run names. alive: True, this run's process runs on this host; False,
    none does; None, one runs that cannot be signalled from here (another host, or a process not
    recognisably the run's, which may still be it). note: what was found instead, for the user."""

    alive: bool | None
    note: str | None = None


def group_check(record: RunRecord, pgid: int, exit_file: str) -> ProcessCheck:
    """Whether process group `pgid` (alive, on this host) runs this run's submission.

    `refinery submit` starts it as `sh -c WRAPPER <exit_file> spark-submit ... --run-id ID`, and
    spark-submit's JVM and the driver carry `--run-id ID` too, so a process of the group names
    the run; a group with none is an edited submit.json or a reused pid."""
    if (elsewhere := _copied(record)) is not None:
        return elsewhere
    members = [found for pid in group_members(pgid) if (found := process_facts(pid)) is not None]
    if not members:  # only zombies are left, whose parent has not collected them: the group is gone
        return ProcessCheck(False)
    if any(names_run(found.args, record.run_id, exit_file) for found in members):
        return ProcessCheck(True)
    shown = program(members[0].args) if members else "unreadable"
    return ProcessCheck(
        False,
        f"process group {pgid} on this host is not this run's spark-submit (it runs: {shown}); "
        "it was not signalled",
    )


def driver_check(record: RunRecord) -> ProcessCheck:
    """Whether the pid run.json names runs this run's driver (a local `refinery run`).

    It must have started before the run did and name the run on its command line: its id, or its
    spec file on a Python command line."""
    if record.pid is None:
        return ProcessCheck(False)
    if (elsewhere := _copied(record)) is not None:
        return elsewhere
    found = process_facts(record.pid)
    if found is None:
        return ProcessCheck(False)
    shown = program(found.args)
    if started_after(record, found):
        return ProcessCheck(
            False,
            f"pid {record.pid} is now another process, started after the run (it runs: {shown}): "
            "the run's driver is gone; it was not signalled",
        )
    if names_run(found.args, record.run_id) or runs_spec(found.args, record.spec_path):
        return ProcessCheck(True)
    return ProcessCheck(
        None,
        f"process {record.pid} on this host does not look like this run's driver (it runs: {shown}); "
        "it was not signalled. If the run still runs, it stops before its next stage (cancel.requested)",
    )


def _copied(record: RunRecord) -> ProcessCheck | None:
    """A check that fails, for a record read from another lake than the one it names (see
    `RunRecord.copied_from`): the process it names is that lake's run, never this copy's."""
    origin = record.copied_from()
    if origin is None:
        return None
    return ProcessCheck(
        False,
        f"this run record was copied from the lake {origin}: the process it names runs for that lake "
        "and was not signalled",
    )


def program(args: list[str]) -> str:
    """The program another process runs, by name only: its arguments may hold that process's secrets,
    and these messages reach the terminal and the run record."""
    return Path(args[0]).name if args else "no command line"


def names_run(args: list[str], run_id: str, exit_file: str | None = None) -> bool:
    """Whether a command line names the run: its id as an argument (or `--opt=ID`), or its exit file."""
    return any(arg in (run_id, exit_file) or arg.endswith(f"={run_id}") for arg in args)


def runs_spec(args: list[str], spec_path: str | None) -> bool:
    """Whether a command line is Python (or `refinery`) given the run's spec file."""
    program = Path(args[0]).name if args else ""
    python = program.startswith("python") or program == "refinery"
    return python and spec_path is not None and any(Path(arg) == Path(spec_path) for arg in args[1:])


def stop_pid(pid: int, grace: float, still_ours: Callable[[], bool]) -> None:
    """SIGTERM the process if `still_ours()`, then SIGKILL it after `grace` seconds.

    Where the OS has pidfds (Linux), the process is held by one before it is checked and signalled,
    so a pid that exits and is reused meanwhile never gets a signal meant for the run's driver."""
    try:
        handle: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    try:
        if not still_ours():
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                if handle is not None:
                    signal.pidfd_send_signal(handle, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                return
            if _exits(pid, handle, wait):
                return
    finally:
        if handle is not None:
            os.close(handle)


def stop_group(pgid: int, grace: float, still_ours: Callable[[], bool]) -> None:
    """SIGTERM every process of group `pgid` if `still_ours()`, then SIGKILL what is left after `grace`.

    `killpg` would signal whatever group holds the number when the signal is sent: if the run's
    group ended after the check and a new process made itself leader of a group under the reused
    number, it would be hit. So each member is held by a pidfd, its group read again through the
    held process, and signalled through the pidfd; each round lists the members again, catching
    children forked meanwhile. Without pidfds (macOS, BSD) `killpg` is all there is."""
    if not still_ours():
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _signal_group(pgid, sig):
            return
        if wait_group_gone(pgid, wait):
            return


def wait_group_gone(pgid: int, wait: float) -> bool:
    """Whether the whole group is gone within `wait` seconds."""
    deadline = time.monotonic() + wait
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not group_alive(pgid)


def group_alive(pgid: int) -> bool:
    """Whether a process of the group lives, zombies included: one holds its group's number until its
    parent (or init) collects it. The leader, where it is our own child, is collected first."""
    if pgid <= 1:  # 0 is the caller's own group, 1 init's: never a run's or a daemon's
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal the live members of the group; False when none is left."""
    if not hasattr(os, "pidfd_open"):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return False
        return True
    members = group_members(pgid)
    for pid in reversed(members):  # the leader last: a shell reaps the children it outlives
        try:
            handle = os.pidfd_open(pid)
        except OSError:  # exited since it was listed
            continue
        try:
            held = process_facts(pid)  # read after the pidfd holds it: the pid cannot change hands now
            if held is not None and held.group == pgid:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(handle, sig)
        finally:
            os.close(handle)
    return bool(members)


def _exits(pid: int, handle: int | None, wait: float) -> bool:
    """Whether the process ends within `wait` seconds (our own child is reaped, not left a zombie)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if handle is not None:
            if select.select([handle], [], [], 0.2)[0]:
                return True
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
