"""The file_sd JSON file that Prometheus's `file_sd_configs` reads.

    writer = FileSdWriter("/srv/prometheus/kuma.file_sd.json")
    writer.check_writable()          # at start: fail early with a clear error
    writer.write(groups)             # True when the file changed

The file is a JSON array of `{"targets": [...], "labels": {...}}` objects indented with four
spaces (as Prometheus's custom-sd adapter writes it). It is replaced atomically: the content goes
to a temporary `sd-adapter*` file in the same directory, which is then renamed over the target,
so Prometheus never reads a half-written file. Nothing is written when the content would not
change, including after a restart when the file already holds the same targets.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kuma.errors import KumaError
from kuma.sd.targets import TargetGroup

__all__ = ["FileSdWriter", "OutputFileError", "render"]

TEMP_PREFIX = "sd-adapter"


class OutputFileError(KumaError):
    """The output file (or its directory) cannot be written."""


def render(groups: Iterable[TargetGroup]) -> bytes:
    """The file's content for `groups`, in the order given."""
    doc = [g.to_json() for g in groups]
    return json.dumps(doc, indent=4, ensure_ascii=False).encode()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FileSdWriter:
    """Writes target groups to one file, atomically and only on change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._mode = 0o644 & ~_current_umask()  # mkstemp's 0600 would hide it from Prometheus
        self._last: bytes | None = None

    @property
    def directory(self) -> Path:
        return self.path.parent

    def check_writable(self) -> None:
        """Create the directory if missing and prove a file can be created in it.

        Raises OutputFileError naming the directory and the reason.
        """
        where = str(self.directory)
        if self.path.is_dir():
            raise OutputFileError(f'unable to write to "{self.path}": it is a directory')
        if self.directory.exists() and not self.directory.is_dir():
            raise OutputFileError(f'unable to write to directory "{where}": not a directory')
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputFileError(
                f'unable to write to directory "{where}": unable to create it: {e.strerror or e}'
            ) from e
        try:
            fd, name = tempfile.mkstemp(dir=self.directory, prefix="write-access-check")
        except OSError as e:
            raise OutputFileError(
                f'unable to write to directory "{where}": unable to create temporary files '
                f"in it: {e.strerror or e}"
            ) from e
        os.close(fd)
        os.unlink(name)

    def write(self, groups: Iterable[TargetGroup]) -> bool:
        """Replace the file with `groups` unless it already holds exactly that content.

        Returns whether the file was written. Raises OutputFileError when it cannot be; a later
        call tries again.
        """
        content = render(groups)
        if self._last is None:
            with contextlib.suppress(OSError):
                self._last = self.path.read_bytes()
        if content == self._last:
            return False
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX)
        except OSError as e:
            raise OutputFileError(
                f'unable to create a temporary file in "{self.directory}": {e.strerror or e}'
            ) from e
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                os.fchmod(f.fileno(), self._mode)
            os.replace(tmp, self.path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OutputFileError(f'unable to write "{self.path}": {e.strerror or e}') from e
        self._last = content
        return True
