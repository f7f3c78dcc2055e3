"""Temporal stage: carry chroma along optical flow so independently coloured frames stop flickering.

Interface the pipeline calls (streaming, frame by frame, bounded memory whatever the film length)::

    stage = make_temporal_stage(TemporalOptions(flow="auto", mode="forward"))
    log.info("temporal: %s", stage.name)          # e.g. 'dis/forward', 'raft_small/...', 'none'
    for item in items:                            # TemporalItem(index, time, L, ab, payload)
        for ready in stage.push(item):            # finished items, in film order
            upsample_and_encode(ready)
    for ready in stage.flush():                   # end of film: whatever is still buffered
        upsample_and_encode(ready)
    cuts = stage.cuts                             # [(frame index, time), ...] of detected hard cuts

- ``TemporalItem.L`` is (1, h, w) lightness 0..100 and ``ab`` is (2, h, w) predicted ab in Lab
  units, both float32 at working resolution on ``options.device``; the stage returns items with
  ``ab`` replaced by the stabilised chroma and ``index``, ``time``, ``L``, ``payload`` untouched.
- ``options.model_every`` n > 1 (forward mode): only every n-th item needs ``ab``; the others
  may come with None and get the last prediction carried along the flow, and the ``predict``
  given to ``make_temporal_stage`` colours one that starts a shot.
- ``mode='forward'`` returns each item from the same ``push`` (no latency, one frame of state).
- ``mode='bidirectional'`` holds at most ``window`` items and returns each after at most
  ``window - 1`` further pushes; ``flush`` returns the rest. Every item comes back exactly once.
- ``flow='none'`` is the identity stage; 'auto' is RAFT-small on CUDA when its weights are cached
  (or given by ``flow_weights``), else DIS on CPU. RAFT without weights offline is a FlowError.
- At a detected cut nothing is carried across: the new shot starts from its prediction.

Modules: ``api`` (types), ``stabilize`` (the stages), ``flow`` (backends), ``warp`` (warping and
confidences), ``cuts``, ``padding``, ``metrics`` (warping error, CDC) and ``evaluate``
(``vidcolor eval-video``).
"""

from vidcolor.temporal.api import (
    BACKWARD_CHECK_CHOICES,
    DIS_PRESET_CHOICES,
    FLOW_CHOICES,
    FLOW_DOWNSCALE_CHOICES,
    MODE_CHOICES,
    TemporalItem,
    TemporalOptions,
    TemporalStage,
    option_default,
    option_help,
)


def __getattr__(name: str):  # the stages import torch: loaded when first used, not for --help
    if name in ("make_temporal_stage", "run_stage_on_sequence"):
        from vidcolor.temporal import stabilize

        return getattr(stabilize, name)
    raise AttributeError(f"module 'vidcolor.temporal' has no attribute {name!r}")


__all__ = [
    "BACKWARD_CHECK_CHOICES",
    "DIS_PRESET_CHOICES",
    "FLOW_CHOICES",
    "FLOW_DOWNSCALE_CHOICES",
    "MODE_CHOICES",
    "TemporalItem",
    "TemporalOptions",
    "TemporalStage",
    "make_temporal_stage",
    "option_default",
    "option_help",
    "run_stage_on_sequence",
]
