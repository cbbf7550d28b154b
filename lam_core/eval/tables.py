"""Paper-style text tables and PASS/FAIL checks of an evaluation report (the dict that
:func:`lam_core.eval.report.run_report` returns and ``report.json`` holds), each beside the
paper's own numbers (:mod:`lam_core.eval.paper`)."""

from __future__ import annotations

from lam_core.eval import paper
from lam_core.eval.capacity import latent_effect
from lam_core.eval.metrics import LPIPS_UNAVAILABLE, fmt

CTRL_VS_ZERO = "reach: controller+CEM beats zero action"
CTRL_VS_AC = "reach: controller+CEM within 2× of action-conditioned"
CTRL_VS_ZERO_DRIVE = "drive: controller+CEM beats zero action (ATE)"


def checks(rep: dict) -> list[dict]:
    """The report's checks: leakage ratio > 1.5 and cycle ratio < 1.5 for every in-the-wild
    regularized latent pipeline (the unconstrained ``none`` is shown as INFO); on reach,
    controller+CEM beats the zero-action baseline and is within 2× of the (best)
    action-conditioned baseline; on drive, controller+CEM's trajectory error (ATE) is below the
    zero action's. ``[{"status": PASS|FAIL|SKIP|INFO, "check", "detail"}]``."""
    out: list[dict] = []

    def add(ok: bool | None, check: str, detail: str) -> None:
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        out.append({"status": status, "check": check, "detail": detail})

    pipes = rep["pipelines"]
    for name, p in pipes.items():
        if p.get("kind") != "latent" or p.get("world"):
            continue
        for key, check, passes in (
            ("leakage", "leakage ratio > 1.5", lambda r: r > 1.5),
            ("cycle", "cycle ratio < 1.5", lambda r: r < 1.5),
        ):
            r = _ok(p, key, {}).get("ratio")
            add(None if r is None else passes(r), check, f"{name}: ×{fmt(r, 2, 'n/a')}")
            if p.get("label") == "none" and r is not None:  # no information limit: not judged
                out[-1].update(status="INFO", detail=out[-1]["detail"] + " (unconstrained)")
    motion_checks(pipes, add)
    object_checks(pipes, add)
    reach = {n: r for n, p in pipes.items() if (r := _ok(p, "planning_reach"))}
    ac = [r["metrics"]["delta"] for n, r in reach.items() if pipes[n].get("kind") == "action"]
    ctrl = {n: r for n, r in reach.items() if pipes[n].get("kind") == "latent"}
    if not ctrl:
        add(None, CTRL_VS_ZERO, "no reach pipeline with a controller")
    for name, r in ctrl.items():
        d, z = r["metrics"]["delta"], r["metrics"]["zero_delta"]
        add(d < z, CTRL_VS_ZERO, f"{name}: Δ {d:.3f} vs {z:.3f}")
        if ac:
            add(d <= 2 * min(ac), CTRL_VS_AC, f"{name}: Δ {d:.3f} vs 2 × {min(ac):.3f}")
        else:
            add(None, CTRL_VS_AC, "no action-conditioned reach pipeline")
    drive = {n: r for n, p in pipes.items() if (r := _ok(p, "planning_drive"))}
    for name, r in drive.items():
        if pipes[name].get("kind") != "latent":
            continue
        m = r["metrics"]
        add(m["ate"] < m["zero_ate"], CTRL_VS_ZERO_DRIVE,
            f"{name}: ATE {m['ate']:.3f} vs {m['zero_ate']:.3f} (RPE {m['rpe']:.3f} vs "
            f"{m['zero_rpe']:.3f})")
    return out


