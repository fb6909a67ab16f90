"""The released dGSLM model files, their cache folder and a resumable, verified download.

Cache layout: ``$DGSLM_HOME`` (default ``~/.cache/dgslm``) holds one folder per model,
``hubert/``, ``speech_dlm/`` and ``hifigan/``, with the files under their original names, plus
``manifest.json``, which records the size and SHA-256 of every file at its first download.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write

logger = logging.getLogger(__name__)

BASE_URL = "https://dl.fbaipublicfiles.com/textless_nlp/dgslm/checkpoints/"
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ReleasedModel:
    """One released model: its folder (under the base URL and in the cache) and its files."""

    folder: str
    files: dict[str, str]  # role -> file name


MODELS: dict[str, ReleasedModel] = {
    "hubert": ReleasedModel("hubert", {"checkpoint": "hubert_fisher.pt", "kmeans": "hubert_fisher_km_500.bin"}),
    "speech_dlm": ReleasedModel(
        "speech_dlm",
        {"checkpoint": "speech_dlm_base.pt", "dict_unitA": "dict.unitA.txt", "dict_unitB": "dict.unitB.txt"},
    ),
    "hifigan": ReleasedModel("hifigan", {"checkpoint": "hifigan_vocoder", "config": "config.json"}),
}


def cache_dir() -> Path:
    """``$DGSLM_HOME``, or ``~/.cache/dgslm``."""
    return Path(os.environ.get("DGSLM_HOME") or Path.home() / ".cache" / "dgslm").expanduser()


def find_model_files(root: str | os.PathLike | None = None) -> dict[str, dict[str, Path] | None]:
    """Which released models are complete in the cache: ``{model: {role: path}}``, with None
    for a model that has a file missing. Roles: hubert ``checkpoint``/``kmeans``;
    speech_dlm ``checkpoint``/``dict_unitA``/``dict_unitB``; hifigan ``checkpoint``/``config``."""
    root = Path(root) if root is not None else cache_dir()
    found: dict[str, dict[str, Path] | None] = {}
    for name, model in MODELS.items():
        paths = {role: root / model.folder / file for role, file in model.files.items()}
        found[name] = paths if all(p.is_file() for p in paths.values()) else None
    return found


def download_models(
    root: str | os.PathLike | None = None,
    models: list[str] | None = None,
    base_url: str = BASE_URL,
    progress: bool = True,
) -> dict[str, dict[str, Path]]:
    """Fetch the released files that are missing or fail verification into ``root``.

    Interrupted downloads resume from their ``.part`` file (HTTP Range). A file is renamed
    into place only after its size matches the server's and its SHA-256 matches the
    manifest (or is recorded there on first download). When the host cannot be reached
    this fails at once with a DgslmError listing the URLs to fetch by hand and where to put them.
    """
    root = Path(root) if root is not None else cache_dir()
    names = models or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise DgslmError(f"unknown model(s) {', '.join(unknown)} (choose from {', '.join(MODELS)})")
    manifest = Manifest(root / MANIFEST)
    todo = []
    for name in names:
        model = MODELS[name]
        for file in model.files.values():
            key = f"{model.folder}/{file}"
            if not manifest.verify(root / key, key):
                todo.append((urljoin(base_url, key), root / key, key))
    for i, (url, path, key) in enumerate(todo):
        try:
            fetch(url, path, manifest, key, progress)
        except OSError as err:
            raise DgslmError(manual_download_message(err, todo[i:])) from None
    return {name: {role: root / MODELS[name].folder / f for role, f in MODELS[name].files.items()} for name in names}


def manual_download_message(err: BaseException, todo: list[tuple[str, Path, str]]) -> str:
    """One line saying which URLs to fetch by hand and exactly where to put them."""
    placements = "; ".join(f"{url} -> {path}" for url, path, _ in todo)
    return f"cannot download ({err or type(err).__name__}); fetch these files by hand and save them as: {placements}"


class Manifest:
    """``manifest.json``: ``{relative path: {"size": int, "sha256": hex}}``, saved atomically."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}
        except (ValueError, UnicodeDecodeError):
            raise DgslmError("corrupt manifest; delete it to record the files again", path) from None

    def verify(self, path: Path, key: str) -> bool:
        """Whether ``path`` exists with the recorded size and SHA-256 (recorded now if absent)."""
        if not path.is_file():
            return False
        entry = self.entries.get(key)
        if entry is None:
            check_kind(key, path)  # a file put there by hand: it must load before it is recorded
            self.record(key, path.stat().st_size, sha256_of(path))
            return True
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            logger.warning("%s does not match %s; downloading it again", path, self.path)
            return False
        return True

    def record(self, key: str, size: int, sha256: str) -> None:
        self.entries[key] = {"size": size, "sha256": sha256}
        with atomic_write(self.path) as handle:
            json.dump(self.entries, handle, indent=2, sort_keys=True)


