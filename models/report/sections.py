"""The report's sections, built from the metrics dict as written to ``metrics.json``.

:func:`build_document` returns the sections of ``report.md`` and ``report.html`` (rendered by
:mod:`models.report.document`): summary, data, outcome, predictors, sample size, methods,
the fitted model's features, performance, image features, internal validation, simulator
fidelity, model card, software and the TRIPOD+AI / CLEAR checklist. Sections name the
TRIPOD+AI 2024 items (Collins et al., BMJ 2024;385:e078378) and CLEAR items (Kocak et al.,
Insights Imaging 2023;14:75) they answer. Every table comes from :mod:`models.report.tables`
(the ones ``metrics.md`` shows) and every number is formatted by :mod:`models.report.format`
from the metrics dict, never recomputed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from features.article import FIGURES, PREVALENCE
from features.contract import ID, is_radiomic
from models.classifier import (
    CUSTOM,
    RADIOMIC_REDUCTION,
    estimator_name,
    has_spline_terms,
    settings_text,
    tuning_text,
)
from models.evaluation import BAYES_COLUMN, pooled_probabilities
from models.inspection import SPLINE_METHOD, fitted_pipeline, radiomic_selection
from models.report import format as fmt
from models.report.document import Bullets, Callout, Figure, Para, Section, Table, walk_sections
from models.report.figures import spline_curves
from models.report.model_card import ModelCard, build_model_card
from models.report.tables import (
    DOR_METHOD,
    EVALUATED_AS,
    INTERVALS_NOTE,
    MATCHED_SENSITIVITY_EXCEPTION,
    MATCHED_SENSITIVITY_NOTE,
    PREVALENCE_NOTE,
    SPLINE_EFFECTS_NOTE,
    article_table,
    benchmark_table,
    bootstrap_method,
    bootstrap_table,
    evaluated_units,
    feature_effects_table,
    fidelity_table,
    image_difference_text,
    image_features_table,
    internal_validation_table,
    model_lines,
    model_selection_table,
    nested_folds_table,
    net_benefit_table,
    optimism_by_family_table,
    participant_table,
    pooled_note,
    predictor_table,
    prevalence_table,
    radiomic_selection_table,
    radiomic_table,
    rule_comparison_table,
    rule_remarks,
    rules_vs_model_tables,
    sample_size_lines,
    study_lines,
    unit_sentence,
    units_text,
    validation_scheme,
    wide_block_table,
)
from models.report.waiting import waiting_section
from models.report.words import Words, words_of
from models.statistics import AUC_CI_METHOD, CALIBRATION_CI_METHOD, PREVALENCE_CI_METHOD

__all__ = ["build_document"]



# --------------------------------------------------------------------------- helpers


def _events(n, n_pos, data: Mapping | None = None) -> str:
    """``n = 400 (40 pseudoprogression)``, the class as ``data`` (the metrics) names it."""
    return f"n = {fmt.cell(n)} ({fmt.cell(n_pos)} {words_of(data).positive})"


def _with(table: Table, caption: str) -> Table:
    """``table`` with ``caption``."""
    return Table(table.headers, table.rows, caption, table.notes)


def _is_simulated(data: Mapping, frame: pd.DataFrame, model, fidelity) -> bool:
    """True when the evaluated rows are synthetic: the simulator's posterior is beside them,
    a fidelity table was given, or they are held out from a simulated training cohort."""
    if BAYES_COLUMN in frame.columns or "bayes_ceiling" in data or fidelity is not None:
        return True
    return bool(data.get("split")) and _trained_on_synthetic(model)


def _trained_on_synthetic(model) -> bool:
    source = str((getattr(model, "training", None) or {}).get("source", ""))
    return source.lower().startswith("simulated")


def _rule_definitions(data: Mapping) -> Table:
    """Each benchmarked rule: what it says, what it reads, where it comes from, its
    coverage."""
    from features.rule_grammar import columns, parse
    from models.rules import describe_rules

    w = words_of(data)
    known = {r["rule"]: r for r in describe_rules().to_dict(orient="records")}
    declared = {d.get("id"): d for d in (w.study.get("declared_rules") or [])}
    rows = []
    for rid, m in (data.get("rules") or {}).items():
        covered = f"{fmt.cell(m.get('n'))} ({fmt.pct(m.get('coverage'))})"
        if rid in declared:
            d = declared[rid]
            rows.append([rid, d.get("positive_when", ""),
                         ", ".join(columns(parse(d.get("positive_when", "")))),
                         d.get("source") or "declared in the table description", covered])
            continue
        spec = known.get(rid) or {}
        rows.append([rid, spec.get("pseudoprogression_when", "(not one of the article's rules)"),
                     spec.get("needs", ""), f"article {spec.get('figure', '')}", covered])
    ev = _events(data.get("n"), data.get("n_positive"), data)
    whose = "The article's rules" if not declared else \
        ("The declared rules" if not set(data.get("rules") or {}) - set(declared)
         else "The article's and the declared rules")
    return Table(["rule", f"says {w.positive} when", "reads", "source",
                  "rows covered (coverage)"], rows,
                 f"{whose} as evaluated on {ev} rows. A rule abstains on a row "
                 "lacking an input it reads.")


def _rules_compared(data: Mapping) -> str:
    """What the model is compared with, in a few words."""
    w = words_of(data)
    declared = bool(w.study.get("declared_rules"))
    article = bool(set(data.get("rules") or {})
                   - {d.get("id") for d in w.study.get("declared_rules") or []})
    if article and declared:
        return "the article's published rules and the study's declared rules"
    if declared:
        return "the study's declared rules"
    if article:
        return "the article's published rules"
    return "no rule (none applies to this table)"


# --------------------------------------------------------------------------- sections


#: How each validation scheme scores the lesions, for the objective and the methods.
_SCHEME_TEXT = {
    "cv": "repeated patient-grouped cross-validation of the whole procedure (every lesion "
          "scored by models that never saw its patient)",
    "bootstrap": "the bootstrap of the whole procedure (Harrell's optimism correction of the "
                 "saved model for discrimination, the Brier score and the rates at the "
                 "threshold; calibration from the refits' predictions for the patients "
                 "their resample left out)",
}


def _summary(data: Mapping, simulated: bool, scheme: str, units: tuple) -> Section:
    w = words_of(data)
    m = data.get("model") or {}
    boot = data.get("bootstrap") or {}
    where = {"holdout": "held-out set", "cv": "evaluated out of fold",
             "bootstrap": "evaluated out of bag"}.get(scheme, "evaluated set")
    auc_boot = boot.get("auc") if isinstance(boot.get("auc"), Mapping) else None
    items = [
        f"{where.capitalize()}: {units_text(*units)}; {fmt.cell(data.get('n_positive'))} "
        f"{w.positive} (prevalence {fmt.pct(data.get('prevalence'))}).",
        f"AUC {fmt.est_ci(m.get('auc'), m.get('auc_ci'))} "
        + ("(Harrell-corrected; the saved model's DeLong 95% CI moved to it)"
           if scheme == "bootstrap" else "(DeLong 95% CI, logit scale)")
        + (f"; {'the averaged out-of-bag ensemble: ' if scheme == 'bootstrap' else ''}"
           f"bootstrap 95% CI {fmt.est_ci(auc_boot.get('estimate'), auc_boot.get('ci'))}"
           if auc_boot else "") + ".",
        "Calibration intercept "
        f"{fmt.est_ci(m.get('calibration_intercept'), m.get('calibration_intercept_ci'))}, slope "
        f"{fmt.est_ci(m.get('calibration_slope'), m.get('calibration_slope_ci'))}"
        + (" (pooled out of bag: the refits, not the saved model)"
           if scheme == "bootstrap" else "")
        + f"; Brier {fmt.brier(m.get('brier'))}.",
        f"At threshold {fmt.g(data.get('threshold'))}: sensitivity "
        f"{fmt.pct_ci(m.get('sensitivity'), m.get('sensitivity_ci'))}, PPV "
        f"{fmt.pct_ci(m.get('ppv'), m.get('ppv_ci'))}.",
    ]
    comps = data.get("rule_comparisons") or {}
    better = [rid for rid, c in comps.items()
              if fmt.num(((c.get("ppv_difference") or {}).get("ci") or [None])[0]) > 0]
    if comps:
        items.append(f"At each rule's own sensitivity the model's PPV is higher with a paired "
                     f"95% CI above 0 for {len(better)} of {len(comps)} rules.")
    compared = _rules_compared(data)
    if scheme == "holdout":
        objective = (
            f"Objective: develop a calibrated classifier that tells {w.positive} from "
            f"{w.negative}, evaluate it on held-out patients with internal validation only, "
            f"and compare it with {compared} through the same metrics.")
    elif scheme in _SCHEME_TEXT:
        objective = (
            f"Objective: develop a calibrated classifier that tells {w.positive} from "
            f"{w.negative}, validate it internally by {_SCHEME_TEXT[scheme]}, and compare it "
            f"with {compared} through the same metrics.")
    else:
        objective = (
            "Objective: evaluate a saved calibrated classifier on the rows of one table and "
            f"compare it with {compared} through the same metrics.")
    blocks = [Callout("Research use only: not for clinical decisions." + (
        " All data in this report are synthetic." if simulated else ""), "warning"),
        Para(objective), Bullets(items)]
    notes = study_lines(data)
    if notes:
        blocks.append(Bullets(notes))
    return Section("Summary", blocks, tripod="4 (items 1-2, title and abstract, do not apply)")


def _data_section(data: Mapping, model, simulated: bool, units: tuple, scheme: str) -> Section:
    split = data.get("split") or {}
    training = getattr(model, "training", None) or {}
    blocks: list = []
    source = training.get("source") or "the training table"
    if scheme == "holdout":
        where = f"Training and held-out patients both come from: {source}."
    elif split:
        where = (f"All patients come from: {source}. The final model is fitted on all of "
                 f"them; the performance figures use {split.get('evaluated_on', 'resampling')}.")
    else:
        where = ("The evaluated rows are the table given for this evaluation (named in the "
                 "title), not the model's training data"
                 + (f" ({training.get('source')})" if training.get("source") else "") + ".")
    unit = unit_sentence(*units)
    if simulated:
        blocks.append(Para(
            f"{where} The data are synthetic: lesions drawn from a generator whose parameters "
            "are derived from the article's reported figures; no patient data, so dates of "
            f"accrual, centres, eligibility screening and ethics approval do not apply. {unit}"))
    else:
        study = words_of(data).study
        known = " ".join(f"{name}: {study[key]}." for key, name in
                         (("population", "Population"), ("setting", "Setting"))
                         if study.get(key))
        blocks.append(Para(
            f"{where} {unit} " + (f"{known} Centres, dates of accrual and eligibility "
                                  "criteria beyond these" if known else
                                  "The setting, centres, dates of accrual and eligibility "
                                  "criteria")
            + " are not recorded in the table and must be stated by the study."))
    if not simulated and _trained_on_synthetic(model):
        blocks.append(Callout("The model was trained on synthetic data "
                              f"({training.get('source')}).", "warning"))
    blocks.append(participant_table(data, units[1], training))
    if scheme == "holdout":
        text = ("Development and evaluation data come from the same source by a random "
                "patient split, so they share setting, eligibility, outcome and predictors by "
                "design.")
    elif split:
        text = ("Development and evaluation use the same patients: each lesion's probability "
                "comes from models fitted without its patient, so this is internal validation, "
                "not a test on new patients.")
    else:
        text = ("The evaluation rows were given as one table; how they differ from the "
                "training data (setting, eligibility, outcome, predictors) must be stated by "
                "the study.")
    blocks.append(Para(text))
    return Section("Source of data and participants", blocks,
                   tripod="5a, 5b, 6a, 6b, 16, 20a", clear="10, 13, 15")


def _outcome_section(simulated: bool, w: Words | None = None) -> Section:
    w = w or Words()
    if not w.article:
        return _own_outcome_section(w)
    text = ("Outcome: pseudoprogression (label 1), a treatment-related, transient enlargement "
            "of a lesion after immunotherapy or radio-chemotherapy, against true progression "
            "(label 0), at the scan that shows the enlargement (3-12 weeks after the start of "
            "treatment, article P3). The label is the column `pseudoprogression`, one per "
            "lesion. The positive class everywhere is pseudoprogression.")
    ref = ("Reference standard: the simulator's true class of each synthetic lesion (known "
           "without error), so outcome assessors, their blinding and subjective "
           "interpretation do not apply." if simulated else
           "Reference standard: as recorded in the table. In practice it is follow-up imaging "
           "at 12 weeks or later (article T3) or biopsy (D5); the study must state which, who "
           "assessed it and whether they were blinded to the predictors.")
    return Section("Outcome", [Para(text), Para(ref)], tripod="3a, 8a, 8b, 8c", clear="18")


def _own_outcome_section(w: Words) -> Section:
    """The outcome of a study with its own label, in the table description's words (its
    ``study`` block), saying plainly what it does not know."""
    outcome = w.study.get("outcome") or f"as labelled in column {w.label_column}"
    text = (f"Outcome: {w.positive} (label 1) against {w.negative} (label 0); {outcome}. "
            f"The label is the column `{w.label_column}`, one per row. The positive class "
            f"everywhere is {w.positive}.")
    blocks: list = [Para(text)]
    facts = [f"{name}: {w.study[key]}" for key, name in
             (("population", "Population"), ("setting", "Setting")) if w.study.get(key)]
    if facts:
        blocks.append(Bullets(facts))
    standard = w.study.get("reference_standard")
    blocks.append(Para(
        f"Reference standard: {standard}." if standard else
        "Reference standard: as recorded in the table; the table description does not say "
        "how the label was decided (study.reference_standard), who assessed it or whether "
        "they were blinded to the predictors: the study must state it."))
    return Section("Outcome", blocks, tripod="3a, 8a, 8b, 8c", clear="18")


def _chosen_params(data: Mapping, model) -> dict:
    """The chosen family's settings (``best_params``), from the bundle or the metrics."""
    cv = getattr(model, "cv_scores", None) or (data.get("model_selection") or {}).get("cv") or {}
    chosen = getattr(model, "family", None) or (data.get("model_selection") or {}).get("chosen")
    params = (cv.get(chosen) or {}).get("best_params") if isinstance(cv, Mapping) else None
    return dict(params) if isinstance(params, Mapping) else {}


