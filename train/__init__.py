"""Training scripts of lam-studio (DESIGN.md §5); run with ``accelerate launch train/<job>.py``."""
