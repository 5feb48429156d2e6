"""One writer per run folder: of processes racing for a folder exactly one gets it; while a run is live, a second
``train`` (plain, ``--resume``, ``--overwrite``), ``reproduce`` on the same row and a torchrun launch are refused
with one line naming the holder's PID and host, and the folder's files stay byte for byte; once the holder is
killed with SIGKILL its lock is taken over and the run resumed."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from art_he.cli import main
from art_he.errors import UserError
from art_he.runlock import LOCK_FILE, RunLock
from tests.conftest import one_line_error
from tests.test_data import _write_cifar
from tests.test_ddp import free_port

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ART_HE_DIST_TIMEOUT": "60"}


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name != LOCK_FILE}


def test_a_lock_names_its_holder_and_is_released(tmp_path):
    folder = tmp_path / "run"
    with RunLock(folder):
        record = (folder / LOCK_FILE).read_text()
        assert f'"pid": {os.getpid()}' in record and socket.gethostname() in record
        with pytest.raises(UserError, match=rf"{folder} is in use by another art-he run \(PID {os.getpid()} on host "
                                            rf"{socket.gethostname()}, since \d{{4}}-"):
            RunLock(folder).acquire()  # another open file: refused even in the same process
    assert not folder.exists()  # created for the lock, nothing written: removed again
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file, not a run folder"):
        RunLock(tmp_path / "file").acquire()


def test_a_file_system_without_locks_gives_a_warning_not_an_error(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("art_he.runlock.fcntl.flock", no_locks)
    with pytest.warns(UserWarning, match=r"has no file locks \(No locks available\): nothing stops a second"):
        lock = RunLock(tmp_path / "run").acquire()
    lock.release()


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from art_he.errors import UserError
    from art_he.runlock import RunLock

    folder, go = Path(sys.argv[1]), Path(sys.argv[2])
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.01)
    try:
        with RunLock(folder):
            print("GOT", flush=True)
            time.sleep(3)
    except UserError as error:
        print("REFUSED", error, flush=True)
    """
)


def test_of_processes_racing_for_a_folder_exactly_one_gets_it(tmp_path):
    script, go = tmp_path / "racer.py", tmp_path / "go"
    script.write_text(RACER)
    racers = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), str(go)], env=ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    assert [racer.stdout.readline().strip() for racer in racers] == ["READY"] * 3  # all imported, all waiting
    go.touch()
    outputs = [racer.communicate(timeout=120) for racer in racers]
    lines = [out.strip() for out, _ in outputs]
    winners = [racer.pid for racer, line in zip(racers, lines) if line == "GOT"]
    assert len(winners) == 1, outputs
    refused = [line for line in lines if line != "GOT"]
    assert all(line.startswith("REFUSED") and f"PID {winners[0]} on host {socket.gethostname()}" in line
               for line in refused), lines


HOLDER = textwrap.dedent(
    """
    import sys, time
    from art_he.cli import main
    from art_he.trainers.watch import BatchWatch

    push, seen = BatchWatch.push, [0]

    def holding(self, epoch, batch, loss):
        seen[0] += 1
        if seen[0] == 3:  # epoch 2, batch 1: the row's folder holds epoch 1's checkpoint
            print("HOLDING", flush=True)
            while True:
                time.sleep(1)
        return push(self, epoch, batch, loss)

    BatchWatch.push = holding
    sys.exit(main(sys.argv[1:]))
    """
)
TINY = ["--no-verify-data", "--subset", "32", "--epochs", "2", "--model", "wrn-10-1", "--batch-size", "16", "--quiet"]


def test_a_live_run_refuses_every_second_writer_and_a_killed_ones_lock_is_taken_over(tmp_path, capsys):
    data, out = tmp_path / "cifar", tmp_path / "out"
    _write_cifar(data, n=16)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    reproduce = ["reproduce", "table3", "--out", str(out), "--data-dir", str(data), "--n", "8", "--max-steps", "1",
                 *TINY]
    holder = subprocess.Popen([sys.executable, str(script), *reproduce], env=ENV, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        line = ""
        while "HOLDING" not in line and holder.poll() is None:
            line = holder.stdout.readline()
        assert "HOLDING" in line, holder.stderr.read()[-3000:]
        row = out / "table3-fast-plain"
        before = checksums(row)
        assert set(before) == {"checkpoint.pt", "config.json", "metrics.jsonl"}
        busy = f"{row} is in use by another art-he run (PID {holder.pid} on host {socket.gethostname()}, since "
        train = ["train", "--recipe", "table3-fast-plain", "--data-dir", str(data), *TINY, "--out", str(row)]
        for extra in ([], ["--resume"], ["--overwrite"]):
            assert main([*train, *extra]) == 2
            one_line_error(capsys, busy)
            assert checksums(row) == before
        assert main(reproduce) == 2  # the same row: row_state says "resume", and the lock refuses it
        one_line_error(capsys, busy)
        assert checksums(row) == before

        torchrun = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
             str(free_port()), "-m", "art_he", *train, "--resume"], env=ENV, capture_output=True, text=True,
            timeout=300)
        assert torchrun.returncode != 0
        # both ranks, promptly (the timeout is 60 s; a hang would fail the assert); the two ranks write to one
        # stderr at once, so their lines may interleave: count the messages, not the lines
        assert torchrun.stderr.count(f"art-he train: error: {busy}") == 2, torchrun.stderr[-3000:]
        assert checksums(row) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)
    assert holder.returncode == -signal.SIGKILL and (row / LOCK_FILE).is_file()  # the dead holder's record stays

    with pytest.warns(UserWarning, match=rf"took over the lock of {row} from PID {holder.pid} on host .* which ended "
                                         r"without releasing it \(killed\?\)"):
        assert main([*train, "--resume"]) == 0
    assert (row / "model.safetensors").is_file() and not (row / LOCK_FILE).exists()
    assert checksums(row)["checkpoint.pt"] != before["checkpoint.pt"]  # epoch 2 was trained and saved