def _radiomic_method(data: Mapping, model) -> str:
    """How the chosen model's radiomic selection picked columns, in a few words."""
    params = _chosen_params(data, model)
    method = params.get("prepare__radiomic__select__method")
    if method == "l1":
        return (f"the L1-penalised logistic regression (inverse penalty "
                f"{fmt.g(params.get('prepare__radiomic__select__l1_scale'))} x the smallest "
                "that admits a column)")
    if method == "kbest":
        return f"the F-test (the {params.get('prepare__radiomic__select__k')} strongest)"
    return "the selection step"


def _outcome_steps(data: Mapping, model, radiomic: Sequence[str]) -> list[str]:
    """Each step of the procedure that looks at the outcome, and where it runs."""
    scheme = validation_scheme(data)
    inside = {"holdout": "on the training patients only (the held-out patients never), and "
                         "again inside every fold of the nested cross-validation",
              "cv": "inside every cross-validation fold, on that fold's training patients "
                    "only, and once more on all patients for the final model",
              "bootstrap": "inside every bootstrap resample, and once more on all patients "
                           "for the final model"}.get(
        scheme, "when the model was trained, on its training patients only")
    source = str(getattr(model, "threshold_source", "") or "")
    steps = []
    if radiomic:
        steps.append(f"Radiomic selection ({len(radiomic)} columns; univariate F-test or L1 "
                     f"penalty against the label): {inside}.")
    steps += [
        f"Tuning of each family's settings and the choice of family (patient-grouped "
        f"cross-validation): {inside}.",
        f"Calibration (sigmoid map on out-of-fold predictions): {inside}.",
        "Threshold: " + (f"{source}; chosen {inside}." if "sensitivity" in source else
                         "fixed in advance (" + (source or "not recorded")
                         + "), so it does not look at the outcome."),
        "The univariable odds ratios below: on the evaluated rows, descriptive only; the "
        "model does not use them.",
    ]
    return steps


def _radiomic_block(data: Mapping, model, names: Sequence[str]) -> list[str]:
    """The model's wide-block columns: pyradiomics names and declared ``block: radiomic``."""
    declared = {}
    if model is not None and hasattr(model, "declared"):
        declared = model.declared() or {}
    return [c for c in names if is_radiomic(c)
            or getattr(declared.get(c), "block", None) == "radiomic"]


