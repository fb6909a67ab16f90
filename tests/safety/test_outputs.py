"""Outputs under hostile names and interruptions: nothing overwritten silently, nothing
half-written, permissions kept, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import soundfile as sf
from hostile import SRC

from dgslm.cli.main import main
from dgslm.fileio import atomic_folder, atomic_path, atomic_write


def _vocode(reference, codes, out):
    folder = reference / "vocoder"
    return main(["vocode", "--in-file", str(codes), "--vocoder", str(folder / "hifigan_vocoder"),
                 "--vocoder-cfg", str(folder / "config.json"), "--results-path", str(out), "--cpu"])  # fmt: skip


def test_vocode_same_stem_twice_keeps_both_and_says_so(reference, tmp_path, caplog):
    codes = tmp_path / "codes.txt"
    codes.write_text(
        "{'audio': 'x/a.wav', 'unitA': '1 2 3', 'unitB': '4 5 6'}\n"
        "{'audio': 'y/a.flac', 'unitA': '7 8 9 10', 'unitB': '4 5 6 7'}\n"
    )
    assert _vocode(reference, codes, tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-2.wav", "a.wav"]
    assert sf.info(tmp_path / "out" / "a-2.wav").frames == 4 * 320
    assert "a-2.wav" in caplog.text


@pytest.mark.parametrize("name", ["/", "a\\x00b.wav", ".."])
def test_vocode_unusable_name_is_one_line_error(reference, tmp_path, capsys, name):
    codes = tmp_path / "codes.txt"
    codes.write_text(
        f"{{'audio': 'ok.wav', 'unitA': '1 2', 'unitB': '3 4'}}\n{{'audio': '{name}', 'unitA': '1', 'unitB': '2'}}\n"
    )
    assert _vocode(reference, codes, tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert f"{codes}:2" in err and "no usable file name" in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_vocode_long_names_fit(reference, tmp_path):
    codes = tmp_path / "codes.txt"
    stem = "n" * 251  # with .wav: the longest file name
    codes.write_text(f"{{'audio': '{stem}.flac', 'unitA': '1 2', 'unitB': '3 4'}}\n")
    assert _vocode(reference, codes, tmp_path / "out") == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == [stem + ".wav"]


def test_rewrite_keeps_permissions(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("old")
    path.chmod(0o600)
    with atomic_write(path) as handle:
        handle.write("new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o600


def test_new_file_gets_umask_mode_without_toggling_it(tmp_path):
    calls = []
    real_umask = os.umask
    os.umask = lambda mask: calls.append(mask) or real_umask(mask)
    try:
        with atomic_write(tmp_path / "new.txt") as handle:
            handle.write("x")
        with atomic_folder(tmp_path / "dir") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask = real_umask
    assert calls == []
    mask = real_umask(0o22)
    real_umask(mask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "dir").stat().st_mode & 0o777 == 0o777 & ~mask


def test_symlinked_destination_is_written_through(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "model.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to(real / "model.txt")
    (tmp_path / "linkdir").symlink_to(real)
    with atomic_write(tmp_path / "link.txt") as handle:
        handle.write("new")
    assert (tmp_path / "link.txt").is_symlink() and (real / "model.txt").read_text() == "new"
    with atomic_folder(tmp_path / "linkdir") as tmp:
        (tmp / "weights").write_text("w")
    assert (tmp_path / "linkdir").is_symlink() and sorted(os.listdir(real)) == ["weights"]


def test_folder_swap_never_loses_both(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "old").write_text("old")
    real_rename = os.rename

    def crash_on_second(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("simulated crash")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_second)
    with pytest.raises(OSError), atomic_folder(folder) as tmp:
        (tmp / "new").write_text("new")
    monkeypatch.undo()
    assert (folder / "old").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_threads_write_at_once(tmp_path):
    def write(i):
        for j in range(20):
            with atomic_write(tmp_path / f"{i}.txt") as handle:
                handle.write(f"{i}-{j}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.txt" for i in range(8))


def test_sigterm_removes_temporary_files(tmp_path):
    script = (
        "import sys, time\nfrom dgslm.fileio import atomic_path, atomic_folder\n"
        "with atomic_path(sys.argv[1] + '/out.bin') as tmp, atomic_folder(sys.argv[1] + '/dir') as d:\n"
        "    tmp.write_bytes(b'half'); (d / 'f').write_text('x'); print('ready', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env={"PYTHONPATH": str(SRC)},
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    assert len(list(tmp_path.iterdir())) == 2
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_temporary_name_is_short(tmp_path):
    with atomic_path(tmp_path / ("x" * 250 + ".pt")) as tmp:
        assert len(tmp.name) < 100
        tmp.write_bytes(b"ok")
    assert (tmp_path / ("x" * 250 + ".pt")).read_bytes() == b"ok"


def test_vocode_line_longer_than_max_units_is_refused_up_front(reference, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    codes.write_text(
        "{'audio': 'a', 'unitA': '1 2 3', 'unitB': '4 5 6'}\n{'audio': 'b', 'unitA': '1 2 3 4 5', 'unitB': '1'}\n"
    )
    folder = reference / "vocoder"
    rc = main(["vocode", "--in-file", str(codes), "--vocoder", str(folder / "hifigan_vocoder"), "--vocoder-cfg",
               str(folder / "config.json"), "--results-path", str(tmp_path / "out"), "--max-units", "4"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 1 and f"{codes}:2: a line of 5 units is longer than --max-units 4" in err
    assert not (tmp_path / "out").exists()
