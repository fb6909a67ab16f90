"""One step of SpeechDLM generation, vectorised over rows (sentence x beam) and channels.

The pieces of spec §5.3-5.4: the run-length counters that force copies of the previous
unit, the masking of the step log-probs (pad, eos, prompt, copies), the joint beam search
over channels, and sampling (temperature, top-k, top-p) that consumes the random generator
exactly as the original does.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG_INF = float("-inf")


class DurationCounter:
    """Per (row, channel) counters deciding when the previous unit must be copied.

    Delayed mode (the release): a unit's predicted duration is read at the step where it is
    the input, so a run of ``d`` frames gets ``d - 1`` forced copies. Non-delayed mode reads
    the duration at the step the unit is emitted. The counter is *not* reset when a prompt
    token is forced, and beam search does not reorder the non-delayed ``jumped`` mask (both
    the original's quirks, kept for identical outputs).
    """

    def __init__(self, rows: int, channels: int, delayed: bool, temperature: float, device: torch.device):
        self.delayed = delayed
        self.temperature = temperature
        self.count = torch.ones(rows, channels, dtype=torch.long, device=device)
        self.jumped = torch.zeros(rows, channels, dtype=torch.bool, device=device)

    def update(self, step: int, raw: Tensor, repeated: Tensor) -> Tensor:
        """raw: (rows, C) duration-head outputs; repeated: (rows, C) "the input unit equals the
        one before it". Returns the (rows, C) bool mask of channels that must copy."""
        duration = torch.round(raw.float() / self.temperature).clamp(min=1).long()
        count = self.count
        if self.delayed:
            duration = duration.masked_fill(repeated, 1)
            if step > 0:
                count = (count - (count.eq(1) | repeated).long()).clamp(min=0)
            count = torch.where(count.eq(0), duration, count)
            copy = count.ne(1)
        else:
            if step > 0:
                count = count.masked_fill(self.jumped & repeated, 2)
                count = (count - repeated.long()).clamp(min=1)
            copy = count.ne(1)
            self.jumped = count.eq(1)
            count = torch.where(self.jumped, duration, count)
        self.count = count
        return copy

    def reorder(self, index: Tensor) -> None:
        """Follow a beam reordering. Only the counts move: the original keeps the non-delayed
        "jumped at the previous step" mask in the rows' order *before* the reordering (its
        ``dur_counter_jump_indices`` is never reordered), and beam search matches it only if
        we do the same."""
        self.count = self.count.index_select(0, index)


def keep_only(lprobs: Tensor, token: Tensor, where: Tensor) -> Tensor:
    """Where ``where`` (rows, C) holds, set every entry to -inf except ``token`` (rows, C),
    which keeps its value."""
    kept = lprobs.gather(-1, token[..., None])  # rows outside ``where`` get their own value back
    return lprobs.masked_fill(where[..., None], NEG_INF).scatter_(-1, token[..., None], kept)


def top_p_candidates(probs: Tensor, p: float) -> tuple[Tensor, Tensor]:
    """Smallest set of most probable entries whose mass reaches ``p``, per row of (rows, V).

    Returns (probs, indices) of the sorted entries, truncated to the widest kept set in the
    batch; entries outside a row's set are zeroed (not renormalised).
    """
    sorted_probs, sorted_index = probs.sort(dim=-1, descending=True)
    below = sorted_probs.cumsum(dim=-1).lt(p)
    last = below.sum(dim=-1, keepdim=True).clamp(max=probs.shape[-1] - 1)  # one more entry than `below`
    keep = below.scatter(-1, last, True)
    width = int(last.max()) + 1
    return sorted_probs[:, :width].masked_fill(~keep[:, :width], 0.0), sorted_index[:, :width]


def sample_step(
    lprobs: Tensor, step: int, topk: int, topp: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Independent samples. lprobs (bsz, beam, C, V) -> tokens and their log-probs (bsz, beam, C).

    Step 0 draws all ``beam`` first tokens of a sentence from its first row in one
    ``multinomial`` call per channel; later steps draw one token per row and channel. The
    score is ``log(exp(lprob))`` of the drawn unit, as the original computes it.
    """
    bsz, beam, channels, vocab = lprobs.shape
    tokens, scores = [], []
    for c in range(channels):
        lp = (lprobs[:, :1, c] if step == 0 else lprobs[:, :, c]).reshape(-1, vocab)
        index = None
        if topp > 0:
            probs, dead = _revive(lp.exp(), lp)
            probs, index = top_p_candidates(probs, topp)
        elif topk > 0:
            values, index = lp.topk(min(topk, vocab))
            probs, dead = _revive(values.exp(), values)
        else:
            probs, dead = _revive(lp.exp(), lp)
        draws = beam if step == 0 else 1
        choice = torch.multinomial(probs, draws, replacement=True, generator=generator)  # (rows, draws)
        score = probs.gather(-1, choice).log()
        token = choice if index is None else index.gather(-1, choice)
        score = torch.where(dead, lp.gather(-1, token), score)
        tokens.append(token.reshape(bsz, beam))
        scores.append(score.reshape(bsz, beam))
    return torch.stack(tokens, dim=-1), torch.stack(scores, dim=-1)


def _revive(probs: Tensor, lprobs: Tensor) -> tuple[Tensor, Tensor]:
    """Rows whose probabilities all underflow to 0 (a forced unit at a tiny temperature; the
    original crashes there) become uniform over their finite entries. Returns the probs and
    the (rows, 1) mask of such rows."""
    dead = probs.sum(-1, keepdim=True).eq(0)
    return torch.where(dead, lprobs.isfinite().to(probs.dtype), probs), dead


def beam_step(lprobs: Tensor, cumulative: Tensor, step: int) -> tuple[Tensor, Tensor, Tensor]:
    """Joint beam search over channels.

    lprobs (bsz, beam, C, V) step log-probs, cumulative (bsz, beam, C) per-channel scores.
    Each channel keeps its top ``2 * beam`` units per row; candidates are every combination
    (row, unit of channel 0, unit of channel 1, ...) flattened row-major, ranked by the sum
    of the channels' cumulative scores. Returns the ``beam`` best: source rows (bsz, beam),
    tokens (bsz, beam, C) and new cumulative scores (bsz, beam, C).
    """
    bsz, beam, channels, vocab = lprobs.shape
    if step == 0:  # all rows are equal: expand the first one only
        lprobs = lprobs[:, :1]
    else:
        lprobs = lprobs + cumulative[..., None]
    width = min(2 * beam, vocab)
    top_scores, top_tokens = lprobs.topk(width, dim=-1)  # (bsz, rows, C, width)
    joint = top_scores[:, :, 0]
    for c in range(1, channels):
        joint = (joint[..., None] + top_scores[:, :, c, None, :]).flatten(2)
    joint = joint.flatten(1)
    best = joint.topk(min(2 * beam, joint.shape[1]), dim=1).indices[:, :beam]  # (bsz, beam)
    combos = width**channels
    source = best // combos
    picks = [(best // width ** (channels - 1 - c)) % width for c in range(channels)]
    pick = torch.stack(picks, dim=-1)  # (bsz, beam, C): position in each channel's top list
    flat = (source[..., None] * channels + torch.arange(channels, device=lprobs.device)) * width + pick
    flat = flat.flatten(1)
    tokens = top_tokens.flatten(1).gather(1, flat).view(bsz, beam, channels)
    scores = top_scores.flatten(1).gather(1, flat).view(bsz, beam, channels)
    return source, tokens, scores


def block_repeated_ngrams(lprobs: Tensor, tokens: Tensor, n: int, free: Tensor | None = None) -> Tensor:
    """fairseq's ``no_repeat_ngram_size``, per channel: where the last ``n - 1`` tokens of a
    row's channel (``tokens`` (rows, C, T), the start symbol included) occurred before, the
    tokens that followed them there get -inf in ``lprobs`` (rows, C, V). ``free`` (rows, C):
    where False (a forced prompt unit or duration copy) nothing is blocked."""
    width = tokens.shape[-1]
    starts = width + 1 - n  # earlier (n-1)-grams that have a following token
    if n < 2 or starts <= 0:
        return lprobs
    last = tokens[..., width - n + 1 :]  # (rows, C, n - 1)
    earlier = tokens[..., : width - 1].unfold(-1, n - 1, 1)[..., :starts, :]  # (rows, C, starts, n - 1)
    match = earlier.eq(last[..., None, :]).all(-1)  # (rows, C, starts)
    if free is not None:
        match &= free[..., None]
    following = tokens[..., n - 1 : n - 1 + starts]
    banned = torch.zeros_like(lprobs, dtype=torch.int32).scatter_add_(-1, following, match.int()) > 0
    return lprobs.masked_fill(banned, NEG_INF)