def _unused_columns(data: Mapping, selection: Mapping | None) -> list[str]:
    """Columns of the table the model does not use, each with the reason."""
    out = []
    undeclared = (data.get("study") or {}).get("undeclared") or []
    if undeclared:
        out.append(f"Not declared, dropped before training ({len(undeclared)}): "
                   + ", ".join(f"`{c}`" for c in undeclared[:20])
                   + (f" and {len(undeclared) - 20} more" if len(undeclared) > 20 else "")
                   + ".")
    dropped = (selection or {}).get("dropped") or {}
    by_reason: dict[str, list[str]] = {}
    for name, reason in dropped.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, cols in by_reason.items():
        shown = ", ".join(f"`{c}`" for c in cols[:12])
        more = f" and {len(cols) - 12} more" if len(cols) > 12 else ""
        out.append(f"Left out by the radiomic reduction of the final model, {reason} "
                   f"({len(cols)}): {shown}{more}.")
    return out


def _predictor_section(data: Mapping, model) -> Section:
    columns = [str(c) for c in (getattr(model, "feature_columns", None) or [])]
    names = columns or [str(r.get("feature")) for r in (data.get("feature_odds_ratios") or [])
                        if isinstance(r, Mapping) and "(" not in str(r.get("feature"))]
    wide = _radiomic_block(data, model, names)
    radiomic = [c for c in wide if is_radiomic(c)]
    ev = _events(data.get("n"), data.get("n_positive"), data)
    blocks: list = []
    if columns:
        parts = f"{len(columns) - len(wide)} from the column contract (or declared)"
        if radiomic:
            parts += f" and {len(radiomic)} pyradiomics features named `<sequence>_<feature>`"
        if len(wide) > len(radiomic):
            parts += (f"{',' if radiomic else ' and'} {len(wide) - len(radiomic)} declared in "
                      "the radiomic block")
        blocks.append(Para(f"The model may use {len(columns)} column(s) of the table: {parts}. "
                           + ("Every column outside the radiomic block enters the model as "
                              "it is; the radiomic block is reduced inside the model's "
                              f"pipeline: {RADIOMIC_REDUCTION}." if wide else
                              "Every column enters the model as it is.")
                           + " Steps that look at the outcome:"))
        blocks.append(Bullets(_outcome_steps(data, model, wide)))
    else:
        blocks.append(Para("No model bundle was given, so the model's column list is not "
                           "shown; the numeric columns found in the evaluation table are "
                           "listed."))
    table = predictor_table(data, [c for c in names if c not in wide])
    if table.rows:
        blocks.append(_with(table, (
            f"Predictors, their availability and univariable odds ratio of "
            f"{words_of(data).positive} "
            f"on the {ev} evaluated rows (continuous: per SD of the contract-transformed value; "
            "binary: 1 vs 0).")))
    selection = radiomic_selection(model) if wide else None
    if wide:
        strongest, rest = wide_block_table(data, wide)
        if strongest.rows:
            blocks.append(_with(strongest, (
                f"The radiomic block's columns with the strongest univariable association with "
                f"{words_of(data).positive} on the {ev} evaluated rows (smallest p first; per "
                "SD of the column), with the rows holding a value"
                + (f"; {rest} more in metrics.json (feature_odds_ratios)." if rest else ".")
                + " Descriptive only: the model's own selection runs inside the folds.")))
    if radiomic:
        kept = len((selection or {}).get("kept") or [])
        summary = radiomic_table(radiomic, selection)
        blocks.append(_with(summary, (
            f"The {len(radiomic)} radiomic columns counted by sequence (rows) and pyradiomics "
            "feature class (columns)"
            + (f"; {kept} kept by the reduction fitted on all training rows." if selection
               else "; the model bundle does not say which the reduction kept."))))
    if selection:
        kept = len(selection.get("kept") or [])
        blocks.append(_with(radiomic_selection_table(selection), (
            f"The radiomic columns the final model uses: {selection.get('n_columns')} "
            f"columns, {fmt.cell(selection.get('n_after_variance'))} after the "
            "zero-variance filter, "
            f"{fmt.cell(selection.get('n_after_correlation'))} after the correlation "
            f"filter, {kept} kept by {_radiomic_method(data, model)}; training rows "
            "only; F statistics shown whichever selected).")))
    unused = _unused_columns(data, selection)
    if unused:
        blocks.append(Para("Columns of the table the model does not use, and why:"))
        blocks.append(Bullets(unused))
    blocks.append(Para("Transformations (logistic regression): log for positive ratios and "
                       "concentrations, log(1 + pct/100) for % changes, logit for percentages, "
                       "then standardisation; the spline family adds restricted cubic spline "
                       "terms of each continuous column on that transformed scale (knots at "
                       "quantiles of the training rows, linear beyond the outer knots; 0/1 "
                       "columns stay linear); gradient boosting uses the same transforms "
                       "without scaling. `cancer_type` is one-hot (logistic, spline) or "
                       "ordinal (boosting) coded."))
    from models.report.model_card import MISSING_DATA_HANDLING

    blocks.append(Bullets(list(MISSING_DATA_HANDLING)))
    return Section("Predictors and missing data", blocks, tripod="7, 9a, 9b, 9c, 11, 12b, 20b",
                   clear="17, 29, 32, 35")


def _sample_size_section(data: Mapping, units: tuple) -> Section:
    iv = data.get("internal_validation") or {}
    epv = iv.get("events_per_feature") or {}
    blocks: list = [Para(line) for line in sample_size_lines(data)]
    if blocks:
        ratio = epv.get("events_per_feature")
        if epv.get("enough") is False:
            blocks.append(Callout(
                f"Only {fmt.g(ratio)} events per candidate feature, below "
                f"{fmt.g(epv.get('minimum'))}: the model may be unstable and its apparent "
                "performance optimistic. Read the internal-validation figures, not the "
                "apparent ones, and treat them with caution.", "warning"))
    else:
        blocks.append(Para("Events per candidate feature were not recorded for this "
                           "evaluation (no training run behind it)."))
    riley = isinstance(epv, Mapping) and bool((epv.get("riley") or {}).get("method"))
    blocks.append(Para(
        f"The evaluated set holds {units_text(*units)}, {fmt.cell(data.get('n_positive'))} of "
        f"the lesions {words_of(data).positive}. "
        + ("" if riley else "No formal sample-size calculation was done; ")
        + ("the width" if not riley else "The width")
        + " of every confidence interval below shows what this size allows."))
    return Section("Sample size", blocks, tripod="10, 21", clear="9")


