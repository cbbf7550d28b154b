"""The world model's flow head for pixel features (``lam.head: flow``, :class:`FlowHead`; beyond
the paper).

The paper's world model predicts the next step's V-JEPA 2 features. On pixel patches (the
embedded default's exact patch encoder) a plain feature head learns the direction of motion but
moves content by a small fraction of the distance and blurs into patch-sized blocks: predicting
pixels is a regression that averages. Predicting *how pixels move* keeps them sharp, so here the
head predicts, per merged token, a few flow vectors and a fill:

* **flow** ``f`` (pixels, backward: the pixel at ``x`` of step t+1 comes from ``x + f(x)`` of
  step t), ``flow_grid × flow_grid`` vectors per frame, upsampled bilinearly to every pixel;
* **warp**: step t+1 = step t sampled at ``x + f(x)`` (``grid_sample``, bilinear, border
  padding);
* **fill** ``r``: added only where the warp has no source pixels (content entering the view),
  weighted by ``1 − v`` with ``v`` the fraction of the sample that fell inside the frame. Where
  the source exists the fill has no gradient, so it cannot become a shortcut around the flow (a
  gated residual everywhere did, in measured experiments: the motion came from the residual and
  the frames blurred).

Rollouts compose the flows and sample the last real frame once (:class:`FlowComposer`): resampling
the previous prediction at every step would blur the detail by bilinear interpolation step after
step. Only pixels with no source in that anchor frame come from the previous prediction. A
composed step costs two ``grid_sample`` calls (one on the first step): the in-frame shares are
computed in closed form (:func:`inside_share`) and samples at the same points share one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lam_core.config import LAMConfig
from lam_core.models.head import WorldModelHead
from lam_core.nn import split_tokens, unpatchify


def pixel_grid(height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """``(1, H, W, 2)`` normalised ``grid_sample`` coordinates (x, y) of the pixel centres
    (``align_corners=False``)."""
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


def sample_at(image: torch.Tensor, flow: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Backward warp: ``out(x) = image(x + flow(x))``, bilinear.

    Args:
        image: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` displacement (x, y) in pixels.
        padding: ``"border"`` (repeat edge pixels) or ``"zeros"``.
    """
    _, _, h, w = image.shape
    scale = torch.tensor([2.0 / w, 2.0 / h], device=flow.device, dtype=flow.dtype)
    grid = pixel_grid(h, w, flow.device, flow.dtype) + flow.permute(0, 2, 3, 1) * scale
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode=padding,
                         align_corners=False)


def validity(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)``: the share of each backward sample ``x + flow(x)`` inside the frame (1
    inside, falling linearly to 0 within a pixel outside the border)."""
    b, _, h, w = flow.shape
    ones = flow.new_ones(b, 1, h, w)
    return sample_at(ones, flow, padding="zeros")


def inside_share(flow: torch.Tensor) -> torch.Tensor:
    """:func:`validity` in closed form (no ``grid_sample``): ``(B, 2, H, W)`` → ``(B, 1, H, W)``.

    Bilinear sampling of an all-ones image with zero padding is separable: at the source point
    ``u = x + f_x`` (pixel units) the taps inside the frame weigh ``clamp(min(u + 1, W − u), 0,
    1)``, likewise along y, and the share is the product. Equal to :func:`validity` to float
    rounding, and so are the gradients away from whole-pixel kinks (``tests/test_fast_paths.py``).
    """
    _, _, h, w = flow.shape
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[:, None]
    u, v = flow[:, 0] + xs, flow[:, 1] + ys  # B, H, W: source points in pixels
    share_x = torch.minimum(u + 1, w - u).clamp(0, 1)
    share_y = torch.minimum(v + 1, h - v).clamp(0, 1)
    return (share_x * share_y)[:, None]


def upsample_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 2, g, g)`` flow vectors → ``(B, 2, H, W)``, bilinear (values stay in pixels)."""
    if flow.shape[-2:] == (height, width):
        return flow
    return F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)


UPSAMPLINGS = ("bilinear", "convex")  # lam.flow_upsample


def convex_upsample(flow: torch.Tensor, logits: torch.Tensor, factor: int) -> torch.Tensor:
    """RAFT's convex upsampling: ``(B, 2, g, g)`` flow and ``(B, 9, u, u, g, g)`` logits → ``(B,
    2, g·u, g·u)``, each fine pixel the softmax-weighted mean of its coarse cell's 3 × 3
    neighbourhood (edge cells repeat the border, as bilinear upsampling does)."""
    b, _, g, _ = flow.shape
    weights = logits.softmax(dim=1)  # B, 9, u, u, g, g
    neighbours = F.unfold(F.pad(flow, (1, 1, 1, 1), mode="replicate"), 3)  # B, 2·9, g·g
    neighbours = neighbours.view(b, 2, 9, 1, 1, g, g)
    fine = (weights[:, None] * neighbours).sum(dim=2)  # B, 2, u, u, g, g
    return fine.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, g * factor, g * factor)


