"""``pipeline.plumbing.download`` against a local HTTP server that misbehaves on purpose.

Every failure must end in one ``DataError`` line naming the URL and the cause, after the right
number of attempts, with nothing left behind in the destination folder.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.plumbing.download import download, extract_tar
from pipeline.plumbing.errors import DataError

BODY = bytes(range(256)) * 40  # 10,240 bytes
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
FAST = {"backoff": 0.01, "progress": False}


class Misbehaving(BaseHTTPRequestHandler):
    """``/<behaviour>/data.bin``; the server counts the requests per behaviour."""

    def do_GET(self):  # noqa: N802 (the http.server API)
        behaviour = self.path.strip("/").split("/")[0]
        self.server.hits[behaviour] += 1
        try:
            if behaviour == "ok" or (behaviour == "flaky" and self.server.hits[behaviour] > 1):
                self.reply(200, BODY)
            elif behaviour in ("flaky", "error"):
                self.reply(500, b"internal error")
            elif behaviour == "truncated":  # Content-Length promises more than is sent
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY[:1000])
            elif behaviour == "wrong":
                self.reply(200, BODY[::-1])
            elif behaviour == "slow":
                self.server.stop.wait(5)  # far beyond the client's 1 s timeout
                self.reply(200, BODY)
            else:
                self.reply(404, b"not found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as intended

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    httpd.hits, httpd.stop = Counter(), threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def hits(server):
    server.hits.clear()
    return server.hits


def url_for(server, behaviour: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{behaviour}/data.bin"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- success


def test_download_writes_the_verified_file(server, hits, tmp_path):
    url = url_for(server, "ok")
    path = download(url, tmp_path, sha256=SHA256, md5=MD5, **FAST)
    assert path == tmp_path / "data.bin"
    assert path.read_bytes() == BODY
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]
    assert hits["ok"] == 1


def test_download_without_checksum_and_under_another_name(server, hits, tmp_path):
    path = download(url_for(server, "ok"), tmp_path / "sub", name="copy.bin", **FAST)
    assert path == tmp_path / "sub" / "copy.bin" and path.read_bytes() == BODY


def test_a_verified_copy_is_reused_and_a_stale_one_replaced(server, hits, tmp_path):
    url = url_for(server, "ok")
    download(url, tmp_path, sha256=SHA256, **FAST)
    download(url, tmp_path, sha256=SHA256, **FAST)
    assert hits["ok"] == 1  # the second call found the file and its hash right
    (tmp_path / "data.bin").write_bytes(b"stale")
    assert download(url, tmp_path, md5=MD5, **FAST).read_bytes() == BODY
    assert hits["ok"] == 2


def test_a_server_error_is_retried(server, hits, tmp_path):
    path = download(url_for(server, "flaky"), tmp_path, sha256=SHA256, retries=2, **FAST)
    assert path.read_bytes() == BODY
    assert hits["flaky"] == 2


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("behaviour", "options", "cause", "attempts"),
    [
        ("error", {"retries": 2}, "HTTP 500", 3),
        ("missing", {"retries": 2}, "HTTP 404", 1),  # a client error is final
        ("truncated", {"retries": 1}, "truncated", 2),  # caught without any checksum
        ("wrong", {"retries": 2, "sha256": SHA256}, "sha256 checksum mismatch", 1),
        ("wrong", {"retries": 2, "md5": MD5}, "md5 checksum mismatch", 1),
        ("slow", {"retries": 0, "timeout": 1}, "timeout", 1),
    ],
)
def test_failures_raise_one_clear_line_and_leave_nothing(server, hits, tmp_path, behaviour, options, cause, attempts):
    url = url_for(server, behaviour)
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        download(url, tmp_path, **FAST, **options)
    message = str(caught.value)
    assert url in message and cause in message and "\n" not in message
    assert hits[behaviour] == attempts
    assert list(tmp_path.iterdir()) == []
    assert time.monotonic() - started < 5


def test_no_network_is_reported_after_retries(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/data.bin"
    with pytest.raises(DataError) as caught:
        download(url, tmp_path, sha256=SHA256, retries=2, **FAST)
    message = str(caught.value)
    assert url in message and "could not connect" in message and "3 attempts" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1/data.bin"])
def test_an_invalid_address_is_reported_without_retries(tmp_path, url):
    started = time.monotonic()
    with pytest.raises(DataError, match="not a valid http"):
        download(url, tmp_path, retries=3, backoff=1, progress=False)
    assert time.monotonic() - started < 0.5  # no backoff: retrying cannot help
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_unrelated_files(server, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DataError):
        download(url_for(server, "wrong"), tmp_path, sha256=SHA256, **FAST)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------------------- extract_tar


def make_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_tar_unpacks_inside_the_folder(tmp_path):
    make_tar(tmp_path / "a.tar.gz", {"top/one.txt": b"1", "top/sub/two.txt": b"22"})
    out = extract_tar(tmp_path / "a.tar.gz", tmp_path / "out")
    assert (out / "top" / "one.txt").read_bytes() == b"1"
    assert (out / "top" / "sub" / "two.txt").read_bytes() == b"22"


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "top/../../evil.txt"])
def test_extract_tar_refuses_members_escaping_the_folder(tmp_path, name):
    make_tar(tmp_path / "a.tar.gz", {"ok.txt": b"fine", name: b"evil"})
    with pytest.raises(DataError, match="refusing"):
        extract_tar(tmp_path / "a.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written


def test_extract_tar_reports_a_corrupt_archive(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(DataError, match="cannot be unpacked"):
        extract_tar(tmp_path / "bad.tar.gz", tmp_path / "out")
