"""A minimal stand-in cohort for the image tests (not the project's simulator)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import ID, LABEL


def toy_cohort(n: int, seed: int = 0) -> pd.DataFrame:
    """A minimal stand-in cohort with the columns the images need (not the project's simulator).

    Half pseudoprogression; adc (10^-3 mm^2/s) and rcbv (ratio) overlap between the classes,
    about 15 % of each missing; volume_change_pct in %.
    """
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(int)
    adc = np.where(y == 1, rng.normal(1.35, 0.25, n), rng.normal(0.95, 0.2, n)).clip(0.4, 3.0)
    rcbv = np.exp(np.where(y == 1, np.log(1.2), np.log(2.2)) + rng.normal(0, 0.35, n))
    adc[rng.random(n) < 0.15] = np.nan
    rcbv[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame({
        ID: [f"P{i:04d}" for i in range(n)],
        LABEL: y,
        "adc": adc,
        "rcbv": rcbv,
        "volume_change_pct": rng.uniform(20, 120, n),
    })


#: pyradiomics settings for tests that extract and train: no resampling, five features of
#: two classes per sequence (the project's settings compute about a hundred per sequence).
FEW_FEATURES = """\
version: "test-few"
setting:
  label: 1
  normalize: true
  normalizeScale: 100
  voxelArrayShift: 300
  binWidth: 10
  minimumROISize: 20
featureClass:
  firstorder: [Mean, Variance, Skewness]
  glcm: [Contrast, Correlation]
"""