def motion_checks(pipes: dict, add) -> None:
    """The visible-transfer targets: camera pans on real footage (cosine ≥ 0.8, magnitude
    0.7–1.3, a still target drifts ≤ 0.1 px/step, B's own latents unrelated to A's motion), a
    MiniWild mover (own rollout cosine ≥ 0.6, transfer cosine ≥ 0.5 with magnitude ≥ 0.5, the
    estimator ≥ 0.8 on real frames), sharper than copying the first frame, and a representation
    that keeps real footage (≥ 24 dB)."""
    for name, p in pipes.items():
        cam, mov, rep = (_ok(p, k, {}).get("metrics", _ok(p, k, {}))
                         for k in ("motion_camera_real", "motion_mover", "representation_real"))
        if rep.get("psnr") is not None:
            add(rep["psnr"] >= 24, "real footage decodes at ≥ 24 dB", f"{name}: "
                f"{rep['psnr']:.1f} dB (100 = exact)")
        if cam:
            c, m = cam["transfer_cosine"], cam["transfer_magnitude_ratio"]
            add(c >= 0.8 and 0.7 <= m <= 1.3, "real pans: transfer cosine ≥ 0.8, magnitude "
                "0.7–1.3", f"{name}: {c:.2f} / {m:.2f} (estimator on real frames: "
                f"{cam['real_cosine']:.2f} / {cam['real_magnitude_ratio']:.2f})")
            add(cam["still_drift_px"] <= 0.1, "real pans: a still target drifts ≤ 0.1 px/step",
                f"{name}: {cam['still_drift_px']:.3f} px/step")
            add(abs(cam["control_cosine"]) <= 0.3, "real pans: B's own latents unrelated to A's "
                "motion (|cosine| ≤ 0.3)", f"{name}: {cam['control_cosine']:.2f}")
            add(cam["self_psnr"] > cam["self_psnr_copy"], "real pans: 7-step rollout sharper "
                "than copying (PSNR)", f"{name}: {cam['self_psnr']:.2f} vs "
                f"{cam['self_psnr_copy']:.2f} dB")
        if mov:
            add(mov["real_cosine"] >= 0.8, "MiniWild mover: estimator ≥ 0.8 on real frames",
                f"{name}: {mov['real_cosine']:.2f}")
            add(mov["self_cosine"] >= 0.6, "MiniWild mover: own rollout cosine ≥ 0.6",
                f"{name}: {mov['self_cosine']:.2f} (magnitude {mov['self_magnitude_ratio']:.2f})")
            c, m = mov["transfer_cosine"], mov["transfer_magnitude_ratio"]
            add(c >= 0.5 and m >= 0.5, "MiniWild mover: transfer cosine ≥ 0.5, magnitude ≥ 0.5",
                f"{name}: {c:.2f} / {m:.2f}")
            add(mov["self_psnr"] > mov["self_psnr_copy"], "MiniWild mover: 7-step rollout "
                "sharper than copying (PSNR)", f"{name}: {mov['self_psnr']:.2f} vs "
                f"{mov['self_psnr_copy']:.2f} dB")


def object_checks(pipes: dict, add) -> None:
    """Objects move (lam_core.eval.objects, medians over clips): own rollout and transfer with
    path ratio 0.7–1.3, direction cosine ≥ 0.8 and end-point error ≤ 2 px after 7 steps; the far
    object of the locality case ≤ 0.3 px/step while the near one covers ≥ 0.7 of A's path; pixels
    away from the objects change ≤ 2/255; the reach effector, driven by real actions, ends ≤ 3 px
    from the real one (≤ 2 px for an action-conditioned model)."""
    for name, p in pipes.items():
        rows = _ok(p, "objects", {}).get("rows")
        if rows:
            for row in ("own", "transfer"):
                r = rows[row]
                ok = (0.7 <= r["path_ratio_median"] <= 1.3 and r["cosine_median"] >= 0.8
                      and r["epe_px_median"] <= 2.0)
                add(ok, f"objects, {row}: path 0.7–1.3, cosine ≥ 0.8, end point ≤ 2 px",
                    f"{name}: {r['path_ratio_median']:.2f} / {r['cosine_median']:.2f} / "
                    f"{r['epe_px_median']:.2f} px")
            loc = rows["locality"]
            add(loc["path_ratio_median"] >= 0.7 and loc["far_speed_median"] <= 0.3,
                "objects, locality: near ≥ 0.7 of the path, far ≤ 0.3 px/step",
                f"{name}: {loc['path_ratio_median']:.2f} / {loc['far_speed_median']:.2f} px/step")
            change = max(rows[r]["background_change_median"] for r in ("own", "transfer"))
            add(change <= 2.0, "objects: background changes ≤ 2/255", f"{name}: {change:.2f}")
        track = _ok(p, "reach_tracking", {}).get("rows")
        if track:
            limit = 2.0 if p.get("kind") == "action" else 3.0
            err, copy = track["model"]["final_px"], track["copy"]["final_px"]
            moved = track["model"].get("background", float("nan"))
            add(err <= limit and moved <= 2.0, f"reach effector driven by actions ends ≤ "
                f"{limit:.0f} px from the real one, the rest of the scene changes ≤ 2/255",
                f"{name}: {err:.2f} px, background {moved:.2f}/255 (copying the first frame: "
                f"{copy:.2f} px)")


