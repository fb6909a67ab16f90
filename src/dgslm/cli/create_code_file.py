"""``dgslm create-code-file``: merge two per-channel unit files into one code file.

Like the original ``create_code_file.py``: each input line is ``name|units`` (names end with
a 9-character channel suffix such as ``-channel1``); both files must list the same base
names (name minus its last 9 characters) with the same number of units, in the same order.
Each output line is ``{'audio': base name, 'unitA': units of file 1, 'unitB': units of file 2}``.
"""

from __future__ import annotations

import argparse

from dgslm.errors import DgslmError
from dgslm.units.codes import FORMATS, write_code_file
from dgslm.units.unit_files import iter_named_lines

SUFFIX_LENGTH = 9  # len("-channel1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_file_1", help="channel 1 units: lines 'name|units'")
    parser.add_argument("input_file_2", help="channel 2 units: lines 'name|units'")
    parser.add_argument("output_path", help="code file to write")
    parser.add_argument("--channels", default="unitA,unitB", help="the two channel names, comma-separated")
    parser.add_argument(
        "--format", default="python", choices=FORMATS, help="python: str(dict) lines as the original; jsonl"
    )


def run(args: argparse.Namespace) -> int:
    channels = args.channels.split(",")
    if len(channels) != 2 or not all(channels):
        raise DgslmError(f"--channels needs exactly two names, got {args.channels!r}")
    paths = (args.input_file_1, args.input_file_2)
    records = []
    for line_no, ((name1, units1), (name2, units2)) in iter_named_lines(paths):
        if name1[:-SUFFIX_LENGTH] != name2[:-SUFFIX_LENGTH]:
            raise DgslmError(f"name {name2!r} does not match {name1!r} of {paths[0]}", paths[1], line_no)
        if len(units1.split()) != len(units2.split()):
            raise DgslmError(
                f"{len(units2.split())} units but {paths[0]} has {len(units1.split())} on this line", paths[1], line_no
            )
        records.append({"audio": name1[:-SUFFIX_LENGTH], channels[0]: units1, channels[1]: units2})
    write_code_file(args.output_path, records, args.format)
    print(f"wrote {len(records)} lines to {args.output_path}")
    return 0
