"""Results of the pipeline's evaluations: small dataclasses of videos, latents and errors
(paper §6: transfer, Table 2's cycle, Table 1's leakage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lam_core.clip import Clip


@dataclass
class TransferResult:
    """Actions of ``source`` replayed on ``target``.

    Attributes:
        source: the source as the model sees it (resampled, cropped), context + horizon steps.
        target: the target, same length.
        transferred: decoded target context followed by the prediction under the source's latents.
        target_own: the same rollout under the target's own latents, the reference the transfer
            is compared with (None when the target is shorter than the prediction, or without a
            decoder).
        latents: ``(H, D_z)`` source latents that drove the prediction.
        source_error: feature L1 of the source rolled out with its own latents (how well the
            model explains the source).
        target_error: the same on the target with its own latents.
        transfer_shift: feature L1 between the transferred prediction and the target's own
            rollout (how much the source's actions changed the target).
        context: context steps taken from the target.
        source_display, target_display: the source's and the target's display frames (the same
            frames and crop at the display resolution, e.g. long side ≤ 512), same length as
            ``source`` and ``target``; None unless display frames were given.
        transferred_display, target_own_display: ``transferred`` and ``target_own`` at the
            target's display resolution (docs/DESIGN.md#display-rendering): the real context's
            display frames, then the prediction rendered from the composed flow
            (``display_rendering == "flow"``), or, for a head without a flow, the decoded
            frames upsampled (``"upsampled"``, said in ``display_note``). None unless the
            target's display frames were given.
        display_rendering: ``"flow"``, ``"upsampled"`` or None (no display frames).
        display_note: a sentence for the user when the display frames are only upsampled, else
            ``""``.
    """

    source: Clip
    target: Clip
    transferred: Clip
    target_own: Clip | None
    latents: np.ndarray
    source_error: float
    target_error: float
    transfer_shift: float
    context: int
    source_display: Clip | None = None
    target_display: Clip | None = None
    transferred_display: Clip | None = None
    target_own_display: Clip | None = None
    display_rendering: str | None = None
    display_note: str = ""


@dataclass
class CycleResult:
    """Cycle A → B → A (paper Table 2): errors of A's rollout with its own latents (direct) and
    with latents re-inferred from B's transferred prediction (cycled).

    ``ratio = cycled / direct``. With display frames of A and B, ``direct_display``,
    ``transferred_display`` and ``cycled_display`` are the three videos at A's, B's and A's
    display resolution (as :class:`TransferResult`'s ``transferred_display``; ``display_rendering``
    and ``display_note`` likewise), and ``source_display`` is A's display frames, same length.
    """

    direct: Clip | None
    transferred: Clip | None
    cycled: Clip | None
    direct_error: float
    cycled_error: float
    ratio: float
    direct_errors: np.ndarray
    cycled_errors: np.ndarray
    source_display: Clip | None = None
    direct_display: Clip | None = None
    transferred_display: Clip | None = None
    cycled_display: Clip | None = None
    display_rendering: str | None = None
    display_note: str = ""


@dataclass
class LeakageResult:
    """Future leakage (paper Table 1): one-step errors with IDM latents on A and on A whose end was
    replaced by B's from step ``cut``; ``ratio`` is the error at the cut over the error there
    without the cut."""

    errors: np.ndarray
    errors_cut: np.ndarray
    cut: int
    ratio: float
    stitched: Clip
