"""The README renderer's child process: ``python -m ministry.catalog.readme_worker``.

readme_renderer (docutils above all) can take seconds per hundred kilobytes
and holds the interpreter while it runs, so the daemon never runs it itself:
it sends each README here and waits without blocking
(``ministry.catalog.readmes``). The parent kills this process whenever a render
runs past its time budget, so nothing is kept here between requests; a
README that exhausts the memory limit fails alone.

Frames, both ways: a 4-byte big-endian length, then that many bytes. Once
its imports are done the child sends :data:`READY`. Each request is two
frames (a JSON header with the content type and heading offset, then the
UTF-8 text); each answer is one frame, ``+`` and the HTML, or ``-`` and why
the render failed. The child ends when its input does (the parent is gone).
"""

from __future__ import annotations

import importlib
import json
import resource
import signal
import struct
import sys
from typing import BinaryIO

READY = b"ready"

#: The child's address space: plenty for docutils on a megabyte of text.
MEMORY_LIMIT = 1024**3

_LENGTH = struct.Struct(">I")


def frame(payload: bytes) -> bytes:
    """One frame: the payload's length, then the payload."""
    return _LENGTH.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's payload, or None at the end of the input."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def answer(header: bytes, text: bytes) -> bytes:
    """The answer frame's payload for one request."""
    from ministry.core.readme import render_readme

    options = json.loads(header)
    try:
        html = render_readme(
            text.decode("utf-8"), options["content_type"], options["heading_offset"]
        )
    except Exception as exc:  # any failure means "show it as text"
        return b"-" + repr(exc).encode("utf-8", "replace")
    return b"+" + html.encode("utf-8")


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the input ends."""
    answers.write(frame(READY))
    answers.flush()
    while (header := read_frame(requests)) is not None:
        text = read_frame(requests)
        if text is None:
            return
        answers.write(frame(answer(header, text)))
        answers.flush()


def main() -> None:
    # Ctrl-C at a twistd in the foreground reaches us too: the parent stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    # Imported before READY, so that no render's budget pays for them.
    for renderer in ("markdown", "rst", "txt"):
        importlib.import_module(f"readme_renderer.{renderer}")

    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing a renderer prints may corrupt the frames
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
