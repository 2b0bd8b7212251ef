"""The authors' released checkpoints, by name, downloaded once into a local cache.

`resolve_checkpoint("base")` returns `~/.cache/atm-vfi/atm-vfi-base.pt`, fetching
it from Google Drive with gdown only when the file is not there yet; any other
string is taken as a path to a checkpoint file. Set `ATM_VFI_CACHE` to use
another cache directory.
"""
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import is_torch_file
from .runtime import UserError

log = logging.getLogger(__name__)

CACHE_ENV = "ATM_VFI_CACHE"


@dataclass(frozen=True)
class Pretrained:
    file_name: str  # name of the file in the cache directory
    drive_id: str  # Google Drive file id, as the authors' README gives it
    variant: str  # architecture of the weights: "base" | "lite"

    @property
    def url(self) -> str:
        """The page to download the file from in a browser."""
        return f"https://drive.google.com/file/d/{self.drive_id}/view"


PRETRAINED = {
    "base": Pretrained("atm-vfi-base.pt", "1AVX1n5HGPK8hmuo23aLtAL46FnGf0YIU", "base"),
    "lite": Pretrained("atm-vfi-lite.pt", "1_WYXzeFezkJGLhx_dIVyoDUS4E6_qapM", "lite"),
    # Base architecture after the perceptual fine-tuning phase.
    "pct": Pretrained("atm-vfi-base-pct.pt", "1QiDkavHmzGfkma1QUP21hdl9Znyq7Gxy", "base"),
}


def cache_dir() -> Path:
    """Where named checkpoints live: $ATM_VFI_CACHE, else ~/.cache/atm-vfi."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "atm-vfi"


def resolve_checkpoint(name_or_path: str | Path, flag: str = "--ckpt") -> Path:
    """Turn `base` / `lite` / `pct` or a file path into the path of an existing file.

    A name is looked up in `cache_dir()` and downloaded there when missing; nothing touches
    the network when the file is present. Raises UserError for a missing path or a failed
    download, naming `flag` (the command's option) where it says what to pass instead. (A file
    literally called `base` in the working directory is `./base`.)
    """
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return _cached_or_downloaded(name_or_path, cache_dir(), flag)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a checkpoint file in it")
    if not path.is_file():
        names = ", ".join(PRETRAINED)
        raise UserError(f"checkpoint not found: {path} (give a file or one of: {names})")
    return path


def _manual_steps(name: str, target: Path, flag: str) -> str:
    entry = PRETRAINED[name]
    return (f"download {entry.url} in a browser and save it as {target}, "
            f"or pass {flag} /path/to/{entry.file_name}")


def _cached_or_downloaded(name: str, cache: Path, flag: str) -> Path:
    target = cache / PRETRAINED[name].file_name
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading the '%s' checkpoint to %s (once)", name, target)
    try:
        # gdown keeps its own partial file beside its output: both live in a hidden folder that
        # goes away whatever happens; the checkpoint leaves it only when complete.
        with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=cache) as folder:
            downloaded = Path(folder) / target.name
            _download(PRETRAINED[name].drive_id, downloaded)
            os.replace(downloaded, target)
    except UserError as error:
        raise UserError(f"could not download the '{name}' checkpoint ({error}); "
                        f"{_manual_steps(name, target, flag)}") from None
    return target


def _download(drive_id: str, destination: Path) -> None:
    """Fetch one Google Drive file to `destination`; UserError when that fails."""
    import gdown  # imported here: only a download needs it
    import requests

    refusals = (gdown.exceptions.FileURLRetrievalError,
                getattr(gdown.exceptions, "DownloadError", OSError))  # gdown >= 6
    try:
        gdown.download(id=drive_id, output=str(destination), quiet=False)
    except requests.RequestException as error:
        raise UserError(f"cannot reach Google Drive: {type(error).__name__}") from None
    except (OSError, *refusals) as error:
        reason = str(error).strip().splitlines()
        raise UserError(reason[0] if reason else type(error).__name__) from None
    if not destination.is_file():
        raise UserError("nothing was downloaded")
    if not is_torch_file(destination):
        raise UserError("the downloaded file is not a PyTorch checkpoint "
                        "(Google Drive may be refusing the download for now)")
    with destination.open("rb") as file:
        zipped = file.read(2) == b"PK"
    if zipped and not zipfile.is_zipfile(destination):     # no central directory at its end
        raise UserError("the download is incomplete (a truncated archive)")
