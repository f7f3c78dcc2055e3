"""vidcolor: colour black-and-white film, keeping its luminance, timing and sound.

Library entry points (the CLI only calls these)::

    from vidcolor import colorize_video, colorize_image, ColorizeOptions
    colorize_video("film.mp4", "color.mp4", ColorizeOptions(pipeline="quality"))
"""

from __future__ import annotations

import os

# Idle OpenMP threads must sleep, not spin: decode, encode and optical flow share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_PIPELINE = ("ColorizeOptions", "VideoResult", "colorize_image", "colorize_paths",
             "colorize_video")


def __getattr__(name: str):  # torch loads with the pipeline, not with `vidcolor --help`
    if name in _PIPELINE:
        from vidcolor import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'vidcolor' has no attribute {name!r}")


__all__ = [
    "ColorizeOptions",
    "VideoResult",
    "__version__",
    "colorize_image",
    "colorize_paths",
    "colorize_video",
]
