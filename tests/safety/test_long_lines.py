"""A long unit line is vocoded in bounded chunks: bounded peak memory, the same samples."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch
from hostile import SRC

from dgslm.vocoder.checkpoint import load_generator, save_generator
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import CHUNK_FRAMES, UnitGenerator

UNITS = 100_000  # 400 KB of text; 2,000 s of stereo audio
# The child's own high-water mark: VmHWM of its address space. (ru_maxrss would not do: Linux
# carries the forking parent's peak over exec into it, so a large pytest process inflates it.)
PEAK_SCRIPT = """
import re, sys
from dgslm.cli.main import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print("PEAK_MB", int(re.search(r"VmHWM:\\s*(\\d+) kB", status.read()).group(1)) / 1024)
sys.exit(rc)
"""


def _cheap_vocoder(folder):
    """A one-stage unit HiFi-GAN with the released hop (320 samples per unit), cheap to run."""
    cfg = VocoderConfig.from_dict({
        "num_embeddings": 500, "embedding_dim": 16, "model_in_dim": 16, "upsample_initial_channel": 4,
        "upsample_rates": [320], "upsample_kernel_sizes": [320], "resblock_kernel_sizes": [1],
        "resblock_dilation_sizes": [[1]],
    })  # fmt: skip
    torch.manual_seed(0)
    save_generator(folder / "g.pt", UnitGenerator(cfg), folder / "config.json")
    return folder / "g.pt", folder / "config.json"


def test_100k_unit_line_vocodes_under_1_gb(tmp_path):
    vocoder, config = _cheap_vocoder(tmp_path)
    rng = random.Random(0)
    line = " ".join(str(rng.randrange(500)) for _ in range(UNITS))
    codes = tmp_path / "codes.txt"
    codes.write_text(repr({"audio": "long.wav", "unitA": line, "unitB": line}) + "\n")
    out = tmp_path / "out"
    args = ["vocode", "--in-file", str(codes), "--vocoder", str(vocoder), "--vocoder-cfg", str(config),
            "--results-path", str(out), "--cpu"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, *args],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak = float(done.stdout.split("PEAK_MB")[-1])
    assert peak < 1024, f"peak RSS {peak:.0f} MB"
    info = sf.info(out / "long.wav")
    assert (info.frames, info.channels) == (UNITS * 320, 2)


def test_chunked_synthesis_matches_one_piece(reference):
    """The reference vocoder on a line longer than a chunk: chunked (what ``forward`` does)
    and one-piece decoding agree within the int16 step the reference tests allow."""
    generator = load_generator(reference / "vocoder" / "hifigan_vocoder", reference / "vocoder" / "config.json")
    code = torch.randint(0, 500, (2, CHUNK_FRAMES * 2 + 321), generator=torch.Generator().manual_seed(0))
    speakers = torch.tensor([0, 4]) if generator.spkr is not None else None
    with torch.inference_mode():
        frames = generator.conditioning(code, speakers)
        one_piece = generator.decode(frames).squeeze(1)
        chunked = generator(code, speakers)
        small_chunks = generator.decode_chunked(frames, chunk=97).squeeze(1)
    assert chunked.shape == one_piece.shape == (2, code.shape[1] * 320)
    for wave in (chunked, small_chunks):
        diff = np.abs(np.round(wave.numpy() * 32767) - np.round(one_piece.numpy() * 32767)).max()
        assert diff <= 1
