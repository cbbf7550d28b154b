"""Training scripts of lam-studio (docs/DESIGN.md#training), a package installed with lam_core:
``accelerate launch train/<job>.py`` (or ``python -m train.<job>``) imports it like any other."""