def _methods_section(data: Mapping, model, scheme: str) -> Section:
    cv = getattr(model, "cv_scores", None) or (data.get("model_selection") or {}).get("cv") or {}
    chosen = getattr(model, "family", None) or (data.get("model_selection") or {}).get("chosen")
    split = data.get("split") or {}
    if scheme == "holdout":
        data_use = (
            "Data use: patients split once into training and held-out evaluation sets, "
            "stratified by the label, each patient's lesions kept on one side; nothing is "
            "fitted or calibrated on held-out patients, and nothing is tuned on them, with ")
    elif scheme in _SCHEME_TEXT:
        data_use = (
            "Data use: the final model is fitted on all patients, and its performance is "
            f"estimated by {_SCHEME_TEXT[scheme]}: {split.get('evaluated_on', '')}; no lesion "
            "is scored by a model fitted or calibrated on its own patient, and nothing is "
            "tuned on the scored lesions, with ")
    else:
        data_use = (
            "Data use: the model was fitted before this evaluation; nothing was fitted or "
            "calibrated on the evaluated rows, and nothing is tuned on them, with ")
    iv = data.get("internal_validation") or {}
    nested = not iv or bool(iv.get("nested_cv"))
    validation = {
        "holdout": ("Internal validation: apparent performance, nested cross-validation of "
                    "the whole procedure (tuning, family choice, calibration, threshold) on "
                    "the training patients, and the held-out patients, kept apart below."
                    if nested else
                    "Internal validation: apparent performance and the held-out patients, "
                    "kept apart below (no nested cross-validation was run)."),
        "cv": "Internal validation: apparent performance and the repeated cross-validation "
              "of the whole procedure (tuning, family choice, calibration, threshold), kept "
              "apart below.",
        "bootstrap": "Internal validation: apparent performance, Harrell's optimism-corrected "
                     "figures, the refits' pooled out-of-bag figures and the optimism by the "
                     "family each refit chose, kept apart below.",
    }.get(scheme, "Internal validation: done when the model was trained (its own report); "
                  "this evaluation of the saved model adds none.")
    blocks: list = [Bullets([
        data_use + MATCHED_SENSITIVITY_EXCEPTION + ".",
        _families_text(cv, chosen, model),
        "Calibration: sigmoid (Platt) map fitted on pooled out-of-fold predictions of the "
        "training patients, each from a model that did not see that patient, applied to the "
        "model refitted on all training patients.",
        "Class imbalance: no resampling or class weighting, so the probabilities are calibrated "
        "to the training prevalence.",
        validation,
        f"Output: a calibrated {words_of(data).p}; the call is 1 at or above the stored "
        f"threshold ({fmt.g(data.get('threshold'))}; rationale in the model card).",
        f"Performance measures: discrimination (AUC with a 95% CI from the {AUC_CI_METHOD}, "
        "and a patient-level percentile bootstrap CI), calibration (intercept and slope of a "
        f"logistic recalibration, {CALIBRATION_CI_METHOD}; Brier score; calibration plot), "
        "classification (sensitivity, specificity, PPV, NPV at the threshold with Wilson "
        f"95% CIs; {words_of(data).say(DOR_METHOD)}), clinical utility (decision-curve net "
        "benefit: at each threshold probability pt the model calls "
        f"{words_of(data).positive} at p >= pt), and PPV/NPV re-stated at "
        + _prevalences_text(data) + f" (95% CIs: {PREVALENCE_CI_METHOD}).",
        *_clustered_methods(data),
        "Comparison with the rules: each rule on the rows it covers, against the model on the "
        "same rows read at the rule's sensitivity; model minus rule PPV and specificity with "
        "paired bootstrap CIs (model and rule resampled together, the matching threshold "
        "found again in every resample), AUC difference by DeLong's test and by paired "
        "bootstrap.",
        "Not done: clustering by centre (single site assumed), fairness across "
        "sociodemographic groups (no such columns), model updating.",
    ])]
    if cv:
        behind = (f"{_events(split.get('n_train'), split.get('n_train_positive'), data)} "
                  "training "
                  "rows" if split else "the training patients")
        blocks.append(_with(model_selection_table(cv, chosen),
                            f"Model choice by grouped cross-validation on {behind}."))
    params = _chosen_params(data, model)
    if params:
        blocks.append(Para(f"Settings of the chosen family ({chosen}), chosen by the "
                           f"cross-validation: {settings_text(params)}."))
    settings = _estimator_settings(model)
    if settings:
        blocks.append(Para(settings))
    unc = data.get("uncertainty") or {}
    if unc:
        blocks.append(Para(f"Bootstrap: {unc.get('n_resamples')} resamples of "
                           f"{unc.get('resampling_unit')}, seed {unc.get('seed')}, percentile "
                           "95% intervals."))
    return Section("Analysis methods", blocks, tripod="12a, 12c, 12d, 12e, 12f, 13, 14, 15",
                   clear="30, 34, 35, 37, 39, 40, 41")


#: The built-in families in words, for the methods.
_FAMILY_TEXT = {
    "logistic": "L2-penalised logistic regression on the contract's transforms",
    "spline": "the same with restricted cubic splines of each continuous column (curved "
              "effects; Harrell's form, knots at quantiles)",
    "gradient_boosting": "histogram gradient boosting (100 trees)",
}


def _own_estimator(model) -> str:
    """The class of a user's own classifier behind ``model``, or ''."""
    recorded = (getattr(model, "training", None) or {}).get("estimator")
    if recorded:
        return str(recorded)
    pipe = fitted_pipeline(model)
    return estimator_name(pipe) if pipe is not None else ""


def _families_text(cv: Mapping, chosen: str | None, model) -> str:
    """How the family and its settings were chosen: the families compared (those in ``cv``,
    every built-in one when ``cv`` is not recorded), the tuning grid, and a user's own
    classifier when there is one."""
    names = list(cv) if cv else list(_FAMILY_TEXT)
    built_in = [f for f in names if f in _FAMILY_TEXT]
    own = _own_estimator(model) if CUSTOM in names else ""
    own_text = (f"the user's own classifier{f' (`{own}`)' if own else ''}, behind the "
                "logistic family's preparation (contract transforms, median imputation with "
                "missing-value indicators, standardisation, the radiomic reduction untuned, "
                "categories one-hot), with its settings as given (not tuned)")
    if CUSTOM in names and not built_in:
        return (f"Model: {own_text}. Its log loss and AUC by patient-grouped, stratified "
                "cross-validation (5 folds, fewer when a class is rare) on the training "
                "patients are given below; no built-in family was compared.")
    families = [_FAMILY_TEXT[f] for f in built_in] + ([own_text] if CUSTOM in names else [])
    listed = "; ".join(families)
    return (
        "Model families compared by patient-grouped, stratified cross-validation (5 folds, "
        "fewer when a class is rare) on the training patients, by log loss (a proper score): "
        f"{listed}. Each built-in family's few settings that matter are chosen by grid "
        "search on the same folds, the radiomic reduction first when there are radiomic "
        f"columns, then the family's grid. Tuning grid: {tuning_text()}. A family's score is "
        "that of its best settings (slightly optimistic, being the best of a few on the same "
        "folds; "
        "the tuning sees only training patients, so the validation below covers it). A "
        "family that cannot learn from so few events is skipped, with a note. The family "
        "with the lowest mean log loss is kept" + (f" ({chosen})" if chosen else "")
        + ", with its settings; every family's score and chosen settings are in the table "
        "below.")


def _estimator_settings(model) -> str:
    """The fitted model's estimator and calibration settings in one line, or ''."""
    pipe = fitted_pipeline(model)
    if pipe is None:
        return ""
    text = re.sub(r"\s+", " ", repr(pipe.named_steps["model"]))
    calibrated = getattr(getattr(model, "estimator", None), "estimator", None)
    method = getattr(calibrated, "method", None)
    folds = getattr(calibrated, "n_splits", None)
    if method is None:
        return f"The chosen model as fitted (non-default settings shown): `{text}`."
    return (f"The chosen model as fitted (non-default settings shown): `{text}`; calibration "
            f"`{method}` on {folds} patient-grouped folds.")


def _spline_effects_caption(data: Mapping, records: Sequence[Mapping]) -> str:
    """The caption of the spline family's feature effects: what the numbers are, on which
    lesions, and how the calibration changes them."""
    first = records[0] if records else {}
    rows = ("training lesions (no lesion is held out from the final model under this "
            "validation scheme)" if data.get("feature_effects_rows") == "training"
            else "evaluated lesions")
    caption = (f"What each input does in the fitted spline model ({len(records)} rows, "
               f"percentiles of the {rows}). {SPLINE_EFFECTS_NOTE} The log-odds difference "
               "is on the model's own log-odds; the odds ratio is its exponential.")
    factor = _calibration_factor(records)
    if fmt.finite(factor):
        caption += (f" The sigmoid calibration multiplies every log-odds by {fmt.g(factor)}, "
                    "so the odds ratio on the calibrated probability the model reports is the "
                    "odds ratio raised to that power.")
    return caption if first else ""