def object_rows(pipes: dict, key) -> list[list]:
    """Rows of the object-motion table: per pipeline and row, median path ratio / cosine /
    end-point error, background change, the locality case's far object."""
    out = []
    for name in sorted(pipes, key=key):
        rows = _ok(pipes[name], "objects", {}).get("rows")
        for row, m in (rows or {}).items():
            far = f"{m['far_speed_median']:.2f}" if "far_speed_median" in m else "—"
            out.append([name, row, f"{m['path_ratio_median']:.2f}", f"{m['cosine_median']:.2f}",
                        f"{m['epe_px_median']:.2f}", f"{m['background_change_median']:.2f}", far])
        track = _ok(pipes[name], "reach_tracking", {}).get("rows")
        for row, m in (track or {}).items():
            moved = f"{m['background']:.2f}" if "background" in m else "—"
            out.append([name, f"reach effector: {row}", "—", "—", f"{m['final_px']:.2f}", moved,
                        "—"])
        pose = _ok(pipes[name], "drive_tracking", {}).get("rows")
        for row, m in (pose or {}).items():  # map px (one full forward step is 5 px)
            out.append([name, f"drive pose (map px): {row}", "—", "—", f"{m['final_px']:.2f}",
                        "—", "—"])
    return out


def motion_rows(pipes: dict, key) -> list[list]:
    """Rows of the motion-transfer table: per pipeline and protocol, cosine / magnitude of the
    estimator on real frames, A's own rollout, the transfer and the control, drift, PSNRs."""
    rows = []
    for name in sorted(pipes, key=key):
        for what, label in (("motion_camera_real", "real pans"),
                            ("motion_mover", "MiniWild mover")):
            r = _ok(pipes[name], what)
            if not r:
                continue
            m = r["metrics"]

            def pair(prefix: str, m=m) -> str:
                return f"{m[prefix + '_cosine']:.2f} / {m[prefix + '_magnitude_ratio']:.2f}"

            drift = f"{m['still_drift_px']:.3f}" if "still_drift_px" in m else "—"
            rows.append([name, label, pair("real"), pair("self"), pair("transfer"),
                         pair("control"), drift,
                         f"{m['self_psnr']:.1f} / {m['self_psnr_copy']:.1f}"])
    return rows


