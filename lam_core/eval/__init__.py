"""The paper's evaluations (docs/DESIGN.md#evaluation) as plain functions: each takes a pipeline (or
several), data and a seed, and returns a small dataclass of numbers and per-step arrays.

- :func:`lam_core.eval.capacity.capacity` (Fig. 4), :func:`lam_core.eval.leakage.leakage`
  (Table 1), :func:`lam_core.eval.cycle.cycle` (Table 2), :func:`lam_core.eval.sampling.sampling`
  (App. B, Fig. S1), :func:`lam_core.eval.controller.controller_eval` (Tables S1/S2 left),
  :func:`lam_core.eval.planning.reach_protocol` / :func:`~lam_core.eval.planning.drive_protocol`
  (Tables S1/S2 right) and :func:`lam_core.eval.fidelity.transfer_fidelity` (beyond the paper).
- ``python -m lam_core.eval.report`` runs all of them on a folder of pipelines.

Functions are not re-exported here: several share their module's name, and importing nothing
keeps ``import lam_core.eval.<module>`` cheap (sklearn and umap load on first use).
"""
