"""The fairseq unit dictionary (``dict.<channel>.txt``): symbols to ids and back.

Ids 0-3 are the specials ``<s>`` (bos), ``<pad>``, ``</s>`` (eos) and ``<unk>``; the file's
symbols follow in file order from id 4. The file holds one ``symbol count`` per line (split at
the last space, optionally followed by ``#fairseq:overwrite``) and never the specials.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import torch

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write
from dgslm.units.unit_files import open_text, read_lines, tokenize_line

BOS, PAD, EOS, UNK = "<s>", "<pad>", "</s>", "<unk>"
SPECIALS = (BOS, PAD, EOS, UNK)
OVERWRITE_FLAG = "#fairseq:overwrite"


class Dictionary:
    """A fairseq ``Dictionary``: ``symbols[i]`` is the symbol of id ``i``, ``count[i]`` its count."""

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.count: list[int] = []
        self.indices: dict[str, int] = {}
        for symbol in SPECIALS:
            self.add_symbol(symbol, 1)
        self.nspecial = len(SPECIALS)

    # ids of the specials
    def bos(self) -> int:
        return 0

    def pad(self) -> int:
        return 1

    def eos(self) -> int:
        return 2

    def unk(self) -> int:
        return 3

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.indices

    def __getitem__(self, index: int) -> str:
        return self.symbols[index] if 0 <= index < len(self.symbols) else UNK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dictionary) and self.symbols == other.symbols

    def index(self, symbol: str) -> int:
        """The id of ``symbol``, or ``unk()`` when it is not in the dictionary."""
        return self.indices.get(symbol, UNK_ID)

    def add_symbol(self, symbol: str, n: int = 1, overwrite: bool = False) -> int:
        """Add ``n`` to the count of ``symbol`` (a new entry if absent or ``overwrite``)."""
        if symbol in self.indices and not overwrite:
            index = self.indices[symbol]
            self.count[index] += n
            return index
        self.indices[symbol] = len(self.symbols)
        self.symbols.append(symbol)
        self.count.append(n)
        return self.indices[symbol]

    # ---- building ------------------------------------------------------------------------

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], padding_factor: int = 8, threshold: int = -1, nwords: int = -1
    ) -> Dictionary:
        """Build the dictionary fairseq-preprocess writes from symbol counts.

        Symbols are sorted by count descending, ties by string order (``'10' < '2'``);
        ``nwords > 0`` keeps that many entries (specials included), ``threshold`` stops at
        the first count below it; ``madeupwordNNNN`` entries (count 0) pad the size to a
        multiple of ``padding_factor``.
        """
        dictionary = cls()
        for symbol in SPECIALS:
            dictionary.count[dictionary.indices[symbol]] += counts.get(symbol, 0)
        ranked = sorted(((s, c) for s, c in counts.items() if s not in SPECIALS), key=lambda sc: sc[0])
        ranked.sort(key=lambda sc: sc[1], reverse=True)  # stable: ties keep string order
        if nwords > 0:
            ranked = ranked[: max(0, nwords - dictionary.nspecial)]
        for symbol, n in ranked:
            if n < threshold:
                break
            dictionary.add_symbol(symbol, n)
        for i in range((-len(dictionary)) % padding_factor if padding_factor > 1 else 0):
            dictionary.add_symbol(f"madeupword{i:04d}", 0)
        return dictionary

    @classmethod
    def build(
        cls,
        paths: Iterable[str | os.PathLike],
        padding_factor: int = 8,
        threshold: int = -1,
        nwords: int = -1,
    ) -> Dictionary:
        """Count the units of text files (one utterance per line) and build the dictionary
        exactly as ``fairseq-preprocess`` does (see :meth:`from_counts`)."""
        counts: Counter[str] = Counter()
        for path in paths:
            with open_text(path) as handle:
                for _, line in read_lines(handle, path):
                    counts.update(tokenize_line(line))
                    counts[EOS] += 1
        return cls.from_counts(counts, padding_factor, threshold, nwords)

    # ---- file I/O ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dictionary:
        """Read a ``dict.txt``; a malformed line raises :class:`DgslmError` naming file:line."""
        dictionary = cls()
        with open_text(path) as handle:
            for line_no, line in read_lines(handle, path):
                fields = line.rstrip().rsplit(" ", 1)
                overwrite = len(fields) == 2 and fields[1] == OVERWRITE_FLAG
                if overwrite:
                    fields = fields[0].rsplit(" ", 1)
                if len(fields) != 2:
                    raise DgslmError("expected '<symbol> <count> [#fairseq:overwrite]'", path, line_no)
                symbol, field = fields
                try:
                    n = int(field)
                except ValueError:
                    raise DgslmError(f"count {field!r} is not an integer", path, line_no) from None
                if symbol in dictionary and not overwrite:
                    raise DgslmError(f"duplicate symbol {symbol!r} (add {OVERWRITE_FLAG} to allow it)", path, line_no)
                dictionary.add_symbol(symbol, n, overwrite=overwrite)
        return dictionary

    def save(self, path: str | os.PathLike) -> None:
        """Write ``symbol count`` lines (specials left out), atomically."""
        seen: set[str] = set()
        with atomic_write(path) as handle:
            for symbol, n in zip(self.symbols[self.nspecial :], self.count[self.nspecial :]):
                flag = f" {OVERWRITE_FLAG}" if symbol in seen or symbol in SPECIALS else ""
                seen.add(symbol)
                handle.write(f"{symbol} {n}{flag}\n")

    # ---- encoding ------------------------------------------------------------------------

    def encode_line(
        self,
        line: str,
        append_eos: bool = True,
        strict: bool = False,
        path: str | os.PathLike | None = None,
        line_no: int | None = None,
    ) -> torch.Tensor:
        """Unit string to a LongTensor of ids (+ eos). Unknown units map to ``unk()``, or with
        ``strict`` raise :class:`DgslmError` naming ``path:line_no``."""
        return torch.tensor(
            self.encode_symbols(tokenize_line(line), append_eos, strict, path, line_no), dtype=torch.long
        )

    def encode_symbols(
        self,
        symbols: Sequence[str],
        append_eos: bool = True,
        strict: bool = False,
        path: str | os.PathLike | None = None,
        line_no: int | None = None,
    ) -> list[int]:
        """Symbols to ids (+ eos); see :meth:`encode_line`."""
        ids = [self.indices.get(s, UNK_ID) for s in symbols]
        if strict:
            for symbol, i in zip(symbols, ids):
                if i == UNK_ID and symbol != UNK:
                    raise DgslmError(f"unit {symbol!r} is not in the dictionary", path, line_no)
        if append_eos:
            ids.append(EOS_ID)
        return ids

    def string(self, ids: Iterable[int] | torch.Tensor, keep_pad: bool = False) -> str:
        """Ids to a space-joined unit string without bos, eos and pad (the original keeps pad:
        ``keep_pad=True``); unknown ids print as ``<unk>``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        dropped = {BOS_ID, EOS_ID} if keep_pad else {BOS_ID, EOS_ID, PAD_ID}
        return " ".join(self[int(i)] for i in ids if int(i) not in dropped)


BOS_ID, PAD_ID, EOS_ID, UNK_ID = range(4)
