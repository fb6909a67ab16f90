"""DuplexSession end to end: the live engine against the offline pipeline on the same audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.errors import DgslmError
from dgslm.live import DuplexSession
from dgslm.lm.generate import GenerationConfig, generate_batch, make_generator
from dgslm.pipeline.dialogue import DialoguePipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def demo() -> DialoguePipeline:
    return DialoguePipeline.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def person(reference) -> np.ndarray:
    """3 s of speech then 3 s of silence, a whole number of frames."""
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    audio = np.concatenate([wave[:48000, 0], np.zeros(48000, dtype=np.float32)])
    return audio[: len(audio) // 320 * 320]


def session(demo: DialoguePipeline, **kwargs) -> DuplexSession:
    options = dict(config=GenerationConfig(), seed=5, user_channel=1) | kwargs
    return DuplexSession(demo.encoder, demo.lm, demo.vocoder, **options)


def play(s: DuplexSession, audio: np.ndarray) -> np.ndarray:
    return np.concatenate([s.step(audio[i : i + 320]) for i in range(0, len(audio), 320)])


def test_session_is_offline_encode_generate_vocode(demo, person):
    """With exact windows (6 frames of unit look-ahead, a vocoder window over its receptive field)
    the live session's audio is, frame for frame ``delay`` frames later, the offline pipeline's:
    the person's units encoded from the whole file, the model's channel sampled by generate_batch
    with the person's channel forced (same seed), then vocoded at once."""
    s = session(demo, unit_lookahead=6, vocoder_context=24, vocoder_lookahead=24)
    live = play(s, person)
    assert s.delay_frames == 30 and s.algorithmic_latency_ms == 31 * 20
    units = demo.encoder.units(torch.from_numpy(person)[None])[0]
    frames = len(units) - 12  # the last frames' offline smoothing sees the end of the file
    dictionary = demo.lm.dictionary
    prompt = torch.full((1, 2, frames), dictionary.unk(), dtype=torch.long)
    prompt[0, 1] = torch.tensor([dictionary.index(str(int(u))) for u in units[:frames]])
    config = GenerationConfig(max_len_b=frames, beam=1, units_only=True)
    ((hypo,),) = generate_batch(demo.lm.model, prompt, config, dictionary, make_generator(5, demo.lm.device))
    model_units = [int(dictionary[int(i)]) for i in hypo.tokens[0]]
    assert s.model_units[:frames] == model_units
    assert s.user_units[:frames] == units[:frames].tolist()
    offline = demo.vocoder.code2wav(model_units).numpy()
    n = (frames - 24) * 320  # the vocoder's look-ahead of the last compared frame is still exact
    shifted = live[s.delay_frames * 320 :][:n]
    assert np.abs(shifted - offline[:n]).max() < 1e-5
    assert np.abs(live[: s.delay_frames * 320]).max() == 0  # silence before the first frame


def test_session_is_deterministic_and_reset_replays(demo, person):
    s = session(demo)
    first = play(s, person)
    assert s.algorithmic_latency_ms == 100.0  # demo defaults: 2 + 2 frames of look-ahead + one frame
    stats = s.stats()
    assert stats["frames"] == len(person) // 320 and stats["skipped_frames"] == 0
    assert set(stats) >= {"frames", "algorithmic_latency_ms", "compute_ms_p50", "compute_ms_p95", "compute_ms_max",
                          "late_frames", "real_time_factor"}  # fmt: skip
    s.reset()
    assert np.array_equal(play(s, person), first)
    assert not np.array_equal(play(session(demo, seed=6), person), first)
    rms = [float(np.sqrt(np.mean(first[i : i + 16000] ** 2))) for i in range(0, len(first), 16000)]
    assert min(rms[3:]) > 2 * max(rms[:3])  # the demo waits while the person talks, then speaks


def test_sessions_on_shared_models_are_independent(demo, person):
    """new_session shares the models but no state: two sessions stepped in turns give what each
    gives alone."""
    first = session(demo)
    alone = play(first.new_session(), person[: 100 * 320])
    other_alone = play(first.new_session(seed=9, user_channel=0), person[: 100 * 320])
    a, b = first.new_session(), first.new_session(seed=9, user_channel=0)
    frames = range(0, 100 * 320, 320)
    together = [(a.step(person[i : i + 320]), b.step(person[i : i + 320])) for i in frames]
    assert np.array_equal(np.concatenate([x for x, _ in together]), alone)
    assert np.array_equal(np.concatenate([y for _, y in together]), other_alone)


def test_catch_up_skips_frames_and_feeds_them_later(demo, person):
    """Behind by more than a frame, a catch-up session holds the model's unit, returns silence and
    runs no model; the next full frame feeds every skipped position: nothing drifts."""
    s = session(demo, catch_up=True)
    ticks = iter(np.arange(0, 10, 0.001))  # every frame takes 1 ms on this clock
    s.clock = lambda: float(next(ticks))
    frames = [person[i : i + 320] for i in range(0, 40 * 320, 320)]
    for frame in frames[:20]:
        s.step(frame)
    fed = s.dialogue.cache.length
    s.backlog_ms = 40.0  # as if the frames before had taken 40 ms too long in all
    held = s.model_units[-1]
    outs = [s.step(frame) for frame in frames[20:22]]  # backlog 40 -> 21 -> 2 (each frame: 1 ms)
    assert s.skipped == 2 and not any(out.any() for out in outs) and s.dialogue.cache.length == fed
    assert s.model_units[-2:] == [held, held] and s.backlog_ms == pytest.approx(2.0)
    s.step(frames[22])
    assert s.skipped == 2 and s.dialogue.cache.length == fed + 3  # the two skipped frames and this one
    for frame in frames[23:]:
        s.step(frame)
    assert s.dialogue.cache.length == fed + len(frames) - 20
    assert len(s.model_units) == s.dialogue.frame == len(s.user_units) + 1
    assert s.stats()["skipped_frames"] == s.skipped


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros(160, dtype=np.float32), "320 samples"),
        (np.zeros((320, 2), dtype=np.float32), "320 samples"),
        (np.full(320, np.nan, dtype=np.float32), "finite float"),
        (np.zeros(320, dtype=np.int16), "finite float"),
    ],
)
def test_bad_frames_are_one_line_errors(demo, frame, message):
    s = session(demo)
    with pytest.raises(DgslmError, match=message):
        s.step(frame)
    assert s.step(np.zeros(320, dtype=np.float32)).shape == (320,)  # the session goes on


def test_from_pretrained_loads_the_decoding_dtype():
    from dgslm.lm.precision import decoding_dtype

    s = DuplexSession.from_pretrained(seed=1, dtype="int8")
    assert decoding_dtype(s.dialogue.lm.model) == "int8"
    out = np.concatenate([s.step(np.zeros(320, dtype=np.float32)) for _ in range(60)])
    assert out.shape == (60 * 320,) and np.isfinite(out).all()