def _features_section(data: Mapping, model, figures: Mapping[str, str] | None = None
                      ) -> Section | None:
    """What the fitted model does with each feature (``metrics["feature_effects"]``), with
    the partial-effect figure of a spline model when ``figures`` holds it."""
    table = feature_effects_table(data)
    if table is None:
        return None
    records = [r for r in data.get("feature_effects") or [] if isinstance(r, Mapping)]
    first = records[0] if records else {}
    if str(first.get("method", "")) == SPLINE_METHOD:
        blocks: list = [_with(table, _spline_effects_caption(data, records))]
        key = "partial_effects"
        if figures and key in figures:
            n = len(spline_curves(records))
            title = "Partial effects of the curved inputs"
            blocks.append(Figure(
                key, figures[key],
                f"{title}. The fitted spline model's odds ratio against a lesion at the "
                f"column's median, for the {n} input{'s' if n != 1 else ''} with spline "
                "terms and the largest effect, over the column's 5th to 95th percentile, "
                "every other input held fixed (log scale; 1: no difference); dashed lines: "
                "the 25th and 75th percentiles, the two values of the interquartile odds "
                "ratio in the table.", title=title))
        return Section("Features of the fitted model", blocks, tripod="12b, 22", clear="35")
    if "coefficient" in str(first.get("method", "")):
        factor = _calibration_factor(records)
        caption = (
            f"Coefficients of the fitted logistic model ({len(table.rows)} model inputs, "
            "largest effect first), refitted on all training rows. Clinical and radiomic "
            "inputs and the missing-value indicators are standardised inside the pipeline, so "
            "a coefficient is per SD of the transformed value (a category level: 1 vs 0); the "
            "odds ratio is exp(coefficient) on the model's log-odds.")
        if has_spline_terms(fitted_pipeline(model)):
            caption += (" The spline family's `<column>_rcs<j>` inputs are the nonlinear "
                        "terms of a restricted cubic spline of that column: a column's "
                        "effect is its linear coefficient and its spline terms together, "
                        "a curve, not one odds ratio (these effects were recorded before "
                        "the per-column odds ratios were; train again to see them).")
        if fmt.finite(factor):
            caption += (
                f" The sigmoid calibration multiplies every log-odds by {fmt.g(factor)}, so the "
                "last column, the odds ratio on the calibrated probability the model reports, "
                "is the odds ratio raised to that power"
                + (", same direction and order." if factor > 0 else "."))
    else:
        rows = ("training rows (under this validation scheme no lesion is held out from the "
                "final model, so the importance is measured on lesions it was fitted on)"
                if data.get("feature_effects_rows") == "training" else "evaluated rows")
        caption = (
            "Permutation importance of each input column of the fitted "
            f"{getattr(model, 'family', None) or 'model'} on "
            f"{_events(first.get('n'), first.get('n_positive'), data)} {rows}: the drop in "
            "AUC when the column's values are shuffled among the rows, mean ± SD over "
            f"{fmt.cell(first.get('n_repeats'))} shuffles. Radiomic columns the reduction "
            "dropped cannot change a prediction and are not listed. Largest drop first.")
    return Section("Features of the fitted model", [_with(table, caption)], tripod="12b, 22",
                   clear="35")


def _calibration_factor(records: Sequence[Mapping]) -> float:
    """The sigmoid calibration's factor on the log-odds, read back from the coefficient and
    the odds ratio on the calibrated probability of one feature; nan when not recorded."""
    import math

    for r in records:
        b, orc = fmt.num(r.get("coefficient")), fmt.num(r.get("odds_ratio_calibrated"))
        if fmt.finite(b, orc) and abs(b) > 1e-6 and orc > 0:
            return math.log(orc) / b
    return float("nan")


def _performance_sections(data: Mapping, figures: Mapping[str, str], scheme: str,
                          has_bayes: bool) -> list[Section]:
    n, pos = data.get("n"), data.get("n_positive")
    w = words_of(data)
    ev = _events(n, pos, data)
    where = EVALUATED_AS[scheme]
    out: list[Section] = []

    # discrimination and calibration
    blocks: list = [Bullets(model_lines(data))]
    pooled = pooled_probabilities(data)
    if pooled:
        blocks.append(Callout(pooled_note(pooled), "info"))
    if data.get("bootstrap"):
        unit = (data.get("uncertainty") or {}).get("resampling_unit")
        blocks.append(_with(bootstrap_table(data),
                            f"The model's bootstrap 95% CIs on the {ev} {where} rows; "
                            f"{bootstrap_method(data)}"
                            + (f"; resampling unit: {unit}" if unit else "")
                            + ". Net benefit is the decision curve's (calls at p >= pt), as "
                              "in the net-benefit table below."))
    blocks += _figure_blocks(figures, ("roc", "precision_recall", "calibration"), data,
                             has_bayes, ev)
    out.append(Section("Discrimination and calibration", blocks, tripod="23a",
                       clear="40, 47", level=3))

    # benchmark
    first, second = rules_vs_model_tables(data)
    blocks = [Para(line) for line in study_lines(data) if "benchmarked" in line]
    blocks += [_rule_definitions(data),
               _with(benchmark_table(data), f"The model (all {ev} rows) and every rule (on its "
                     f"covered rows, n per row) through the same metrics. "
                     f"{w.say(INTERVALS_NOTE)}")]
    remarks = rule_remarks(data)
    if remarks:
        blocks.append(Bullets(remarks))
    if first.rows:
        blocks += [first, second, Para(MATCHED_SENSITIVITY_NOTE)]
    art = article_table(data)
    if art.rows:
        blocks.append(art)
    blocks += _figure_blocks(figures, ("odds_ratio_forest",), data, has_bayes, ev)
    title = ("Benchmark against the article's rules" if w.article else
             "Benchmark against the rules")
    out.append(Section(title, blocks, tripod="23a",
                       clear="41, 42, 48", level=3))

    # paired comparison
    if data.get("rule_comparisons"):
        table = rule_comparison_table(data)
        blocks = [
            _with(table.columns([0, 1, 2, 3, 4, 5]),
                  "Model minus rule on each rule's covered rows (n covered, events in "
                  "parentheses), the model read at the highest threshold reaching the rule's "
                  "sensitivity (found on these rows, and again in every resample); differences "
                  "in percentage points with paired bootstrap 95% CIs (model and rule "
                  "resampled together)."),
            _with(table.columns([0, 1, 6, 7, 8, 9]),
                  "AUC of the model against each rule on the same rows; a rule's AUC is "
                  "(sensitivity + specificity) / 2. Difference model minus rule with a paired "
                  "bootstrap 95% CI and by DeLong's test."),
        ]
        out.append(Section("PPV at each rule's sensitivity: model against rule (paired)", blocks,
                           tripod="23a", clear="41", level=3))

    # decision curve
    blocks = []
    if data.get("net_benefit"):
        nb = data["net_benefit"]
        blocks.append(_with(net_benefit_table(data), (
            "Decision-curve net benefit (net true positives per evaluated lesion) "
            f"on {_events(nb.get('n'), nb.get('n_positive'), data)} rows at a few threshold "
            f"probabilities pt; the model calls {w.positive} at p >= pt, the quantity of "
            f"the bootstrap table's net-benefit rows. {nb.get('abstention', '')}")))
    blocks += _figure_blocks(figures, ("decision_curve",), data, has_bayes, ev)
    out.append(Section("Clinical utility: decision curve and net benefit", blocks,
                       tripod="12e, 23a", clear="39, 47", level=3))

    # prevalence
    table = prevalence_table(data)
    blocks = [Para(PREVALENCE_NOTE)] if table.rows else [Para(
        "No other prevalence was given (study.prevalences in the table description): PPV and "
        f"NPV hold at this table's own prevalence, {fmt.pct(data.get('prevalence'))}, only.")]
    if table.rows:
        blocks.append(_with(table, (
            f"PPV and NPV of the model (sensitivity and specificity from the {ev} rows) and of "
            f"each rule (from its covered rows) at {_prevalences_text(data)}.")))
    blocks += _figure_blocks(figures, ("ppv_npv_prevalence",), data, has_bayes, ev)
    out.append(Section("PPV and NPV at other prevalences", blocks, tripod="23a", level=3))
    return out


def _prevalences_text(data: Mapping) -> str:
    """The prevalences PPV and NPV are restated at, named (``the article's prevalences: P1
    melanoma 9.8%, P2 lung 15.3%``), or that there are none."""
    w = words_of(data)
    if w.article and not w.study.get("prevalences"):
        return (f"the article's prevalences: P1 melanoma {fmt.pct(PREVALENCE['melanoma'])}, "
                f"P2 lung {fmt.pct(PREVALENCE['nsclc'])}")
    own = w.study.get("prevalences") or {}
    if not own:
        return "no other prevalence (none was given)"
    named = ", ".join(f"{w.prevalence_label(k)} {fmt.pct(v)}" for k, v in own.items())
    return ("the article's prevalences: " if w.article else "the study's prevalences: ") + named


