"""The checkpoints shipped with Diffusion Infill, installed as the package `diffusion_infill_models` (package data),
so that a wheel or `pip install .` carries the embedded model as an editable install does."""
