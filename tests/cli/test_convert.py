"""`dgslm convert`: converted folders give `dgslm generate` the same output as the originals."""

from __future__ import annotations

import pytest

from dgslm.cli.main import main

RUN = ["--prompt-seconds", "0.5", "--seconds", "0.1", "--beam-size", "1", "--seed", "5"]


def originals(reference) -> dict[str, str]:
    return {
        "--hubert": str(reference / "hubert" / "hubert_small.pt"),
        "--km": str(reference / "kmeans" / "km50.bin"),
        "--speech-dlm": str(reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt"),
        "--vocoder": str(reference / "vocoder" / "hifigan_vocoder"),
        "--vocoder-cfg": str(reference / "vocoder" / "config.json"),
    }


def flags(mapping: dict[str, str]) -> list[str]:
    return [x for pair in mapping.items() for x in pair]


@pytest.fixture(scope="module")
def original_output(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("original") / "o.wav"
    prompt = reference / "audio" / "stereo_test.wav"
    assert main(["generate", str(prompt), "-o", str(out), *RUN, "--layer", "3", *flags(originals(reference))]) == 0
    return out.read_bytes()


def test_convert_the_cache_then_generate_without_flags(reference, tmp_path, monkeypatch, original_output):
    """`dgslm download` layout -> `dgslm convert` -> `dgslm generate` finds the converted folders."""
    home = tmp_path / "home"
    files = originals(reference)
    released = {
        "hubert/hubert_fisher.pt": files["--hubert"], "hubert/hubert_fisher_km_500.bin": files["--km"],
        "speech_dlm/speech_dlm_base.pt": files["--speech-dlm"],
        "speech_dlm/dict.unitA.txt": reference / "speechdlm" / "checkpoint" / "dict.unitA.txt",
        "speech_dlm/dict.unitB.txt": reference / "speechdlm" / "checkpoint" / "dict.unitB.txt",
        "hifigan/hifigan_vocoder": files["--vocoder"], "hifigan/config.json": files["--vocoder-cfg"],
    }  # fmt: skip
    for name, source in released.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).symlink_to(source)
    monkeypatch.setenv("DGSLM_HOME", str(home))
    assert main(["convert", "--layer", "3"]) == 0
    assert sorted(p.name for p in (home / "converted").iterdir()) == ["hifigan", "hubert", "speech_dlm"]
    out = tmp_path / "c.wav"
    assert main(["generate", str(reference / "audio" / "stereo_test.wav"), "-o", str(out), *RUN]) == 0
    assert out.read_bytes() == original_output


def test_convert_flags_to_a_folder_accepted_by_generate(reference, tmp_path, monkeypatch, original_output, capsys):
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "empty"))
    files = originals(reference)
    del files["--vocoder-cfg"]  # found beside the checkpoint
    assert main(["convert", *flags(files), "--layer", "3", "--out", str(tmp_path / "conv")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "conv" / m) for m in ("hubert", "speech_dlm", "hifigan")]
    out = tmp_path / "c.wav"
    folders = ["--hubert", tmp_path / "conv" / "hubert", "--speech-dlm", tmp_path / "conv" / "speech_dlm",
               "--vocoder", tmp_path / "conv" / "hifigan"]  # fmt: skip
    assert (
        main(["generate", str(reference / "audio" / "stereo_test.wav"), "-o", str(out), *RUN, *map(str, folders)]) == 0
    )
    assert out.read_bytes() == original_output
    assert not (tmp_path / "empty").exists()


def test_convert_errors(reference, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path))
    assert main(["convert"]) == 1
    assert "`dgslm download --models hubert,speech_dlm,hifigan`" in capsys.readouterr().err
    assert main(["convert", "--speech-dlm", str(tmp_path)]) == 1
    assert "not a converted SpeechDLM folder" in capsys.readouterr().err
    assert main(["convert", "--hubert", str(reference / "hubert" / "hubert_small.pt")]) == 1
    assert "--hubert needs --km" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
