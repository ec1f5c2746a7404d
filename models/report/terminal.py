"""What a study prints at the end of ``train.py``: the benchmark table, what image features
add, the update chosen, the landmark tables and where the model and the report were saved
(:func:`study_summary`)."""

from __future__ import annotations

from models.report.tables import format_benchmark_table, format_landmark_table


def study_summary(study) -> str:
    """The lines ``train.py`` prints after a study (:class:`models.study.Study`) is saved."""
    m = study.metrics
    parts = [*study.notes, format_benchmark_table(m)]
    if "image_features" in m:
        parts.append(describe_image_contribution(m["image_features"], study.model))
    if "update" in m:
        parts.append(describe_update(m["update"]))
    if "landmarks" in m:
        parts.append("\n" + format_landmark_table(m))
    settings, model = study.settings, study.model
    if (model.training or {}).get("landmarks"):
        parts.append(f"note: {model.training['landmarks']}")
    parts.append(f"\nmodel ({model.family}, threshold {model.threshold:.3g}) saved to "
                 f"{settings.out}"
                 + (f"; report: {settings.report / 'report.html'}" if settings.report else ""))
    return "\n".join(parts)


def describe_image_contribution(m: dict, model=None) -> str:
    """One line: AUC with and without image features on the same held-out patients, and how
    many image columns the model's radiomic reduction kept."""
    from models.inspection import radiomic_selection

    w, wo = m["with_images"], m["without_images"]
    selection = radiomic_selection(model) if model is not None else None
    kept = ""
    if selection:
        n_kept = len(selection["kept"])
        kept = (f"\nthe radiomic reduction, chosen on the training folds, kept {n_kept} of "
                f"{selection['n_columns']} image columns"
                + (": the model with images is the model without them" if n_kept == 0
                   else ""))
    return kept + (f"\nimage features, the same {m['n']} held-out lesions: AUC with "
            f"{w['auc']:.3f} ({w['auc_ci'][0]:.3f}-{w['auc_ci'][1]:.3f}), without "
            f"{wo['auc']:.3f} ({wo['auc_ci'][0]:.3f}-{wo['auc_ci'][1]:.3f}); difference "
            f"{m['auc_difference']:+.3f} ({m['auc_difference_ci'][0]:+.3f} to "
            f"{m['auc_difference_ci'][1]:+.3f}), DeLong p = {m['delong_p_value']:.2g}")


def describe_update(m: dict) -> str:
    """Lines: the update chosen and calibration before and after, on the local patients."""
    o, u = m["original"], m["updated_cross_validated"]

    def line(name: str, d: dict) -> str:
        return (f"  {name:<34} AUC {d['auc']:.3f}, calibration intercept "
                f"{d['calibration_intercept']:+.2f}, slope {d['calibration_slope']:.2f}, "
                f"Brier {d['brier']:.4f}")

    tests = "; ".join(f"{t['comparison']}: LR {t['lr']:.1f} on {t['df']} df, p = "
                      f"{t['p_value']:.2g}" for t in m.get("tests") or [])
    return "\n".join([f"\nupdate: {m['chosen']} (asked: {m['requested']})"
                      + (f"; closed test: {tests}" if tests else ""),
                      line("original model, local patients", o),
                      line("updated model, cross-validated", u)])
