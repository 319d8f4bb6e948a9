"""Where a call's recording is: a file in RECORDINGS_DIR, or a URL on a remote PBX.

Asterisk reports the file as a path on its own disk (``CRM_RECORDING``/``MIXMONITOR_FILENAME``).
That path is data from the PBX, so it is never opened as given: it is reduced to a name inside
the recordings folder, and a name that would leave it (``..``, symlinks out) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from crm_core.errors import NotFound
from web.settings import WebSettings

# Types of the formats MixMonitor writes; browsers play WAV, MP3 and Ogg.
_MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".wav49": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".gsm": "audio/gsm",
}


class UnsafeName(ValueError):
    """The PBX named a file that could lie outside the recordings folder."""


def file_name(reported: str, pbx_dir: str) -> PurePosixPath:
    """The recording's name relative to the recordings folder.

    Under ``pbx_dir`` the subfolders are kept (FreePBX: ``2026/12/01/in-….wav``); any other
    absolute path (the kit's ``RUNDIR/recordings/…``) is taken by its file name; a relative
    name is relative to the folder already (MixMonitor's own convention).
    """
    if not reported or "\x00" in reported or "\\" in reported:
        raise UnsafeName(f"unusable recording name {reported!r}")
    path = PurePosixPath(reported)
    if path.is_absolute():
        base = PurePosixPath(pbx_dir)
        inside = bool(pbx_dir) and path.is_relative_to(base)
        path = path.relative_to(base) if inside else PurePosixPath(path.name)
    if not path.parts or any(part in ("..", ".") for part in path.parts):
        raise UnsafeName(f"recording name {reported!r} leaves the recordings folder")
    return path


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording found: a local file to stream, or a URL to send the browser to."""

    path: Path | None = None
    url: str | None = None

    @property
    def media_type(self) -> str:
        suffix = (self.path or PurePosixPath(self.url or "")).suffix.lower()
        return _MEDIA_TYPES.get(suffix, "application/octet-stream")


def locate(reported: str, settings: WebSettings) -> Recording:
    """The recording Asterisk named, or NotFound saying why it can't be had."""
    try:
        name = file_name(reported, settings.recordings_pbx_dir)
    except UnsafeName as exc:
        raise NotFound(f"recording missing: {exc}", code="recording.missing") from None
    if settings.recordings_url_template:
        # replace, not str.format: a template with other braces must not raise or leak fields
        url = settings.recordings_url_template.replace("{name}", quote(str(name), safe="/"))
        return Recording(url=url)
    if settings.recordings_dir is None:
        raise NotFound(
            "recording missing: the service has no RECORDINGS_DIR to read it from",
            code="recording.missing",
        )
    root = settings.recordings_dir.resolve()
    path = (root / name).resolve()
    # resolve() followed any symlink: what counts is where the file really is
    if not path.is_relative_to(root):
        raise NotFound(
            f"recording missing: {reported!r} is outside the recordings folder",
            code="recording.missing",
        )
    if not path.is_file():
        raise NotFound(
            f"recording missing: no file {str(name)!r} in the recordings folder",
            code="recording.missing",
        )
    return Recording(path=path)