def format_checks(rep: dict) -> str:
    """One ``PASS|FAIL|SKIP|INFO  check  —  detail`` line per check."""
    return "\n".join(f"{c['status']:4}  {c['check']}  —  {c['detail']}" for c in rep["checks"])


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A plain-text table with a title line."""
    if not rows:
        return f"{title}\n  (no pipeline for this table)\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    body = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in rows]
    return "\n".join([title, line, "-" * len(line), *body]) + "\n"


def _ok(p: dict, key: str, default=None):
    """The result ``p[key]`` unless it is missing or failed."""
    r = p.get(key)
    return r if isinstance(r, dict) and "failed" not in r else default


def _shares(x: dict | None) -> str:
    """``"drive 8 %, reach 8 %"``; ``"0 %"`` for in-the-wild data alone, ``"?"`` unknown."""
    if x is None:
        return "?"
    return ", ".join(f"{w} {100 * v:.0f} %" for w, v in sorted(x.items())) or "0 %"


def _s3_paper() -> str:
    return ", ".join(f"{k} % {v[1]:.2f}" for k, v in paper.TABLE_S3["noisy"].items())


def _arrow(a, b, r=None, digits: int = 3) -> str:
    """``"a → b (×r)"``; ``r`` defaults to ``b / a``."""
    if a is None or b is None:
        return "n/a"
    r = b / a if r is None and a else r
    return f"{fmt(a, digits)} → {fmt(b, digits)} (×{fmt(r, 2, 'n/a')})"


def _percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f} %"


def _times(r: dict | None) -> str:
    return f"×{fmt(r['ratio'], 2, 'n/a')}" if r else "—"


def capacity_ends(pipes: dict) -> tuple[float, float] | None:
    """Rollout feature L1 of the deterministic and of the unconstrained (``none``) pipeline, the
    two ends of Fig. 4's axis, or None when either is missing or they coincide. A pipeline's
    *position* ``(det − x) / (det − none)`` is 0 at the deterministic end, 1 at the free end."""
    ends = {}
    for p in pipes.values():
        if (c := _ok(p, "capacity")) and p.get("label") in ("deterministic", "none"):
            ends.setdefault(p["label"], c["feature_l1"])
    if len(ends) < 2 or ends["deterministic"] == ends["none"]:
        return None
    return ends["deterministic"], ends["none"]


def _wild_rows(pipes: dict, key) -> dict[str, list[list]]:
    """Rows of the in-the-wild tables (capacity, Table 1, Table 2, sampling, fidelity)."""
    rows: dict[str, list[list]] = {"cap": [], "t1": [], "t2": [], "smp": [], "fid": []}
    ends = capacity_ends(pipes)
    for n, p in pipes.items():
        if c := _ok(p, "capacity"):
            real = _ok(p, "capacity_real")
            pos = None if ends is None else (ends[0] - c["feature_l1"]) / (ends[0] - ends[1])
            rows["cap"].append([
                n, p["label"], fmt(c["feature_l1"]), fmt(pos, 2, "—"), fmt(c["one_step_l1"]),
                _percent(latent_effect(c)),
                fmt(c["pixel_l1"], missing="n/a"), fmt(c["psnr"], 1, "n/a"), fmt(c["lpips"]),
                fmt(c["copy_feature_l1"]), fmt(c["copy_pixel_l1"]),
                fmt(c["decoder_pixel_l1"], missing="n/a"), fmt(real["feature_l1"]) if real else "—",
            ])
        if r := _ok(p, "leakage"):
            rows["t1"].append([n, _arrow(r["error_no_cut"], r["error_cut"], r["ratio"]),
                               _times(_ok(p, "leakage_real")),
                               paper.paper_ratio(paper.TABLE1.get(key(n)))])
        if r := _ok(p, "cycle"):
            rows["t2"].append([
                n, _arrow(r["direct_error"], r["cycled_error"], r["ratio"]),
                _arrow(r["direct_pixel_l1"], r["cycled_pixel_l1"]), fmt(r["cycled_lpips"]),
                _times(_ok(p, "cycle_real")), paper.paper_ratio(paper.TABLE2_KINETICS.get(key(n))),
                paper.paper_ratio(paper.TABLE2_RECON.get(key(n))),
            ])
        if r := _ok(p, "sampling"):
            rows["smp"].append([n, r["n"], fmt(r["accuracy"], 2), fmt(r["sampled_norm"], 2),
                                fmt(r["inferred_norm"], 2),
                                "yes" if r["embedding"] else "skipped"])
        if r := _ok(p, "fidelity"):
            m = r["metrics"]
            rows["fid"].append([n] + [
                f"{fmt(m[f'{w}_cosine'], 2)} / {fmt(m[f'{w}_magnitude_ratio'], 2)} / "
                f"{fmt(m[f'{w}_location_error'], 1)}" for w in ("transfer", "self", "real")
            ])
    return rows


def _world_rows(pipes: dict, key) -> dict[str, list[list]]:
    """Rows of Tables S1/S2 (controller rollouts, planning)."""
    rows: dict[str, list[list]] = {"reach": [], "drive": [], "plan": [], "nav": []}
    for n, p in pipes.items():
        if (r := _ok(p, "controller")) and r["world"] in ("reach", "drive"):
            tab = paper.TABLE_S1_ROLLOUT if r["world"] == "reach" else paper.TABLE_S2_ROLLOUT
            rows[r["world"]].append([
                n, _arrow(r["idm_error"], r["controller_error"], r["ratio"]),
                _arrow(r["idm_pixel_l1"], r["controller_pixel_l1"]), fmt(r["controller_lpips"]),
                paper.paper_ratio(tab.get(key(n))),
            ])
        if r := _ok(p, "planning_reach") or _ok(p, "planning_pusht"):
            m = r["metrics"]
            ref = paper.TABLE_S1_PLANNING.get(
                ("V-JEPA 2-AC", "") if p["kind"] == "action" else key(n)
            )
            rows["plan"].append([
                n, r["world"], r["method"], fmt(m["delta"]), fmt(m["zero_delta"]),
                fmt(m.get("final_px"), 2, "—"), fmt(m.get("zero_final_px"), 2, "—"),
                f"{r['seconds_per_plan']:.2f}", r["note"] or "64 episodes",
                "—" if ref is None else f"{ref:.2f} m",
            ])
        if r := _ok(p, "planning_drive"):
            m, ref = r["metrics"], paper.TABLE_S2_PLANNING.get(key(n))
            rows["nav"].append([
                n, r["method"], fmt(m["ate"], 2), fmt(m["rpe"], 2), fmt(m["zero_ate"], 2),
                fmt(m["zero_rpe"], 2), f"{r['seconds_per_plan']:.2f}", r["note"] or "64 episodes",
                "—" if ref is None else f"{ref[0]:.2f} / {ref[1]:.2f}",
            ])
    return rows


def s3_rows(pipes: dict) -> list[list]:
    """Rows of Table S3 (data mix → planning): one per LAM, named by the folder of its last
    training run, with the share of its clips from the action worlds and what its controllers
    reach: controller rollout error (feature L1, × the IDM's), reach Δ and drive ATE / RPE, each
    beside the zero action."""
    by_lam: dict[str, dict] = {}
    for _, p in sorted(pipes.items()):
        data = p.get("lam_data")
        if not p.get("world") or p.get("kind") != "latent" or not isinstance(data, dict):
            continue
        row = by_lam.setdefault(str(data.get("run")), {"data": data})
        if c := _ok(p, "controller"):
            row[f"ctrl_{c['world']}"] = f"{fmt(c['controller_error'])} (×{fmt(c['ratio'], 2)})"
        if r := _ok(p, "planning_reach"):
            m = r["metrics"]
            row["reach"] = f"{fmt(m['delta'])} vs {fmt(m['zero_delta'])} ({r['episodes']} ep.)"
        if r := _ok(p, "planning_drive"):
            m = r["metrics"]
            row["drive"] = (f"{fmt(m['ate'], 2)} / {fmt(m['rpe'], 2)} vs {fmt(m['zero_ate'], 2)} / "
                            f"{fmt(m['zero_rpe'], 2)} ({r['episodes']} ep.)")
    rows = []
    for run, row in by_lam.items():
        d = row["data"]
        rows.append([run, f"{d['clips']:,}", _shares(d.get("world_share")),
                     _shares(d.get("last_run_world_share")), row.get("ctrl_reach", "—"),
                     row.get("reach", "—"), row.get("ctrl_drive", "—"), row.get("drive", "—")])
    return rows


def format_tables(rep: dict) -> str:
    """The paper-style tables of a report."""
    pipes = rep["pipelines"]
    lp = "LPIPS" if rep.get("lpips") else f"LPIPS: {LPIPS_UNAVAILABLE}"

    def key(name: str) -> tuple[str, str]:
        return paper.paper_key(pipes[name].get("label", ""), name)

    w, a = _wild_rows(pipes, key), _world_rows(pipes, key)
    s = rep.get("settings", {})
    head = (
        f"lam-studio evaluation — {len(pipes)} pipelines on {rep.get('device', '?')}; "
        f"{s.get('clips')} MiniWild val clips, {s.get('pairs')} pairs, {s.get('episodes')} "
        f"planning episodes, seed {s.get('seed')}; real clips: {rep.get('clips_dir') or '—'}"
    )
    if s.get("quick_run"):
        head += "\nQUICK RUN (--quick): a smoke test of the code path, not a measurement"
    parts = [
        head + "\n",
        table(f"Capacity (paper Fig. 4: a plot, no printed numbers) — rollout with IDM latents on "
              f"MiniWild val; position 0 = deterministic, 1 = unconstrained; latent effect = "
              f"1-step L1 with another clip's latents / own − 1 (0: latents unused); {lp}",
              ["pipeline", "latents", "feat L1", "position", "1-step L1", "latent effect", "pix L1",
               "PSNR", "LPIPS", "copy feat", "copy pix", "decoder floor pix", "feat L1 (real)"],
              w["cap"]),
        table("Table 1 — future leakage: one-step error at the cut, w/o → w/ change "
              "(ours: feature L1; paper: LPIPS on Kinetics)",
              ["pipeline", "ours", "ours (real clips)", "paper"], w["t1"]),
        table("Table 2 — cycle consistency: original → transfer error (A → B → A)",
              ["pipeline", "ours feat L1", "ours pix L1", "cycled LPIPS", "ours (real clips)",
               "paper Kinetics", "paper RECON"], w["t2"]),
        table("Table S1 (DROID → reach), left — rollouts: IDM → controller latents",
              ["pipeline", "ours feat L1", "ours pix L1", "controller LPIPS", "paper LPIPS"],
              a["reach"]),
        table("Table S2 (RECON → drive), left — rollouts: IDM → controller latents",
              ["pipeline", "ours feat L1", "ours pix L1", "controller LPIPS", "paper LPIPS"],
              a["drive"]),
        table("Table S1, right — planning on reach (Δxy, eq. 3, action units; one unit = 6 px) "
              "vs the zero-action baseline",
              ["pipeline", "world", "method", "Δ", "Δ zero", "final px", "zero px", "s/plan",
               "episodes", "paper Δxyz"], a["plan"]),
        table("Table S2, right — planning on drive (straight line, H=8; ATE / RPE in map px; "
              "NWM's units in the paper)",
              ["pipeline", "method", "ATE", "RPE", "zero ATE", "zero RPE", "s/plan", "episodes",
               "paper ATE / RPE"], a["nav"]),
        table("Table S3 — the LAM's data: clips from the action worlds (frames only, no actions) "
              "→ controllers and planning (reach Δ; drive ATE / RPE; each vs the zero action). "
              f"Paper, noisy LAM on DROID, Δxyz: {_s3_paper()}",
              ["LAM (last run)", "clips", "world clips (all)", "world clips (last run)",
               "reach controller", "reach Δ vs zero", "drive controller",
               "drive ATE / RPE vs zero"], s3_rows(pipes)),
        table("Sampling (App. B, Fig. S1: qualitative in the paper) — k-NN two-sample accuracy, "
              "0.5 = sampled and inferred latents indistinguishable",
              ["pipeline", "n", "accuracy", "|z| sampled", "|z| inferred", "UMAP"], w["smp"]),
        table("Transfer fidelity (beyond the paper) — cosine / magnitude ratio / location error "
              "px; 'real' and 'self' calibrate the estimator",
              ["pipeline", "transfer A→B", "A's own rollout", "A's real frames"], w["fid"]),
        table("Motion transfer (beyond the paper; lam_core.eval.motion) — per-step cosine / "
              "magnitude ratio against A's true motion: the estimator on A's real frames, A's own "
              "rollout, B driven by A's latents, B's own rollout (control: should be unrelated); "
              "drift of a still target px/step; 7-step rollout PSNR / copying the first frame",
              ["pipeline", "protocol", "real", "own", "transfer", "control", "drift",
               "PSNR / copy"], motion_rows(pipes, key)),
        table("Objects (beyond the paper; lam_core.eval.objects, lam_core.eval.agents) — medians "
              "over clips against the ground truth: path ratio, direction cosine, end-point "
              "error px after 7 steps, background change /255, far object px/step; rows truth "
              "(tracker calibration) and copy (frame 0 repeated) are the controls",
              ["pipeline", "row", "path", "cosine", "end point px", "background", "far"],
              object_rows(pipes, key)),
        table("Representation — decoding the true features of the real clips (dB, 100 = exact)",
              ["pipeline", "PSNR", "min PSNR", "clips"],
              [[n, f"{r['psnr']:.1f}", f"{r['min_psnr']:.1f}", r["clips"]]
               for n in sorted(pipes, key=key) if (r := _ok(pipes[n], "representation_real"))]),
    ]
    notes = [f"{n}: {k} failed: {v['failed']}" for n, p in pipes.items() for k, v in p.items()
             if isinstance(v, dict) and "failed" in v]
    notes += [f"{n}: {p[k]}" for n, p in pipes.items() for k in ("error", "skipped", "note")
              if isinstance(p.get(k), str)]
    notes += rep.get("notes", [])
    if notes:
        parts.append("Notes\n" + "\n".join(f"  {x}" for x in notes) + "\n")
    return "\n".join(parts)
