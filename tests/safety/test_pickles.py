"""Hostile pickles: a k-means file that would run code, a DAG and a self-referencing ``.pt``."""

from __future__ import annotations

import re
import tomllib

import joblib
import pytest
from crafted import dag_checkpoint, kmeans_dtype_payload, self_referencing_checkpoint
from hostile import SRC, assert_refused, run_dgslm

from dgslm.encoder.kmeans import load_kmeans_pickle
from dgslm.errors import DgslmError
from dgslm.safe_pickle import safe_torch_load


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def test_joblib_requirement_blocks_object_array_reads():
    """joblib below 1.6 reads an array whose dtype claims ``hasobject`` with an unrestricted
    ``pickle.load``; the project requires 1.6 and the environment has it."""
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    (requirement,) = [d for d in pyproject["project"]["dependencies"] if d.startswith("joblib")]
    minimum = _version(requirement.split(">=")[1])
    assert minimum >= (1, 6)
    assert _version(joblib.__version__) >= minimum


def test_kmeans_fake_dtype_payload_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    evil = kmeans_dtype_payload(tmp_path / "evil.bin", marker)
    with pytest.raises(DgslmError, match="not a numpy dtype") as err:
        load_kmeans_pickle(evil)
    assert str(evil) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()
    # the same file through the command line (also what encode / generate / convert --km read)
    out = tmp_path / "km.safetensors"
    done = run_dgslm("kmeans", "--convert", str(evil), "-o", str(out), timeout=120)
    assert_refused(done, evil, "not a numpy dtype")
    assert not marker.exists() and not out.exists()
    assert not list(tmp_path.glob(".km*"))  # nothing half-written


def test_shared_dict_dag_checkpoint_loads_in_linear_time(tmp_path):
    dag = dag_checkpoint(tmp_path / "dag.pt", levels=40)
    assert dag.stat().st_size < 4096
    cfg = tmp_path / "config.json"
    cfg.write_text("{}")
    codes = tmp_path / "codes.txt"
    codes.write_text("{'audio': 'a.wav', 'unitA': '1 2', 'unitB': '3 4'}\n")
    done = run_dgslm(
        "vocode", "--in-file", str(codes), "--vocoder", str(dag), "--vocoder-cfg", str(cfg),
        "--results-path", str(tmp_path / "out"), "--cpu", timeout=120, memory_gb=3,
    )  # fmt: skip
    # the weights were read (the DAG resolved in linear time) and compared with the config
    assert_refused(done, cfg, "upsampling stages but the weights hold 0")
    # loaded directly, the shared structure stays shared (40 objects, not 2**40 copies)
    node = safe_torch_load(dag)["cfg"]
    for _ in range(40):
        assert node["a"] is node["b"]
        node = node["a"]
    assert node == {"leaf": 1}


def test_self_referencing_pickle_is_one_line_error(tmp_path):
    loop = self_referencing_checkpoint(tmp_path / "loop.pt")
    with pytest.raises(DgslmError, match="contains itself") as err:
        safe_torch_load(loop)
    assert str(loop) in str(err.value)


def test_deeply_nested_pickle_is_one_line_error(tmp_path):
    import torch

    deep: list = []
    for _ in range(300):  # deeper than any real file
        deep = [deep]
    path = tmp_path / "deep.pt"
    torch.save({"cfg": deep}, path)
    with pytest.raises(DgslmError, match="nests") as err:
        safe_torch_load(path)
    assert str(path) in str(err.value)
