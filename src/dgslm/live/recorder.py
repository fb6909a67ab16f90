"""``dgslm serve --record-dir``: one live session saved as a stereo wav plus a JSON of its statistics.

The wav is streamed to a hidden temporary file beside its final name while the session runs
(constant memory however long it lasts) and renamed into place when the session ends; the JSON
is written atomically after it. A session with no frames leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from dgslm.fileio import atomic_path, atomic_write


class SessionRecorder:
    """Stereo 16-bit wav of a session: the person on ``user_channel``, the model on the other."""

    def __init__(self, folder: Path, name: str, sample_rate: int, user_channel: int):
        import soundfile as sf

        self.wav_path = Path(folder) / f"{name}.wav"
        self.json_path = self.wav_path.with_suffix(".json")
        self.user_channel = user_channel
        self.frames = 0
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.wav_path))
        self._file = sf.SoundFile(tmp, "w", samplerate=sample_rate, channels=2, subtype="PCM_16", format="WAV")

    def write(self, person: np.ndarray, model: np.ndarray) -> None:
        """Append one frame: the person's int16 samples and the model's int16 samples."""
        frame = np.empty((len(person), 2), dtype=np.int16)
        frame[:, self.user_channel] = person
        frame[:, 1 - self.user_channel] = model
        self._file.write(frame)
        self.frames += 1

    def finish(self, stats: dict[str, Any]) -> Path | None:
        """Close the wav, move it into place and write the statistics; None if nothing was recorded."""
        self._file.close()
        if self.frames == 0:
            self._stack.__exit__(RuntimeError, RuntimeError("empty session"), None)  # removes the temporary file
            return None
        self._stack.close()
        with atomic_write(self.json_path) as handle:
            json.dump(stats, handle, indent=2)
            handle.write("\n")
        return self.wav_path
