"""Turning inputs into the per-lesion feature table: contract, simulator, images, extraction."""