_FIGURE_CAPTIONS = {
    "roc": ("ROC curve of the model on {ev} {where} rows, AUC {auc} (95% CI: {auc_method}). "
            "Each rule is a point at (1 - specificity, sensitivity) on the rows it "
            "covers, with 95% CIs ({proportion_method}); its n is in the legend.{bayes_auc}"),
    "precision_recall": ("Precision (PPV) against recall (sensitivity) of the model on {ev} "
                         "{where} rows, average precision {ap}; the horizontal line is the "
                         "prevalence ({prev}), the PPV of calling everyone {positive}. "
                         "Rules as points on their covered rows (n in the legend), 95% CIs "
                         "({proportion_method}).{bayes_ap}"),
    "calibration": ("Calibration of {p} on {ev} {where} rows: observed "
                    "proportion against mean predicted probability in 10 quantile bins (about "
                    "{per_bin} rows each, 95% Wilson CIs), lowess smooth and the identity line; "
                    "below, the predicted probabilities by true class. Intercept {intercept}, "
                    "slope {slope} ({calibration_ci})."),
    "decision_curve": ("Decision curve on {ev} {where} rows: net benefit (true positives per "
                       "lesion) of calling {positive}, for the model re-thresholded at "
                       "each threshold probability pt from 0.01 to 0.60 (calls at p >= pt), "
                       "treat-all, treat-none and every rule (an abstention counted as not "
                       "called, so all curves share the n rows)."),
    "odds_ratio_forest": ("Diagnostic odds ratio of each rule on its covered rows (n beside "
                          "each row) with 95% Woolf CIs, log scale{article_d3}. Evaluated "
                          "set: {ev}.{dor_notes}"),
    "ppv_npv_prevalence": ("PPV and NPV re-stated by Bayes' theorem over prevalences of 5-30% "
                           "for the model at its threshold and each rule, from sensitivity and "
                           "specificity measured on {ev} {where} rows (rules on their covered "
                           "rows){marks}."),
}
_FIGURE_TITLES = {
    "roc": "ROC curve", "precision_recall": "Precision-recall curve",
    "calibration": "Calibration plot", "decision_curve": "Decision curve",
    "odds_ratio_forest": "Diagnostic odds ratios of the rules",
    "ppv_npv_prevalence": "PPV and NPV against prevalence",
}


def forest_notes(data: Mapping) -> list[str]:
    """The notes of the forest plot's odds ratios, markers as the figure draws them."""
    notes = fmt.Footnotes()
    for m in (data.get("rules") or {}).values():
        fmt.dor(m.get("dor"), m.get("dor_ci"), m.get("dor_note", ""), notes)
    return notes.lines()


def _figure_blocks(figures: Mapping[str, str], keys: Sequence[str], data: Mapping,
                   has_bayes: bool, ev: str) -> list[Figure]:
    pooled = pooled_probabilities(data)  # the figures draw the pooled probabilities
    m = (pooled[1] if pooled else data).get("model") or {}
    scheme = validation_scheme(data)
    ceiling = data.get("bayes_ceiling") or {}
    ap = data.get("average_precision") or {}
    n = data.get("n") or 0
    ceiling_text = " Dashed: the simulator's exact posterior on the same rows (the ceiling), "
    w = words_of(data)
    undefined = [f"{rid}: {rm.get('dor_note')}" for rid, rm in (data.get("rules") or {}).items()
                 if str(rm.get("dor_note", "")).startswith("undefined")]
    notes = forest_notes(data)
    methods = data.get("interval_methods") or {}
    dor_notes = (" " + "; ".join(notes) + "." if notes else "") + (
        " Not drawn (undefined): " + "; ".join(undefined) + "." if undefined else "")
    values = {
        "ev": ev, "where": (f"{EVALUATED_AS[scheme]} ({pooled[0]})" if pooled
                            else EVALUATED_AS[scheme]),
        "auc": fmt.est_ci(m.get("auc"), m.get("auc_ci")), "prev": fmt.pct(data.get("prevalence")),
        "ap": fmt.fixed(ap.get("model")),
        "per_bin": fmt.cell(round(n / 10)) if n else "-",
        "bayes_auc": (ceiling_text + f"AUC {fmt.fixed(ceiling.get('auc'))}." if has_bayes
                      else ""),
        "bayes_ap": (ceiling_text + "average precision "
                     f"{fmt.fixed(ap.get('bayes_ceiling'))}." if has_bayes else ""),
        "intercept": fmt.est_ci(m.get("calibration_intercept"), m.get("calibration_intercept_ci")),
        "slope": fmt.est_ci(m.get("calibration_slope"), m.get("calibration_slope_ci")),
        "calibration_ci": f"95% CIs: {methods.get('calibration', CALIBRATION_CI_METHOD)}",
        "dor_notes": dor_notes,
        "auc_method": methods.get("auc", AUC_CI_METHOD),
        "proportion_method": methods.get("proportions", "Wilson score interval"),
        "article_d3": (", against the article's D3 odds ratio of "
                       + fmt.article_ratio(FIGURES["D3"].value, FIGURES["D3"].ci)
                       if w.article else ""),
        "positive": w.positive, "p": w.p,
        "marks": ("; dashed lines mark P1 melanoma 9.8% and P2 lung 15.3%" if w.article else
                  "; dashed lines mark " + _prevalences_text(data)
                  if w.study.get("prevalences") else ""),
    }
    return [Figure(k, figures[k], f"{_FIGURE_TITLES[k]}. " + _FIGURE_CAPTIONS[k].format(**values),
                   title=_FIGURE_TITLES[k])
            for k in keys if k in figures]


def _clustered_methods(data: Mapping) -> list[str]:
    """The intervals' methods when patients have several lesions (none otherwise)."""
    methods = data.get("interval_methods") or {}
    if not methods.get("unit", "").startswith("lesions clustered"):
        return []
    return ["Several lesions per patient: every interval and test treats the patient, not the "
            f"lesion, as the independent unit: AUC by the {methods['auc']}; sensitivity, "
            f"specificity, PPV and NPV by a {methods['proportions']}; diagnostic odds ratios "
            f"by a {methods['dor']}; calibration by {methods['calibration']}; model-rule AUC "
            f"differences by {methods['auc_difference']}; bootstrap intervals resample "
            "patients with all their lesions."]


def _internal_validation_section(data: Mapping, scheme: str) -> Section:
    iv = data.get("internal_validation") or {}
    text = {
        "cv": "Three figures kept apart: apparent (the final model on its own training "
              "patients, optimistic by construction), repeated cross-validation (the whole "
              "procedure refitted without each fold's patients and scored on them, every "
              "lesion called at its own fold model's threshold; mean ± SD over repeats: the "
              "headline figures) and, for comparison only, the averaged ensemble (each "
              "lesion's out-of-fold probabilities averaged over the repeats' models, which "
              "flatters the procedure).",
        "bootstrap": "Four figures kept apart. Apparent: the saved model on its own "
                     "training patients, optimistic by construction. Harrell-corrected: "
                     "apparent minus the mean optimism of the whole procedure refitted on "
                     "bootstrap resamples of patients (the copies of a patient drawn twice "
                     "kept together); it describes the saved model, and gives the headline's "
                     "AUC, Brier score, sensitivity, specificity, PPV and NPV. Pooled "
                     "out-of-bag: every refit scored on the patients its resample left out, "
                     "all those predictions in one fit; it describes the refits, not the "
                     "saved model, and gives the headline's calibration, because a refit's "
                     "calibration on its own resample does not exist when a flexible family "
                     "(nearly) separates the rows it was fitted on, so its optimism has no "
                     "useful mean. Averaged out-of-bag ensemble: each lesion's probability "
                     "averaged over the refits that left its patient out, which flatters; "
                     "the curves and the comparisons with the rules use it.",
    }.get(scheme, "Three figures kept apart: apparent (the final model on its own training "
                  "patients, optimistic by construction), nested cross-validation (the whole "
                  "procedure refitted on part of the training patients and scored on the fold "
                  "it never saw; mean ± SD over folds) and the held-out patients (set aside "
                  "before anything was fitted).")
    blocks: list = [Para(text)]
    if not iv:
        blocks.append(Callout("No internal validation was recorded with these metrics (an "
                              "evaluation of a saved model on a new table).", "info"))
    blocks.append(internal_validation_table(data))
    families = optimism_by_family_table(data)
    if families.rows:
        warning = (((iv.get("optimism_bootstrap") or {}).get("by_family") or {})
                   .get("warning"))
        if warning:
            blocks.append(Callout(warning[0].upper() + warning[1:] + ".", "warning"))
        blocks.append(families)
    folds = nested_folds_table(data)
    if folds.rows:
        blocks.append(folds)
    return Section("Internal validation", blocks, tripod="12c, 21, 23a", clear="38")


