"""Download a published file, check it against the publisher's checksum, never leave a bad copy.

``download`` wraps ``pooch.retrieve`` (REFERENCE.md: prefer a well-kept fetcher to hand-written
code). Pooch streams into a temporary file next to the target, checks the hash, and only then
moves the file into place, so an interrupted or corrupt download leaves nothing behind. Around
it this module adds what the pipeline needs:

- retries with exponential backoff for transient failures (HTTP 5xx and 429, timeouts,
  refused or dropped connections, a body shorter than its Content-Length); a 4xx answer or a
  checksum mismatch is final and is not retried;
- one-line ``DataError`` messages naming the URL and the cause (exit code 3);
- a progress bar (tqdm, through pooch) only when stderr is a terminal.

``extract_tar`` unpacks an archive and refuses any member that would land outside the folder.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tarfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.plumbing.errors import DataError
from pipeline.plumbing.progress import wanted as progress_wanted

TRANSIENT_STATUS = {429}  # plus every 5xx


def _file_name(url: str) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    return name or "download"


def _file_hash(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches_checksums(path: Path, sha256: str | None, md5: str | None) -> bool | None:
    """Whether ``path`` matches the given checksums (None when none is given)."""
    if not sha256 and not md5:
        return None
    return all(
        _file_hash(path, algorithm) == expected.lower()
        for algorithm, expected in (("sha256", sha256), ("md5", md5))
        if expected
    )


def _classify(exc: BaseException, url: str, timeout: float) -> tuple[str, bool]:
    """(one-line cause, whether another attempt may help) for a failed attempt."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        reason = exc.response.reason or ""
        transient = status >= 500 or status in TRANSIENT_STATUS
        hint = "the server is failing or busy; try again later" if transient else "check the url setting"
        return f"HTTP {status} {reason}".strip() + f" ({hint})", transient
    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL)):
        return "not a valid http(s) address (check the url setting)", False
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s (timeout; slow network or server down)", True
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "the connection was cut before the whole file arrived (truncated download)", True
    if isinstance(exc, requests.ConnectionError):
        return "could not connect (no network, or the server is unreachable)", True
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__})", True
    return f"{type(exc).__name__}: {exc}", False


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def download(
    url: str,
    dest_dir: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    name: str | None = None,
    retries: int = 3,
    timeout: float = 30,
    backoff: float = 1.0,
    progress: bool | None = None,
) -> Path:
    """Fetch ``url`` into ``dest_dir/name`` (default: the URL's last path component).

    The file is checked against ``sha256`` and/or ``md5`` when given (with neither, pooch logs its
    SHA-256 so it can be pinned). A file already there with the right hash (or, with no hash
    given, any file already there) is reused; one with a wrong hash is replaced.
    ``retries`` extra attempts follow a transient failure, after ``backoff * 2**i`` seconds.
    ``timeout`` (seconds) bounds the connection and each wait for data, not the whole transfer.
    Every failure raises ``DataError`` and leaves no new file in ``dest_dir``.
    """
    import pooch
    import requests

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError(f"download of {url} failed: not a valid http(s) address (check the url setting)")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (name or _file_name(url))
    if target.is_file() and _matches_checksums(target, sha256, md5) is False:
        target.unlink()  # a stale or corrupt copy from an earlier run
    before = set(dest.iterdir())
    if sha256:
        known_hash = f"sha256:{sha256.lower()}"
    elif md5:
        known_hash = f"md5:{md5.lower()}"
    else:
        known_hash = None
    downloader = pooch.HTTPDownloader(
        progressbar=progress_wanted() if progress is None else progress, timeout=timeout
    )

    def fail(cause: str) -> DataError:
        for path in set(dest.iterdir()) - before:  # pooch cleans its temporary file; be sure
            path.unlink(missing_ok=True)
        return DataError(f"download of {url} failed: {_one_line(cause)}")

    attempts = 1 + max(0, retries)
    for attempt in range(attempts):
        try:
            pooch.retrieve(url, known_hash, fname=target.name, path=dest, downloader=downloader)
            break
        except (requests.RequestException, OSError) as exc:
            cause, transient = _classify(exc, url, timeout)
            if not transient or attempt == attempts - 1:
                tries = f"; gave up after {attempt + 1} attempts" if attempt else ""
                raise fail(cause + tries) from None
            wait = backoff * 2**attempt
            logging.getLogger(__name__).warning(
                "download of %s failed (%s); retrying in %.2g s", url, cause, wait
            )
            time.sleep(wait)
        except ValueError as exc:  # pooch: hash mismatch (a corrupt or changed file)
            if "hash" not in str(exc).lower():
                raise fail(f"ValueError: {exc}") from None
            algorithm = "sha256" if sha256 else "md5"
            expected = known_hash.split(":", 1)[1]
            got = re.search(r"got ([0-9a-fA-F]+)", str(exc))
            raise fail(
                f"{algorithm} checksum mismatch (expected {expected}, got {got.group(1) if got else '?'}); "
                f"the file changed at its address or arrived corrupt: check the url and {algorithm} settings"
            ) from None
    if sha256 and md5:  # pooch checked the SHA-256; check the MD5 as well
        got = _file_hash(target, "md5")
        if got != md5.lower():
            target.unlink(missing_ok=True)
            raise fail(f"md5 checksum mismatch (expected {md5.lower()}, got {got}): check the url and md5 settings")
    return target


def extract_tar(archive: Path | str, dest_dir: Path | str) -> Path:
    """Unpack ``archive`` into ``dest_dir``; refuse members that would escape it (``..``,
    absolute paths, links pointing outside, devices). Returns ``dest_dir``."""
    archive, dest = Path(archive), Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                where = (root / member.name).resolve()
                if not where.is_relative_to(root) or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise DataError(f"archive {archive.name}: member '{member.name}' would escape {dest} or is not a plain file; refusing to extract")
                if member.issym() or member.islnk():
                    base = where.parent if member.issym() else root
                    if not (base / member.linkname).resolve().is_relative_to(root):
                        raise DataError(f"archive {archive.name}: link '{member.name}' points outside {dest}; refusing to extract")
            # the 'data' filter (Python 3.12, backported to 3.11.4) repeats these checks and drops modes
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"archive {archive}: cannot be unpacked ({_one_line(exc)}); delete it and fetch again") from None
    return dest
