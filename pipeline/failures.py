"""Why a video failed, as one line that starts with a stable class token.

Every failure recorded in a store's manifest reads ``"<class>: <detail>"``: the class is one of
the tokens below, so tools (``merv status --failed``, tests, dashboards) can group failures
without parsing free text; the detail says what each reader or backend reported.
"""

from __future__ import annotations

MISSING = "missing"  # no such file, object, URL (404) or tar member
UNREACHABLE = "unreachable"  # network failure that outlived the bounded retry
UNREADABLE = "unreadable"  # exists but cannot be read: permission, I/O error
NOT_A_FILE = "not-a-file"  # a FIFO, device, socket, /proc or /sys file, or a folder: never read
EMPTY = "empty"  # zero bytes
TOO_LARGE = "too-large"  # over the byte cap for a remote copy, or absurd frame dimensions
NOT_VIDEO = "not-video"  # a readable file that is no media at all (text, archive, ...)
CORRUPT = "corrupt"  # looks like media but no backend can parse the container
NO_VIDEO_STREAM = "no-video-stream"  # media without a video stream (audio only, subtitles)
NO_FRAMES = "no-frames"  # a video stream, but no frame in it (or in the requested clip)
UNDECODABLE = "undecodable"  # the container parses, its frames do not decode
DUPLICATE_ID = "duplicate-id"  # a later entry reusing an id (the first one keeps it)
INVALID_ID = "invalid-id"  # empty, control characters, absolute or ``..`` path ids
INVALID_CLIP = "invalid-clip"  # start/end not numbers, negative, or end <= start
INVALID_ENTRY = "invalid-entry"  # a manifest entry without a usable video path
ENCODER = "encoder"  # decoded fine, an encoder failed on it (set by the encoder stage)
WORKER_CRASH = "worker-crash"  # its worker died (signal, OOM kill) on every bounded attempt

CLASSES = (
    MISSING,
    UNREACHABLE,
    UNREADABLE,
    NOT_A_FILE,
    EMPTY,
    TOO_LARGE,
    NOT_VIDEO,
    CORRUPT,
    NO_VIDEO_STREAM,
    NO_FRAMES,
    UNDECODABLE,
    DUPLICATE_ID,
    INVALID_ID,
    INVALID_CLIP,
    INVALID_ENTRY,
    ENCODER,
    WORKER_CRASH,
)


def one_line(text: object, limit: int = 300) -> str:
    """Collapse whitespace and cap the length, so a reason always fits one manifest line."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def reason_class(reason: str | None) -> str | None:
    """The class token of a recorded reason (``None`` for no reason or an unclassified one)."""
    if not reason:
        return None
    head = reason.split(":", 1)[0].strip()
    return head if head in CLASSES else None


class DecodeError(RuntimeError):
    """A video cannot be turned into frames; ``str(err)`` is ``"<kind>: <detail>"``, one line."""

    def __init__(self, kind: str, detail: str = ""):
        if kind not in CLASSES:
            raise ValueError(f"unknown failure class {kind!r}")
        self.kind = kind
        self.detail = one_line(detail or kind, 480)
        super().__init__(f"{kind}: {self.detail}")