def _image_section(data: Mapping) -> Section | None:
    """What the radiomic features add: the same procedure with and without them, scored on
    the same held-out patients (``metrics["image_features"]``), and how extraction went."""
    img = data.get("image_features")
    if not img:
        return None
    extraction = data.get("radiomic_extraction") or {}
    failures = extraction.get("failures") or []
    blocks: list = [
        Para("The whole procedure (model choice, calibration, threshold) and its validation "
             "were run twice on the same patients, once with the radiomic columns and once "
             "without, and both models were scored on the same "
             f"{_events(img.get('n'), img.get('n_positive'), data)} "
             f"{EVALUATED_AS[validation_scheme(data)]} rows. " + image_difference_text(data)),
        image_features_table(data),
        Bullets([
            f"Rows in the image manifest: {fmt.cell(extraction.get('n_manifest'))}; lesions "
            f"found in the masks ({extraction.get('lesions', 'whole')}): "
            f"{fmt.cell(extraction.get('n_lesions'))} in "
            f"{fmt.cell(extraction.get('n_patients'))} patients; extracted: "
            f"{fmt.cell(extraction.get('n_extracted'))}; radiomic columns: "
            f"{fmt.cell(extraction.get('n_radiomic_columns'))} (pyradiomics settings version "
            f"{extraction.get('settings_version', '?')}).",
            f"Extraction failures: {len(failures)}"
            + ("" if not failures else " (" + "; ".join(
                f"{f.get('patient_id')}"
                + (f" lesion {f['lesion_id']}" if f.get("lesion_id") else "")
                + f" [{f.get('sequence')}]: {f.get('reason')}"
                for f in failures[:5]) + (" ..." if len(failures) > 5 else "") + ")") + ".",
            f"Radiomic columns are reduced inside the pipeline: {RADIOMIC_REDUCTION}; the "
            "columns kept are listed under Predictors."]),
    ]
    return Section("What the image features add", blocks, tripod="7, 23a")


def _update_section(data: Mapping) -> Section | None:
    """A model updated for a new site (``metrics["update"]``): the method chosen, the closed
    test, and the original against the updated model on the local patients."""
    upd = data.get("update")
    if not upd:
        return None
    tests = upd.get("tests") or []
    rows = []
    for name, key in (("original model", "original"),
                      ("updated model (cross-validated)", "updated_cross_validated")):
        m = upd.get(key) or {}
        rows.append([name, fmt.est_ci(m.get("auc"), m.get("auc_ci")),
                     fmt.est_ci(m.get("calibration_intercept"),
                                m.get("calibration_intercept_ci"), 2),
                     fmt.est_ci(m.get("calibration_slope"), m.get("calibration_slope_ci"), 2),
                     fmt.est_ci(m.get("brier"), None, 4)])
    original = upd.get("original_model") or {}
    blocks: list = [
        Para(f"The model trained on {original.get('source', 'another table')} "
             f"({fmt.cell(original.get('n'))} rows) was updated with these local patients. "
             f"Update asked: {upd.get('requested')}; used: {upd.get('chosen')}"
             + (f" (intercept {fmt.est_ci(upd.get('intercept'), upd.get('intercept_ci'), 2)}"
                f", slope {fmt.g(upd.get('slope'))} on the original model's log-odds)"
                if upd.get("chosen") in ("intercept", "logistic") else "")
             + (f"; the refit is a {upd['refit']}" if upd.get("refit") else "")
             + (". What it promises is the intercept's 95% interval; one of +/- 0.1 would "
                f"need about {fmt.cell(upd['local_lesions_for_intercept_within'].get('0.1'))} "
                "local lesions like these" if upd.get("local_lesions_for_intercept_within")
                else "") + ". The updated model's figures are "
             "out of fold: patient-grouped cross-validation of the update itself, so no "
             "lesion is scored by an update estimated on its own patient; each is the mean "
             "over the repeats of that repeat's figure, its interval combined over the "
             "repeats by Rubin's rules, and describes the update procedure rather than the "
             "saved update alone. Methods: "
             "Steyerberg, Clinical Prediction Models, ch. 20; closed test of Vergouwe et al., "
             "Stat Med 2017."),
        Table(["model", "AUC (95% CI)", "calibration intercept (95% CI)",
               "calibration slope (95% CI)", "Brier"], rows,
              caption="The original and the updated model on the same local lesions "
                      f"({CALIBRATION_CI_METHOD})."),
    ]
    if tests:
        blocks.append(Table(["comparison", "likelihood ratio", "df", "p", "decision"],
                            [[t.get("comparison"), fmt.g(t.get("lr")), fmt.cell(t.get("df")),
                              fmt.g(t.get("p_value")), t.get("decision")] for t in tests],
                            caption="Closed testing procedure: each update against the "
                                    "refitted model, stopping at the first non-significant "
                                    "test."))
    return Section("Updating the model for this site", blocks, tripod="2, 23b")


def _population_section(data: Mapping) -> Section | None:
    """How a labelled table differs from the training population (``population_shift``)."""
    shift = data.get("population_shift")
    if not shift:
        return None
    items = [str(s.get("detail") or s) for s in shift.get("shifts") or []]
    measured = fmt.est_ci(shift.get("calibration_intercept"),
                          shift.get("calibration_intercept_ci"), 2)
    text = (f"The model was calibrated to a training prevalence of "
            f"{fmt.pct(shift.get('training_prevalence'))}; on these lesions its "
            f"calibration-in-the-large, the measured shift, is {measured} (0 is none; above 0 "
            f"the model under-predicts {words_of(data).positive} here). ")
    text += ("Where the population differs, update the model with local patients: "
             f"{shift.get('remedy')}.")
    blocks: list = [Para(text)]
    if items:
        blocks.append(Callout("These lesions differ from the training population: "
                              + " ".join(items), kind="warning"))
    return Section("Population shift", blocks, tripod="23b")


def _fidelity_section(records: list[Mapping], n: int | None = None) -> Section:
    n_within = sum(bool(r.get("within_target")) for r in records)
    blocks = [Para(
        "Every article figure the simulator targets, measured on a simulated mixed cohort"
        + (f" of {n} lesions" if n else " (features.synthetic.cohort.fidelity_table; "
           "200,000 lesions by default)") + ": "
        f"{n_within} of {len(records)} within their target. Figures the simulator "
        "deliberately does not reproduce (they contradict others) are marked; see the "
        "limitations."),
        fidelity_table(records)]
    return Section("Simulator fidelity", blocks, tripod="5a, 26", clear="13")


def _model_card_section(card: ModelCard) -> Section:
    subs = [
        Section("Intended use", [Bullets(card.intended_use)], level=3, tripod="3b, 27b"),
        Section("Not intended for", [Bullets(card.not_intended)], level=3),
        Section("Model", [Bullets(pairs=card.model)], level=3, tripod="15, 22"),
        Section("Data", [Bullets(card.data)], level=3, tripod="5a, 20a"),
        Section("Missing data", [Bullets(card.missing_data)], level=3, tripod="11, 27a"),
        Section("Threshold and rationale", [Para(t) for t in card.threshold], level=3,
                tripod="15"),
        Section("Metrics with 95% CIs", [Table(["metric", "value"], card.performance,
                                              "Headline metrics; the evaluated rows and events "
                                              "are named in the first line.")],
                level=3, tripod="23a"),
        Section("Limitations", [Bullets(card.limitations)], level=3, tripod="26",
                clear="52"),
        Section("Using it", [Bullets(card.usability)], level=3, tripod="27a, 27b, 27c"),
    ]
    for s in subs:
        s.anchor = "card-" + s.anchor
    return Section("Model card", subs, tripod="3b, 15, 22, 26, 27a-c", clear="57")


def _software_section(card: ModelCard, model, every_prediction: bool = False) -> Section:
    if model is None:
        blocks: list = [Para("No model bundle was given to the report, so package versions "
                             "and the training data's hash are not shown. They are stored in "
                             "the bundle written by train.py (models.bundle.TrainedModel).")]
    else:
        blocks = [Table(["item", "value"], card.provenance,
                        "Provenance recorded in the model bundle (models.bundle.TrainedModel).")]
    blocks.append(Para(
        "Predictions are computed by the saved bundle (`TrainedModel.probability`; "
        "`predict.py --model MODEL.skops --data TABLE --out PRED.csv`). This folder also "
        "holds `metrics.json` (every number in this report), `metrics.md` and "
        + ("`evaluation_predictions.csv` (every prediction behind the evaluated lesions, one "
           "row per lesion and repeat, with its fold: label and probability)."
           if every_prediction else
           "`evaluation_predictions.csv` (one row per evaluated lesion: label, probability, "
           "each rule's call).")))
    return Section("Software, provenance and reproducibility", blocks,
                   tripod="12g, 18e, 18f, 22", clear="25, 54, 56, 57")


