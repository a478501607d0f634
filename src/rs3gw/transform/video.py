"""Video transcoding through the ``ffmpeg`` binary, offered only when it is on PATH.

ffmpeg runs on temporary files (containers such as MP4 need to seek), under a wall-clock limit.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rs3gw.transform.args import Args
from rs3gw.transform.spec import Step, invalid
from rs3gw.transform.stage import BUFFER, Stage

STEPS = frozenset({"video"})
CODECS = {"h264": "libx264", "h265": "libx265", "vp8": "libvpx", "vp9": "libvpx-vp9", "av1": "libaom-av1"}
CONTAINERS = {"mp4": "video/mp4", "webm": "video/webm", "mkv": "video/x-matroska"}


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


@dataclass(frozen=True)
class _Options:
    container: str
    codec: str
    bitrate: int | None
    fps: int | None
    w: int | None
    h: int | None


def _options(step: Step) -> _Options:
    a = Args(step, "format")
    opts = _Options(
        container=a.choice("format", CONTAINERS, "mp4") or "mp4",
        codec=a.choice("codec", CODECS, "h264") or "h264",
        bitrate=a.integer("bitrate", 16, 200_000),  # kbit/s
        fps=a.integer("fps", 1, 240),
        w=a.integer("w", 16, 7680),
        h=a.integer("h", 16, 4320),
    )
    a.done()
    return opts


def _command(exe: str, src: Path, dst: Path, o: _Options) -> list[str]:
    cmd = [exe, "-nostdin", "-y", "-loglevel", "error", "-i", str(src), "-c:v", CODECS[o.codec]]
    if o.bitrate is not None:
        cmd += ["-b:v", f"{o.bitrate}k"]
    if o.fps is not None:
        cmd += ["-r", str(o.fps)]
    if o.w is not None or o.h is not None:
        cmd += ["-vf", f"scale={o.w or -2}:{o.h or -2}"]
    return [*cmd, str(dst)]


def compile_video(step: Step, timeout: float) -> Stage:
    exe = ffmpeg_path()
    if exe is None:
        raise invalid("video transcoding needs ffmpeg, which is not installed on this server")
    opts = _options(step)

    def apply(data: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="rs3gw-video-") as tmp:
            src, dst = Path(tmp) / "in", Path(tmp) / f"out.{opts.container}"
            src.write_bytes(data)
            try:
                done = subprocess.run(
                    _command(exe, src, dst, opts), capture_output=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise invalid(f"video transcoding took longer than {timeout:g} s") from None
            if done.returncode != 0 or not dst.exists():
                raise invalid("ffmpeg could not transcode the object (is it a video?)")
            return dst.read_bytes()

    return Stage("video", BUFFER, CONTAINERS[opts.container], apply=apply)
