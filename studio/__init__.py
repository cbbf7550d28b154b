"""lam-studio's web app (docs/DESIGN.md#studio): Gradio tabs over
:class:`lam_core.LatentActionPipeline`.

The studio holds no model logic. ``studio.media`` turns uploads into clips and results into
browser-playable videos, ``studio.models`` opens and caches pipelines, ``studio.plots`` draws
Plotly figures, the handler modules (``handlers``, ``latent``, ``control``, ``training``) are
plain functions the tabs call (and the tests call directly), and ``studio.app`` builds the Blocks.
"""