# --------------------------------------------------------------------------- checklist


def _checklist(simulated: bool, has_fidelity: bool, has_iv: bool,
               w: Words | None = None) -> Section:
    study = "not applicable: synthetic data" if simulated else "to be stated by the study"
    w = w or Words()
    rules = "the article's rules" if w.article else "the rules benchmarked"
    items = [
        ("1", "Title", "not applicable: a generated report, not an article"),
        ("2", "Abstract", "not applicable (the Summary is not a structured abstract)"),
        ("3a", "Healthcare context", f"Outcome; Benchmark ({rules} are the existing "
                                     "models)"),
        ("3b", "Target population, intended use", "Model card: intended use"),
        ("3c", "Health inequalities", "not addressed: no sociodemographic columns"),
        ("4", "Objectives", "Summary: development with internal validation, and comparison "
                            f"with {rules}"),
        ("5a", "Data sources", "Source of data and participants"
         + ("; Simulator fidelity" if has_fidelity else "")),
        ("5b", "Dates", study),
        ("6a", "Setting", "Source of data (single site assumed); " + study),
        ("6b", "Eligibility", "Source of data (one row per lesion at the enlarging scan)"),
        ("6c", "Treatments", "Outcome (immunotherapy or radio-chemotherapy); weeks on "
                             "treatment is a predictor" if (w or Words()).article else
         "to be stated by the study"),
        ("7", "Data preparation", "Predictors (column contract: units and ranges checked)"),
        ("8a", "Outcome definition", "Outcome"),
        ("8b", "Outcome assessors", "Outcome: " + study),
        ("8c", "Blinding of outcome", "Outcome: " + study),
        ("9a", "Choice of predictors", "Predictors and missing data"),
        ("9b", "Predictor definitions", "Predictors and missing data (units, meaning)"),
        ("9c", "Predictor assessors", study),
        ("10", "Sample size", "Sample size"),
        ("11", "Missing data", "Predictors and missing data; Model card"),
        ("12a", "Data use and partitioning", "Analysis methods"),
        ("12b", "Predictor handling", "Predictors and missing data (transformations)"),
        ("12c", "Model type, building, internal validation", "Analysis methods; Internal "
                                                             "validation"),
        ("12d", "Heterogeneity across clusters", "not examined: single site assumed"),
        ("12e", "Performance measures", "Analysis methods"),
        ("12f", "Model updating", "none done"),
        ("12g", "How predictions were calculated", "Software, provenance and reproducibility"),
        ("13", "Class imbalance", "Analysis methods: no resampling or weighting"),
        ("14", "Fairness", "not addressed: no sociodemographic columns"),
        ("15", "Model output and threshold", "Analysis methods; Model card: threshold"),
        ("16", "Training versus evaluation", "Source of data and participants"),
        ("17", "Ethical approval", study),
        ("18a-d", "Funding, conflicts, protocol, registration", "not covered by this report: "
                                                                "to be stated by the study"),
        ("18e", "Data sharing", "Software: evaluation_predictions.csv"
         + ("; the synthetic cohort is regenerated from its seed" if simulated else "")),
        ("18f", "Code sharing", "Software, provenance and reproducibility"),
        ("19", "Patient and public involvement", study),
        ("20a", "Participant flow", "Source of data and participants"),
        ("20b", "Characteristics, missing data", "Predictors and missing data (availability)"),
        ("20c", "Predictor distributions, development vs evaluation",
         "not shown (same-source random split)"),
        ("21", "Participants and events per analysis", "Sample size; Internal validation; each "
                                                       "table's caption"),
        ("22", "Model specification", "Model card; Software (the saved bundle)"),
        ("23a", "Performance with CIs", "Performance on the evaluated patients"
         + ("; Internal validation" if has_iv else "")),
        ("23b", "Heterogeneity of performance", "not examined"),
        ("24", "Model updating results", "not applicable: no updating"),
        ("25", "Interpretation", "Summary (short); the study's discussion"),
        ("26", "Limitations", "Model card: limitations"),
        ("27a", "Poor or unavailable input data", "Model card: using it; missing data"),
        ("27b", "User interaction and expertise", "Model card: intended use"),
        ("27c", "Next steps", "Model card: using it"),
    ]
    clear = [
        ("15", "Data split", "Source of data and participants"),
        ("16, 19-28", "Imaging protocol, segmentation, pre-processing, feature extraction",
         "apply only when radiomic features are used; the pyradiomics settings are stored in "
         "the model bundle (Software)"),
        ("29, 30", "Missing data, class imbalance", "Predictors and missing data; Analysis "
                                                    "methods"),
        ("38-41", "Testing, metrics, uncertainty, statistical comparison (DeLong)",
         "Analysis methods; Performance"),
        ("42, 48", "Comparison with non-radiomic methods", "Benchmark against "
                                                           + rules.replace("the rules "
                                                                           "benchmarked",
                                                                           "the rules")),
        ("52", "Limitations", "Model card: limitations"),
        ("54-57", "Sharing features, code, model", "Software, provenance and reproducibility"),
    ]
    return Section("Reporting checklist: where each item is answered", [
        Table(["TRIPOD+AI item", "topic", "where in this report, or why not"],
              [list(r) for r in items], "TRIPOD+AI 2024 (Collins et al., BMJ 2024;385:e078378)."),
        Table(["CLEAR item", "topic", "where in this report"], [list(r) for r in clear],
              "CLEAR (Kocak et al., Insights Imaging 2023;14:75), radiomics items."),
    ], tripod="all", clear="7")


# --------------------------------------------------------------------------- build


def build_document(data: Mapping, frame: pd.DataFrame, model, fidelity: list | None,
                   figures: Mapping[str, str], fidelity_n: int | None = None,
                   every_prediction: bool = False) -> list[Section]:
    """The report's sections, figures numbered in reading order.

    ``data``: the metrics dict as in ``metrics.json``; ``frame``: the evaluation frame (one
    row per lesion, ``patient_id`` beside it); ``model``: the
    :class:`models.bundle.TrainedModel` or None; ``fidelity``: the simulator's fidelity
    records or None, measured on ``fidelity_n`` lesions; ``figures``: figure key -> file
    name relative to the report folder; ``every_prediction``: the predictions file holds
    every prediction (one row per lesion and repeat) instead of one row per lesion.
    """
    simulated = _is_simulated(data, frame, model, fidelity)
    scheme = validation_scheme(data)
    has_bayes = BAYES_COLUMN in frame.columns
    n_patients = int(frame[ID].nunique()) if ID in frame.columns else None
    units = evaluated_units(data, n_patients)
    card = build_model_card(data, model, simulated or _trained_on_synthetic(model),
                            units[1])
    title = {"holdout": "Performance on the held-out patients",
             "cv": "Cross-validated performance (out of fold)",
             "bootstrap": "Bootstrap-validated performance"}.get(scheme,
                                                        "Performance on the evaluated patients")
    perf = Section(title, _performance_sections(data, figures, scheme, has_bayes),
                   tripod="21, 23a", clear="40, 41, 42, 47, 48")
    sections = [
        _summary(data, simulated, scheme, units),
        _data_section(data, model, simulated, units, scheme),
        _outcome_section(simulated, words_of(data)),
        _predictor_section(data, model),
        _sample_size_section(data, units),
        _methods_section(data, model, scheme),
    ]
    features = _features_section(data, model, figures)
    if features is not None:
        sections.append(features)
    sections += [perf, _internal_validation_section(data, scheme)]
    sections += [s for s in [waiting_section(data, figures)] if s is not None]
    images = _image_section(data)
    if images is not None:
        sections.insert(sections.index(perf) + 1, images)
    for extra in (_population_section(data), _update_section(data)):
        if extra is not None:
            sections.insert(sections.index(perf) + 1, extra)
    if fidelity and simulated:
        sections.append(_fidelity_section(fidelity, fidelity_n))
    sections += [_model_card_section(card), _software_section(card, model, every_prediction),
                 _checklist(simulated, bool(fidelity and simulated),
                            bool(data.get("internal_validation")), words_of(data))]
    number = 0
    for s in walk_sections(sections):
        for b in s.blocks:
            if isinstance(b, Figure):
                number += 1
                b.number = number
    return sections