def bilinear_logits(factor: int) -> torch.Tensor:
    """``(9, u, u)`` logits whose softmax is bilinear upsampling's weights
    (``align_corners=False``) over a cell's 3 × 3 neighbourhood: :func:`convex_upsample` with
    them equals :func:`upsample_flow`. Zero weights get a logit of −30 (exp −30 ≈ 1e-13)."""
    d = (torch.arange(factor, dtype=torch.float64) + 0.5) / factor - 0.5  # offset in cells
    taps = torch.stack([(-d).clamp(min=0), 1 - d.abs(), d.clamp(min=0)])  # 3 (before, at, after), u
    w = taps[:, None, :, None] * taps[None, :, None, :]  # 3 (rows), 3 (cols), u (i), u (j)
    w = w.reshape(9, factor, factor)
    return torch.where(w > 0, w.clamp(min=1e-30).log(), torch.full_like(w, -30.0)).float()


class FlowHead(WorldModelHead):
    """``lam.head: flow``: how the head's per-token outputs map to flow fields and fills.

    Each of the ``m × m`` merged tokens outputs ``2 r²`` flow values (an ``r × r`` block of the
    ``flow_grid × flow_grid`` field, ``r = flow_grid / m``, ``m = grid / token_merge``) then
    ``k² D`` fill values (its pixels). The output layer starts at zero: no flow, no fill, so an
    untrained model copies the last frame.

    Args:
        cfg: the LAM config (``grid``, ``token_merge``, ``patch_size``, ``flow_grid``).
        width: the world model's width.
        scale: pixels per unit of the flow output.
    """

    def __init__(self, cfg: LAMConfig, width: int, scale: float = 2.0):
        super().__init__(cfg, width)
        self.grid, self.merge, self.patch = cfg.grid, cfg.token_merge, cfg.patch_size
        self.merged = self.grid // self.merge
        self.flow_grid, self.r, self.scale = cfg.flow_grid, cfg.flow_grid // self.merged, scale
        self.size = self.grid * self.patch
        self.flow_dim = 2 * self.r * self.r
        self.factor = self.size // self.flow_grid
        self.mask = None  # convex upsampling: 9 · u² logits per flow vector, from the tokens
        if cfg.flow_upsample == "convex" and self.factor > 1:
            self.mask = nn.Linear(width, 9 * self.factor**2 * self.r * self.r)
            nn.init.zeros_(self.mask.weight)  # starts as bilinear upsampling
            with torch.no_grad():
                # per token: its r × r flow vectors, each with its (9, u, u) logits
                self.mask.bias.copy_(bilinear_logits(self.factor)[None].expand(
                    self.r * self.r, -1, -1, -1).reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The flow and fill outputs, then (convex upsampling) the mask logits."""
        out = super().forward(x)
        return out if self.mask is None else torch.cat([out, self.mask(x)], dim=-1)

    @classmethod
    def check(cls, cfg: LAMConfig) -> None:
        pixels = 3 * cfg.patch_size**2
        if cfg.patch_size < 1 or cfg.feature_dim != pixels:
            raise ValueError(f"lam.head: flow needs RGB patch features (encoder.kind patch with "
                             f"encoder.tubelet 1: lam.patch_size ≥ 1 and lam.feature_dim = 3 · "
                             f"patch_size²), not patch_size {cfg.patch_size} and feature_dim "
                             f"{cfg.feature_dim}")
        merged = cfg.grid // max(cfg.token_merge, 1)
        if merged < 1 or cfg.flow_grid < merged or cfg.flow_grid % merged:
            raise ValueError(f"lam.flow_grid: must be a multiple of the merged token grid "
                             f"({merged} = grid / lam.token_merge), not flow_grid {cfg.flow_grid}")
        if cfg.flow_l1 < 0:
            raise ValueError(f"lam.flow_l1: must be ≥ 0, not {cfg.flow_l1}")
        if cfg.flow_upsample not in UPSAMPLINGS:
            raise ValueError(f"lam.flow_upsample: must be one of {', '.join(UPSAMPLINGS)}, not "
                             f"{cfg.flow_upsample!r}")

    @classmethod
    def output_dim(cls, cfg: LAMConfig) -> int:
        r = cfg.flow_grid // (cfg.grid // cfg.token_merge)
        return 2 * r * r + cfg.token_merge**2 * cfg.feature_dim

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Head outputs ``(B, S, m², out_dim)`` → flow ``(B·S, 2, H, W)`` in pixels and fill
        ``(B·S, 3, H, W)``."""
        b, s = out.shape[:2]
        fill_dim = self.out_dim - self.flow_dim
        flow_tokens, fill_tokens, mask_tokens = out.float().split(
            [self.flow_dim, fill_dim, out.shape[-1] - self.out_dim], dim=-1)
        flow = unpatchify(flow_tokens, 1, self.r, self.merged, self.merged)  # B, S, 2, g, g
        flow = flow.reshape(b * s, 2, self.flow_grid, self.flow_grid) * self.scale
        fill = split_tokens(fill_tokens, self.grid, self.grid, self.merge)  # B, S, N, p²·3
        fill = unpatchify(fill, 1, self.patch, self.grid, self.grid)
        fill = fill.reshape(b * s, 3, self.size, self.size)
        if self.mask is None:
            return upsample_flow(flow, self.size, self.size), fill
        logits = unpatchify(mask_tokens, 1, self.r, self.merged, self.merged)  # B, S, 9u², g, g
        logits = logits.reshape(b * s, 9, self.factor, self.factor, self.flow_grid,
                                self.flow_grid)
        return convex_upsample(flow, logits, self.factor), fill

    def image(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(B, S, N, p²·3)`` → frames ``(B·S, 3, H, W)``."""
        b, s = features.shape[:2]
        return unpatchify(features.float(), 1, self.patch, self.grid, self.grid).reshape(
            b * s, 3, self.size, self.size)

    def features(self, image: torch.Tensor, b: int) -> torch.Tensor:
        """Frames ``(B·S, 3, H, W)`` → features ``(B, S, N, p²·3)``."""
        p, g = self.patch, self.grid
        x = image.reshape(b, -1, 3, g, p, g, p).permute(0, 1, 3, 5, 4, 6, 2)
        return x.reshape(b, x.shape[1], g * g, p * p * 3)

    def next_steps(self, out, features, state=None):
        """The last frame warped by the flow plus the fill (:func:`warp_step`), or with a
        :class:`FlowComposer` (rollouts) composed from its anchor; the extras are the flow
        ``(B·S, 2, H, W)``."""
        flow, fill = self.split(out)
        prev = self.image(features)
        nxt = state.step(prev, flow, fill) if state is not None else warp_step(prev, flow, fill)
        return self.features(nxt, out.shape[0]).to(features.dtype), flow

    def rollout_state(self, context: torch.Tensor) -> FlowComposer:
        """Compose the flows from the last real frame (sharp: it is sampled once)."""
        return FlowComposer(self.image(context[:, -1:]))

    def displacement(self, state: FlowComposer | None) -> torch.Tensor | None:
        """The composer's displacement ``D_t`` ``(B, 2, H, W)`` from the anchor (the last real
        frame) after the latest step."""
        return None if state is None else state.displacement

    def loss_terms(self, extras, cfg):
        """``flow_px`` (the mean flow magnitude, pixels) and ``flow_l1`` times it."""
        magnitude = extras.norm(dim=1).mean()
        return (cfg.flow_l1 * magnitude if cfg.flow_l1 > 0 else None), {
            "flow_px": magnitude.detach()}


def warp_step(prev: torch.Tensor, flow: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """One step: ``prev`` ``(B, 3, H, W)`` warped by ``flow``, plus ``fill`` where the warp has no
    source (weighted by ``1 − v``)."""
    return sample_at(prev, flow) + (1 - validity(flow)) * fill


class FlowComposer:
    """Rollout state of the flow head: the composed displacement from the anchor frame.

    With ``D_t`` the displacement that maps step t's pixels into the anchor (the last real
    frame), a step with flow ``f`` gives ``D_t+1(x) = f(x) + D_t(x + f(x))`` and

    ``ŝ_t+1 = v_A · A(x + D_t+1(x)) + (1 − v_A) · ŝ_t(x + f(x)) + (1 − v) · fill``

    where ``v_A`` and ``v`` are the in-frame shares of the anchor and the local sample. The first
    step equals :func:`warp_step` (to float rounding); later ones sample the anchor once (sharp)
    and take only what the anchor cannot provide from the previous prediction.

    Cost per step: ``D_t`` and ``ŝ_t`` are sampled at ``x + f`` in one ``grid_sample`` call, the
    anchor at ``x + D_t+1`` in a second (on the first step ``D_t = 0``, so the anchor joins the
    first call), and ``v_A``, ``v`` come from :func:`inside_share`.

    Args:
        anchor: ``(B, 3, H, W)`` the last real frame; ``B = 1`` is broadcast to the batch of the
            flows (candidates that share a start, :meth:`WorldModel.rollout`).
    """

    def __init__(self, anchor: torch.Tensor):
        self.anchor = anchor.float()
        self.displacement: torch.Tensor | None = None  # None: zero (no step taken yet)

    def step(self, prev: torch.Tensor, flow: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """``prev`` ``(B, 3, H, W)`` the step the flow starts from → the next step."""
        b = flow.shape[0]
        anchor = self.anchor.expand(b, -1, -1, -1)
        prev = prev.float().expand(b, -1, -1, -1)
        v_local = inside_share(flow)
        if self.displacement is None:  # D_t = 0: D_t+1 = f, and both samples are at x + f
            anchored, local = sample_at(torch.cat([anchor, prev], dim=1), flow).split(3, dim=1)
            disp, v_anchor = flow, v_local
        else:
            moved, local = sample_at(torch.cat([self.displacement, prev], dim=1),
                                     flow).split([2, 3], dim=1)
            disp = flow + moved
            v_anchor = inside_share(disp)
            anchored = sample_at(anchor, disp)
        self.displacement = disp
        composed = torch.lerp(local, anchored, v_anchor)  # v_A · anchored + (1 − v_A) · local
        return composed.addcmul_(1 - v_local, fill)
