"""What the synthetic MRI's texture alone says about the class, beside the table.

A balanced simulated cohort (prevalence 0.5, one lesion per patient) gets synthetic MRI;
pyradiomics features of the weighted images t1c and flair only (texture and shape: the
quantitative maps' lesion means repeat the table's adc and rcbv) feed an L1-penalised
logistic regression, scored by 5-fold stratified cross-validation (out-of-fold AUC with
its DeLong 95% CI). The latent diffuseness that shapes the texture has its own exact AUC
(the two classes' Beta distributions), the ceiling of any image-only model. Target: the
conventional-MRI radiomics model of Kim et al., Neuro-Oncology 2019;21(3):404-414 (AUC
0.76). Results go to ``benchmarks/results/image_signal.json``.

    .venv/bin/python benchmarks/image_signal.py --n 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import run, write_result


def latent_auc(tp: tuple[float, float], pp: tuple[float, float]) -> float:
    """P(d of a pseudoprogression > d of a true progression), d ~ Beta per class."""
    from scipy import integrate, stats

    return float(integrate.quad(lambda x: stats.beta(*tp).cdf(x) * stats.beta(*pp).pdf(x),
                                0.0, 1.0)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="lesions (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    import warnings

    import numpy as np
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from features.extract import extract
    from features.synthetic import DEFAULT_PARAMETERS, simulate_cohort, write_synthetic_images
    from models.statistics import auc_with_ci

    images = DEFAULT_PARAMETERS.images
    cohort = simulate_cohort(args.n, prevalence=0.5, seed=args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_synthetic_images(cohort, tmp, seed=args.seed, jobs=args.jobs)
        result = extract(Path(tmp) / "manifest.csv", jobs=args.jobs, sequences=["t1c", "flair"],
                         use_cache=False, progress=False)
    seconds = time.perf_counter() - start
    del manifest
    table = cohort[["patient_id", "pseudoprogression"]].merge(result.features, on="patient_id")
    x = table.drop(columns=["patient_id", "pseudoprogression"]).to_numpy(dtype=float)
    x = x[:, np.nanstd(x, axis=0) > 0]
    y = table["pseudoprogression"].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=10, penalty="l1", solver="liblinear", scoring="neg_log_loss", cv=5))
    folds = StratifiedKFold(5, shuffle=True, random_state=args.seed)
    warnings.filterwarnings("ignore", category=FutureWarning)  # sklearn 1.8's l1 spelling
    p = cross_val_predict(model, np.nan_to_num(x), y, cv=folds, method="predict_proba")[:, 1]
    auc, ci = auc_with_ci(y, p)
    record = {"n": int(len(y)), "n_features": int(x.shape[1]),
              "latent_auc": latent_auc(images.diffuseness_beta_tp, images.diffuseness_beta_pp),
              "texture_auc": auc, "texture_auc_ci": ci, "target_auc": 0.76,
              "target": "Kim et al., Neuro-Oncology 2019;21(3):404-414, conventional MRI "
                        "radiomics model", "seconds_images_and_extraction": seconds}
    print(f"latent diffuseness AUC {record['latent_auc']:.3f}; t1c+flair radiomics only, "
          f"out-of-fold AUC {auc:.3f} ({ci[0]:.3f}-{ci[1]:.3f}) on {len(y)} lesions, "
          f"{x.shape[1]} features (target 0.76)")
    print(write_result("image_signal", record))
    return 0


if __name__ == "__main__":
    run(main)
