"""Shared layers: RoPE relative positions, frame-causal masks, (un)patchify."""

import torch

from lam_core.nn import (
    Block,
    RoPE3D,
    frame_causal_mask,
    grid_positions,
    merge_tokens,
    patchify,
    shared_rotation,
    split_tokens,
    unpatchify,
)


def test_rope_scores_depend_only_on_relative_positions():
    torch.manual_seed(0)
    rope = RoPE3D(head_dim=24)
    q, k = torch.randn(1, 1, 2, 24), torch.randn(1, 1, 2, 24)
    pos = torch.tensor([[1, 2, 3], [4, 0, 5]])

    def score(p):
        qr = rope(q[:, :, :1], p[:1])
        kr = rope(k[:, :, 1:], p[1:])
        return (qr * kr).sum()

    base = score(pos)
    for shift in ([1, 0, 0], [0, 3, 0], [0, 0, 7], [5, -2, 11]):
        torch.testing.assert_close(score(pos + torch.tensor(shift)), base, atol=1e-4, rtol=0)
    assert not torch.allclose(score(torch.tensor([[1, 2, 3], [5, 0, 5]])), base, atol=1e-3)


def test_rope_is_identity_at_origin_and_sees_every_axis():
    torch.manual_seed(0)
    rope = RoPE3D(head_dim=24)
    x = torch.randn(1, 1, 1, 24)
    torch.testing.assert_close(rope(x, torch.zeros(1, 3, dtype=torch.long)), x)
    q, k = torch.randn(1, 1, 1, 24), torch.randn(1, 1, 1, 24)
    zero = torch.zeros(1, 3, dtype=torch.long)
    base = (rope(q, zero) * rope(k, zero)).sum()
    for axis in range(3):
        p = zero.clone()
        p[0, axis] = 2
        moved = (rope(q, p) * rope(k, zero)).sum()  # relative offset 2 along one axis
        assert not torch.allclose(moved, base, atol=1e-4), f"axis {axis} is not encoded"



def test_rotation_shared_by_a_stack_equals_angles_per_layer():
    """shared_rotation computes the RoPE angles once per forward: bit-identical to every layer
    (and its queries and keys) computing them from the positions."""
    torch.manual_seed(0)
    blocks = torch.nn.ModuleList(Block(48, 4) for _ in range(3))
    x = torch.randn(2, 2 * 9, 48)
    pos = grid_positions(2, 3, 3)
    mask = frame_causal_mask(2, 9)
    a = b = x
    for blk in blocks:
        a = blk(a, pos, mask)
    rot = shared_rotation(blocks, pos)
    for blk in blocks:
        b = blk(b, rot, mask)
    assert torch.equal(a, b)
    plain = torch.nn.ModuleList([Block(48, 4, rope=False)])
    assert shared_rotation(plain, pos) is pos


def test_frame_causal_mask():
    m = frame_causal_mask(3, 2)
    expected = torch.tensor([[1, 1, 0, 0, 0, 0]] * 2 + [[1, 1, 1, 1, 0, 0]] * 2 + [[1] * 6] * 2)
    assert torch.equal(m, expected.bool())
    cached = frame_causal_mask(1, 2, past_steps=2)
    assert cached.shape == (2, 6) and cached.all()


def test_grid_positions():
    pos = grid_positions(2, 2, 3, t0=5)
    assert pos.shape == (12, 3)
    assert pos[0].tolist() == [5, 0, 0] and pos[-1].tolist() == [6, 1, 2]


def test_patchify_roundtrip_and_layout():
    x = torch.randn(2, 4, 3, 16, 24)
    p = patchify(x, tubelet=2, patch=8)
    assert p.shape == (2, 2, 6, 2 * 8 * 8 * 3)
    assert torch.equal(unpatchify(p, 2, 8, 2, 3), x)
    # token (step 1, row 1, col 2) holds frames 2-3, pixels rows 8-15, cols 16-23
    cube = p[0, 1, 1 * 3 + 2].reshape(2, 8, 8, 3).permute(0, 3, 1, 2)
    assert torch.equal(cube, x[0, 2:4, :, 8:16, 16:24])


def test_merge_split_roundtrip():
    x = torch.randn(2, 3, 16, 5)
    m = merge_tokens(x, 4, 4, 2)
    assert m.shape == (2, 3, 4, 20)
    assert torch.equal(split_tokens(m, 4, 4, 2), x)
    # merged token 0 = fine tokens (0,0), (0,1), (1,0), (1,1)
    assert torch.equal(m[0, 0, 0].reshape(4, 5), x[0, 0, [0, 1, 4, 5]])
