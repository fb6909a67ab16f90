"""The README's quickstart runs as written: its commands, taken from README.md between the
``quickstart:begin`` and ``quickstart:end`` markers, run one after the other in an empty folder
on the bundled demo models (nothing downloaded), and make what the README says they make."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
import soundfile as sf
from commands import run_ok

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
GETTING_STARTED = REPO / "docs" / "getting-started.md"  # shows the same commands


def quickstart_commands() -> list[list[str]]:
    """The shell commands of the README's quickstart block (backslash continuations joined)."""
    found = re.search(
        r"<!-- quickstart:begin -->\s*```bash\n(.*?)```\s*<!-- quickstart:end -->", README.read_text(), re.S
    )
    assert found, "README.md has no quickstart block between <!-- quickstart:begin/end --> markers"
    lines = found.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_getting_started_shows_the_readme_quickstart():
    page = GETTING_STARTED.read_text().splitlines()
    for argv in quickstart_commands():
        assert shlex.join(argv) in page, f"docs/getting-started.md lacks the README's `{shlex.join(argv)}`"


@pytest.mark.slow  # end to end (corpus, generation, evaluation): outside the fast set
def test_readme_quickstart_runs_on_the_bundled_demo(tmp_path):
    commands = quickstart_commands()
    # every line is a dgslm command, so that the test runs all of them (nothing skipped)
    assert [argv[:2] for argv in commands] == [["dgslm", "synth-corpus"], ["dgslm", "generate"], ["dgslm", "evaluate"]]
    # an empty model cache and the demo fallback allowed: the README promises the bundled demo
    env = {**os.environ, "DGSLM_HOME": str(tmp_path / "empty-cache"), "OMP_NUM_THREADS": "2"}
    env.pop("DGSLM_NO_DEMO", None)
    outputs = []
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for argv in commands:
            outputs.append(run_ok([sys.executable, "-m", "dgslm", *argv[1:]], env=env, timeout=600))
    finally:
        os.chdir(cwd)

    corpus = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert corpus["config"]["seed"] == 0
    assert "bundled DEMO models" in outputs[1].stderr  # the demo models, with their warning

    # 4 s prompt (199 frames of 20 ms) + 6 s continuation (300 frames), 320 samples per frame
    wave, rate = sf.read(tmp_path / "continued.wav")
    assert rate == 16000 and wave.shape == ((199 + 300) * 320, 2)
    assert (abs(wave).max(axis=0) > 1e-3).all()  # both channels carry sound

    table = outputs[2].stdout
    assert re.search(r"^IPU\s+\d", table, re.M) and re.search(r"^Gap\s+\d", table, re.M)
    assert (tmp_path / "plots" / "000_continued.timeline.png").stat().st_size > 0