def check_kind(key: str, path: Path) -> None:
    """DgslmError unless ``path`` loads as what the released file ``key`` is (a HuBERT, k-means,
    SpeechDLM or vocoder checkpoint, a dictionary, a vocoder config), read without running code."""
    name = key.rsplit("/", 1)[-1]
    if name == "hubert_fisher.pt":
        from dgslm.safe_pickle import safe_torch_load

        ckpt = safe_torch_load(path)
        if not isinstance(ckpt, dict) or not any(str(k).startswith("encoder.layers.") for k in ckpt.get("model") or {}):
            raise DgslmError("not a HuBERT checkpoint", path)
    elif name.endswith("_km_500.bin"):
        from dgslm.encoder.kmeans import load_kmeans_pickle

        load_kmeans_pickle(path)
    elif name == "speech_dlm_base.pt":
        from dgslm.lm.checkpoint import load_fairseq_checkpoint

        load_fairseq_checkpoint(path)
    elif name.startswith("dict."):
        from dgslm.units.dictionary import Dictionary

        Dictionary.load(path)
    elif name == "hifigan_vocoder":
        from dgslm.vocoder.checkpoint import read_generator_state

        read_generator_state(path)
    elif name == "config.json":
        from dgslm.vocoder.config import VocoderConfig

        VocoderConfig.load(path)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch(url: str, path: Path, manifest: Manifest, key: str, progress: bool = True) -> None:
    """Download ``url`` to ``path`` through ``path.part``, resuming it, then verify and rename."""
    part = path.with_name(path.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    response, connection = open_url(url, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    if response.status == 416 and (_content_range_total(response) or 0) < start:
        connection.close()  # a .part larger than the file: not a prefix of it
        logger.warning("%s is larger than %s; downloading it again", part, url)
        part.unlink()
        return fetch(url, path, manifest, key, progress)
    try:
        if response.status == 416:  # the .part already holds everything
            total = _content_range_total(response) or start
        elif response.status == 206:
            total = _content_range_total(response) or start + int(response.getheader("Content-Length", 0))
        elif response.status == 200:
            start, total = 0, int(response.getheader("Content-Length") or 0)
        else:
            raise OSError(f"HTTP {response.status} {response.reason} for {url}")
        with (
            open(part, "ab" if start else "wb") as handle,
            tqdm(
                total=total or None, initial=start, unit="B", unit_scale=True, desc=path.name, disable=not progress
            ) as bar,
        ):
            while response.status != 416 and (block := response.read(CHUNK_BYTES)):
                handle.write(block)
                bar.update(len(block))
    finally:
        connection.close()
    size = part.stat().st_size
    if total and size != total:
        raise OSError(f"{url} ended after {size} of {total} bytes; run again to resume")
    digest = sha256_of(part)
    expected = manifest.entries.get(key)
    if expected is not None and (expected["size"], expected["sha256"]) != (size, digest):
        part.unlink()
        raise DgslmError(f"downloaded file does not match the size and SHA-256 recorded in {manifest.path}", path)
    if expected is None:
        try:
            check_kind(key, part)
        except DgslmError as err:
            part.unlink()
            raise DgslmError(f"the download from {url} is not what {key} must be ({err})", path) from None
    os.replace(part, path)
    if expected is None:
        manifest.record(key, size, digest)


def open_url(
    url: str, start: int = 0, redirects: int = 5
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """GET ``url`` from byte ``start``, following redirects; connecting (name lookup included)
    gives up after ``CONNECT_TIMEOUT_S``."""
    for _ in range(redirects + 1):
        parts = urlsplit(url)
        kind = {"http": http.client.HTTPConnection, "https": http.client.HTTPSConnection}.get(parts.scheme)
        if kind is None or not parts.hostname:
            raise OSError(f"unsupported URL {url}")
        connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
        connect_within(connection, CONNECT_TIMEOUT_S + 0.5)
        connection.sock.settimeout(READ_TIMEOUT_S)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"Range": f"bytes={start}-"} if start else {})
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            target_url = urljoin(url, response.getheader("Location"))
            connection.close()
            if parts.scheme == "https" and urlsplit(target_url).scheme != "https":
                raise OSError(f"refusing a redirect from https to {target_url}")
            url = target_url
            continue
        return response, connection
    raise OSError(f"too many redirects for {url}")


def connect_within(connection: http.client.HTTPConnection, seconds: float) -> None:
    """``connection.connect()``, abandoned after ``seconds`` (a name lookup ignores socket timeouts)."""
    outcome: list[OSError | None] = []

    def target() -> None:
        try:
            connection.connect()
            outcome.append(None)
        except OSError as err:  # handed to the caller below
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise OSError(f"no answer from {connection.host} within {seconds:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _content_range_total(response: http.client.HTTPResponse) -> int | None:
    match = re.search(r"/(\d+)\s*$", response.getheader("Content-Range") or "")
    return int(match.group(1)) if match else None
