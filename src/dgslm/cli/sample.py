"""``dgslm sample``: continue unit prompts with a SpeechDLM (the original ``sample_speech_dlm.py``).

Input: one prompt per line, ``{'audio': 'name', 'unitA': 'u u u', 'unitB': 'u u u'}`` (Python
dict literal as the original, or a JSON object). Output: one line per prompt,
``{'audio': 'name-generated', 'unitA': ..., 'unitB': ...}`` with ``--max-len-b`` units per
channel, prompt included. Write ``<unk>`` in a prompt position to leave it free.

Under ``torchrun`` each rank (one GPU each, ``cuda:LOCAL_RANK``) continues batches K, K + N,
... of the prompts into ``<out>.rank<K>-of-<N>`` and rank 0 merges them in input order: one
process's output, for sampling too (every batch draws from its own seed, see
``dgslm.lm.generate.batch_seed``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dgslm.cli.options import add_output_arguments, add_sampling_arguments, generation_config
from dgslm.errors import DgslmError
from dgslm.units.codes import FORMATS, iter_code_file, write_code_file

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-file", required=True, help="prompts: one {'audio': ..., channel: units} per line")
    parser.add_argument("--ckpt", required=True, help="original checkpoint (.pt) or a dgslm model folder")
    parser.add_argument("--data", default=None, help="folder of dict.<channel>.txt (default: that of --ckpt)")
    parser.add_argument("--out-file", required=True, help="output code file")
    parser.add_argument("--channels", default="unitA,unitB", help="comma-separated channel names")
    parser.add_argument("--prefix-size", type=int, default=None, help="keep only the first N units of each prompt")
    parser.add_argument("--batch-max-tokens", type=int, default=9216, help="max padded prompt tokens per batch")
    parser.add_argument(
        "--batch-max-positions", type=int, default=6144, help="longest allowed prompt, its start symbol included"
    )
    parser.add_argument("--batch-max-sentences", type=int, default=None, help="max prompts per batch")
    parser.add_argument(
        "--skip-invalid-size-batch", action="store_true", help="skip prompts longer than --batch-max-positions"
    )
    parser.add_argument("--verbose", action="store_true", help="log the prompts, hypotheses and their scores")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--format", default="python", choices=FORMATS, help="output lines: python str(dict) or jsonl")
    add_output_arguments(parser.add_argument_group("output length"))
    add_sampling_arguments(parser.add_argument_group("sampling"))


def read_prompts(path: str, channels: list[str], prefix_size: int | None) -> list[tuple[int, dict[str, str]]]:
    """(line number, record) of every non-blank line; a line lacking a channel is a DgslmError."""
    records = []
    for line_no, record in iter_code_file(path):
        missing = [key for key in ["audio", *channels] if key not in record]
        if missing:
            raise DgslmError(f"missing {', '.join(missing)}", path, line_no)
        if prefix_size is not None:
            record.update({ch: " ".join(record[ch].split()[:prefix_size]) for ch in channels})
        records.append((line_no, record))
    if not records:
        raise DgslmError("no prompts in the file", path)
    return records


def run(args: argparse.Namespace) -> int:
    from dgslm.training import distributed

    try:
        return sample_prompts(args)
    finally:
        distributed.cleanup()


def sample_prompts(args: argparse.Namespace) -> int:
    from dgslm.device import pick_device
    from dgslm.lm.hub import SpeechDLM
    from dgslm.training import distributed

    config = generation_config(args)
    channels = args.channels.split(",")
    records = read_prompts(args.in_file, channels, args.prefix_size)

    ckpt = Path(args.ckpt)
    if not ckpt.exists():
        raise DgslmError("no such checkpoint file or folder", ckpt)
    data = Path(args.data).resolve() if args.data else (ckpt if ckpt.is_dir() else ckpt.parent)
    if ckpt.is_dir():
        hub = SpeechDLM.from_pretrained(ckpt, data_name_or_path=data)
    else:
        hub = SpeechDLM.from_pretrained(ckpt.parent, checkpoint_file=ckpt.name, data_name_or_path=data)
    if distributed.launched():
        device = distributed.init(args.device, timeout=distributed.JOB_TIMEOUT)
    else:
        device = pick_device(args.device)
    hub.eval().to(device)
    if sorted(channels) != list(hub.channels):
        raise DgslmError(f"--channels {args.channels} differ from the model's {','.join(hub.channels)}", ckpt)

    limit = config.position_limit(args.batch_max_positions, hub.cfg.max_positions)
    prompts, units, names = [], [], []
    for line_no, record in records:
        prompt = {ch: record[ch] for ch in channels}
        ids = hub.encode_prompt(prompt, strict=True, path=args.in_file, line=line_no)
        length = ids.shape[1]
        if length + 1 > limit:
            message = f"prompt of {length} units: longer than {limit - 1} (--batch-max-positions / model)"
            if not args.skip_invalid_size_batch:
                raise DgslmError(message, args.in_file, line_no)
            logger.warning("%s:%d: skipped, %s", args.in_file, line_no, message)
            continue
        if args.max_len_a == 0 and length > args.max_len_b:
            where = f"{args.in_file}:{line_no}"
            logger.warning("%s: prompt of %d units cut to --max-len-b %d", where, length, args.max_len_b)
        prompts.append(ids)
        units.append(prompt)
        names.append(record["audio"])

    rank, world = distributed.rank(), distributed.world_size()
    batching = dict(max_tokens=args.batch_max_tokens, max_sentences=args.batch_max_sentences, max_positions=limit)
    owners = [0] * len(prompts)  # the rank that continues each prompt: batch i goes to rank i mod N
    for index, batch in enumerate(hub.plan_batches(prompts, config, **batching)):
        for i in batch.tolist():
            owners[i] = index % world
    mine = [i for i, owner in enumerate(owners) if owner == rank]
    logger.info("sampling %d of %d prompts on %s: %s", len(mine), len(prompts), device, config)
    results = hub.generate(prompts, config, **batching, progress=True, shard=(rank, world))
    outputs = []
    for i in mine:
        if args.verbose:
            hub.log_hypotheses(units[i], results[i])
        outputs.append({"audio": f"{names[i]}-generated", **hub.decode(results[i][0].tokens)})
    out_file = distributed.rank_path(args.out_file) if world > 1 else args.out_file
    write_code_file(out_file, outputs, args.format)
    distributed.merge_rank_parts([Path(args.out_file)], lambda k: [distributed.rank_path(args.out_file, k)], owners)
    if distributed.is_main():
        print(f"wrote {len(prompts)} generated sequences to {args.out_file}")
    return 0
