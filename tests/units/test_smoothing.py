import torch

from dgslm.units.smoothing import SilenceSmoothing, smooth_silence

S = 0  # the silence unit


def seq(text: str) -> torch.Tensor:
    """'_' = silence, a digit = that speech unit."""
    return torch.tensor([S if c == "_" else int(c) for c in text])


def test_short_closures_take_the_unit_before_and_short_bursts_fall_silent():
    units = seq("__12_3__4____5_____6677__")
    smoothed = smooth_silence(units, SilenceSmoothing(S, min_silence=3, min_speech=2))
    # '_' (1) and '__' (2) inside speech are bridged; '____' (4) stays a pause;
    # the burst '5' (1 frame) between pauses falls silent; '6677' stays; edge runs are kept
    assert torch.equal(smoothed, seq("__1223334__________6677__"))


def test_off_and_edges_unchanged():
    units = seq("_1_2_")
    assert torch.equal(smooth_silence(units, SilenceSmoothing(S)), units)
    assert torch.equal(smooth_silence(units, SilenceSmoothing(S, 5, 0)), seq("_112_"))
    assert smooth_silence(seq(""), SilenceSmoothing(S, 5, 5)).numel() == 0
