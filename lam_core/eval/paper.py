"""The paper's own numbers, copied from its tables (Garrido et al., 2026, arXiv 2601.05230), printed
beside ours by :mod:`lam_core.eval.report`.

Keys are ``(regularizer, capacity)``; pairs of errors carry the ratio as printed in the paper
(×, rounded there) as a third element. Capacity is ``low`` / ``mid`` / ``high`` as in the tables.
The paper's values are LPIPS (Tables 1, 2, S1, S2 left), metres (Table S1 right, Δxyz) and
NWM's ATE/RPE units (Table S2 right); ours are feature L1 / action units / map pixels, so compare
ratios and rankings, not raw values. Fig. 4 (capacity) is a plot without printed numbers.
"""

from __future__ import annotations

import re

# Table 1: prediction error (LPIPS, Kinetics) without / with a scene change.
TABLE1 = {
    ("sparse", "low"): (0.28, 0.66, 2.30),
    ("sparse", "high"): (0.20, 0.50, 2.40),
    ("noisy", "low"): (0.33, 0.69, 2.10),
    ("noisy", "high"): (0.21, 0.54, 2.50),
    ("discrete", "low"): (0.34, 0.69, 2.00),
    ("discrete", "high"): (0.29, 0.68, 2.30),
}

# Table 2: cycle consistency (LPIPS over 2 s): (original, transfer) on Kinetics and on RECON.
TABLE2_KINETICS = {
    ("sparse", "low"): (0.26, 0.31, 1.20),
    ("sparse", "high"): (0.19, 0.24, 1.30),
    ("noisy", "low"): (0.30, 0.34, 1.13),
    ("noisy", "high"): (0.20, 0.26, 1.34),
    ("discrete", "low"): (0.32, 0.33, 1.03),
    ("discrete", "high"): (0.27, 0.29, 1.07),
}
TABLE2_RECON = {
    ("sparse", "low"): (0.24, 0.29, 1.21),
    ("sparse", "high"): (0.20, 0.23, 1.14),
    ("noisy", "low"): (0.29, 0.33, 1.15),
    ("noisy", "high"): (0.20, 0.24, 1.22),
    ("discrete", "low"): (0.32, 0.33, 1.03),
    ("discrete", "high"): (0.26, 0.27, 1.05),
}

# Table S1 left (DROID): rollout LPIPS with the IDM and with the controller.
TABLE_S1_ROLLOUT = {
    ("sparse", "low"): (0.12, 0.14, 1.17),
    ("sparse", "mid"): (0.10, 0.12, 1.20),
    ("sparse", "high"): (0.09, 0.14, 1.46),
    ("noisy", "low"): (0.13, 0.13, 1.00),
    ("noisy", "mid"): (0.10, 0.11, 1.10),
    ("noisy", "high"): (0.09, 0.12, 1.27),
    ("discrete", "low"): (0.13, 0.13, 1.00),
    ("discrete", "high"): (0.11, 0.12, 1.02),
}
# Table S1 right: Δxyz in metres (64 episodes, CEM N=300, K=10, I=15, H=3).
TABLE_S1_PLANNING = {
    ("sparse", "low"): 0.33,
    ("sparse", "mid"): 0.18,
    ("sparse", "high"): 0.13,
    ("noisy", "low"): 0.49,
    ("noisy", "mid"): 0.11,
    ("noisy", "high"): 0.10,
    ("discrete", "low"): 0.18,
    ("discrete", "high"): 0.14,
    ("V-JEPA 2-AC", ""): 0.15,
    ("V-JEPA 2 + WM", ""): 0.05,
}

# Table S2 left (RECON): rollout LPIPS with the IDM and with the controller.
TABLE_S2_ROLLOUT = {
    ("sparse", "low"): (0.23, 0.25, 1.11),
    ("sparse", "mid"): (0.19, 0.23, 1.16),
    ("sparse", "high"): (0.17, 0.26, 1.51),
    ("noisy", "low"): (0.24, 0.24, 0.99),
    ("noisy", "mid"): (0.17, 0.21, 1.23),
    ("noisy", "high"): (0.17, 0.22, 1.29),
    ("discrete", "low"): (0.24, 0.24, 1.00),
    ("discrete", "high"): (0.20, 0.21, 1.06),
}
# Table S2 right: (ATE, RPE).
TABLE_S2_PLANNING = {
    ("sparse", "low"): (1.68, 0.48),
    ("sparse", "mid"): (1.45, 0.41),
    ("sparse", "high"): (1.43, 0.42),
    ("noisy", "low"): (2.06, 0.55),
    ("noisy", "mid"): (1.49, 0.41),
    ("noisy", "high"): (1.40, 0.40),
    ("discrete", "low"): (1.81, 0.51),
    ("discrete", "high"): (1.48, 0.42),
    ("NoMaD", ""): (1.93, 0.52),
    ("NWM", ""): (1.13, 0.35),
}

# Table S3: DROID's share of the LAM's pretraining data (%) → (controller LPIPS, Δxyz m) on DROID.
# (The paper prints the noisy row's 100 % LPIPS as "0.9", surely 0.09; kept as printed.)
TABLE_S3 = {
    "sparse": {0: (0.14, 0.14), 10: (0.14, 0.13), 25: (0.12, 0.14), 50: (0.11, 0.09),
               75: (0.10, 0.09), 90: (0.10, 0.08), 100: (0.10, 0.08)},
    "noisy": {0: (0.11, 0.14), 10: (0.10, 0.09), 25: (0.10, 0.09), 50: (0.10, 0.09),
              75: (0.10, 0.06), 90: (0.10, 0.06), 100: (0.9, 0.07)},
}

CAPACITIES = ("low", "mid", "high")


def paper_key(label: str, name: str) -> tuple[str, str]:
    """``(regularizer, capacity)`` of a pipeline: its regularizer label and the capacity word in
    its folder name (``sparse-low`` → ``("sparse", "low")``; no word → ``""``)."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    capacity = next((w for w in words if w in CAPACITIES), "")
    return label, capacity


def paper_ratio(row: tuple[float, float, float] | None) -> str:
    """``"0.28 → 0.66 (×2.30)"`` (the ratio as printed in the paper) or ``"—"``."""
    if row is None:
        return "—"
    a, b, r = row
    return f"{a:.2f} → {b:.2f} (×{r:g})"
