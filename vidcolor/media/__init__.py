"""Media I/O: decode native luma with exact timestamps, encode new chroma, copy other streams.

Typical use::

    info = probe_video(src)
    check_output_path(dest, inputs=[src], overwrite=False)      # fail fast, before models load
    reader = iter_frames(info)
    with VideoWriter(dest, source=info) as writer:
        for frame in reader:
            u, v = ...  # chroma planes, shape writer.chroma_shape, dtype frame.y.dtype
            writer.write_frame(frame, u, v)
    if reader.damaged:
        log.warning("%d damaged packets skipped", reader.damaged)
"""

from vidcolor.media.atomic import AtomicFile, atomic_output, check_output_path
from vidcolor.media.decode import (
    DecodedFrame,
    FrameReader,
    StreamSummary,
    VideoInfo,
    frame_to_rgb,
    iter_frames,
    luma_to_unit,
    probe_video,
    seek_frames,
)
from vidcolor.media.encode import (
    CODECS,
    CodecSpec,
    VideoWriter,
    choose_pix_fmt,
    encode_chroma,
)
from vidcolor.media.image import (
    IMAGE_EXTENSIONS,
    StillImage,
    is_image_path,
    load_image,
    read_image,
    write_image,
)

__all__ = [
    "CODECS",
    "IMAGE_EXTENSIONS",
    "AtomicFile",
    "CodecSpec",
    "DecodedFrame",
    "FrameReader",
    "StillImage",
    "StreamSummary",
    "VideoInfo",
    "VideoWriter",
    "atomic_output",
    "check_output_path",
    "choose_pix_fmt",
    "encode_chroma",
    "frame_to_rgb",
    "is_image_path",
    "iter_frames",
    "load_image",
    "luma_to_unit",
    "probe_video",
    "read_image",
    "seek_frames",
    "write_image",
]
