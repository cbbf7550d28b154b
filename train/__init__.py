"""Training scripts of lam-studio (docs/DESIGN.md#training); run with
``accelerate launch train/<job>.py``."""
