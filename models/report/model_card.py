"""The model card: intended use, data, missing-data handling, threshold, metrics, limitations.

:func:`build_model_card` turns the metrics dict (as written to ``metrics.json``) and, when
available, the saved model bundle (:class:`models.bundle.TrainedModel`) into plain lists of
sentences and (label, value) pairs; :mod:`models.report.sections` lays them out as the
model card section of ``report.md`` and ``report.html``. Every number is formatted from the
metrics dict or the bundle, never recomputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from features.contract import is_radiomic
from models.bundle import TrainedModel
from models.classifier import CUSTOM, RADIOMIC_REDUCTION, estimator_name, settings_text
from models.inspection import fitted_pipeline
from models.report import format as fmt
from models.report.tables import evaluated_units, units_text, validation_scheme
from models.report.words import Words, words_of

#: Events per candidate feature below which the card warns (as models.training does).
LOW_EVENTS_PER_FEATURE = 10.0


@dataclass
class ModelCard:
    """The card's content as text, grouped as a reader expects to find it.

    Each list holds sentences; ``model``, ``performance`` and ``provenance`` hold
    (label, value) pairs.
    """

    intended_use: list[str] = field(default_factory=list)
    not_intended: list[str] = field(default_factory=list)
    model: list[tuple[str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    missing_data: list[str] = field(default_factory=list)
    threshold: list[str] = field(default_factory=list)
    performance: list[tuple[str, str]] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    usability: list[str] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)


def missing_data_handling(words: Words | None = None) -> list[str]:
    """:data:`MISSING_DATA_HANDLING`, its last sentence naming the rules the report
    benchmarks (the article's, or the study's declared ones)."""
    lines = list(MISSING_DATA_HANDLING)
    if words is not None and not words.article:
        lines[-1] = lines[-1].replace("The article's rules abstain", "The rules abstain")
    return lines


MISSING_DATA_HANDLING: tuple[str, ...] = (
    "Every feature may be missing, including whole modalities (no PET, no MRS, no biopsy); "
    "rows are never dropped for a missing predictor.",
    "Logistic regression: each contract column on its model scale, then median imputation "
    "(medians of the training patients) with a missing-value indicator per column that had "
    "missing values, then standardisation.",
    "Spline family: as logistic regression, with each continuous column's spline terms "
    "taken at its training median where the column is missing (its indicator flags it).",
    "Gradient boosting: missing values passed to the trees as they are (native NaN "
    "handling: each split learns which side missing values go to).",
    "A user's own classifier: as logistic regression (it sees a finite, standardised matrix "
    "with the indicators).",
    f"Radiomic columns, when present, reduced inside the pipeline: {RADIOMIC_REDUCTION}.",
    "The article's rules abstain where an input they need is missing: an abstention is "
    "lost coverage, never counted as 0 or 1.",
)


def _family_text(family, model, training: Mapping) -> str:
    """The model family for the card; a user's own classifier named by its class."""
    if not family:
        return "not recorded"
    if family != CUSTOM:
        return str(family)
    name = training.get("estimator")
    if not name:
        pipe = fitted_pipeline(model)
        name = estimator_name(pipe) if pipe is not None else ""
    return f"{family}: the user's own classifier" + (f" `{name}`" if name else "")


def threshold_rationale(threshold: float, source: str, words: Words | None = None) -> str:
    """Why the decision threshold (a probability) has its value, in words."""
    w = words or Words()
    text = str(source or "").lower()
    if "default" in text and w.article:
        why = ("the default: call pseudoprogression when it is the more likely diagnosis on "
               "the calibrated probability, which weighs wrongly continuing treatment in true "
               "progression and wrongly stopping it in pseudoprogression as equal harms.")
    elif "default" in text:
        why = (f"the default: call {w.positive} when it is the more likely class on the "
               f"calibrated probability, which weighs a false {w.positive} call and a missed "
               f"{w.positive} as equal harms.")
    elif "sensitivity" in text:
        why = (f"chosen to reach a target sensitivity ({source}), so that a stated share of "
               f"{w.positive} cases is recognised; the specificity and PPV that follow are in "
               "the performance tables.")
    elif "user" in text:
        why = "given by the user; the report does not know the reasoning behind it."
    else:
        why = f"source recorded as: {source or 'not recorded'}."
    t = float(threshold)
    odds = t / (1 - t) if 0 < t < 1 else float("nan")
    return (f"Threshold {fmt.g(t)} on {w.p}: {why} In decision-curve terms a "
            f"threshold probability of {fmt.g(t)} treats the harm of a false {w.positive} "
            f"call as {fmt.g(odds)} times the benefit of a correct one.")


def _metric_pairs(metrics: Mapping) -> list[tuple[str, str]]:
    """The headline metrics with their CIs, each naming the n and events behind it."""
    m = metrics.get("model") or {}
    boot = metrics.get("bootstrap") or {}
    n, events = metrics.get("n"), metrics.get("n_positive")
    w = words_of(metrics)
    where = f"{n} rows (lesions), {events} {w.positive}"
    pairs = [
        ("AUC (DeLong 95% CI)", f"{fmt.est_ci(m.get('auc'), m.get('auc_ci'))}; {where}"),
    ]
    if isinstance(boot.get("auc"), Mapping):
        pairs.append(("AUC (bootstrap 95% CI)",
                      fmt.est_ci(boot["auc"].get("estimate"), boot["auc"].get("ci"))))
    brier = boot.get("brier") if isinstance(boot.get("brier"), Mapping) else None
    pairs.append(("Brier score", fmt.brier(brier.get("estimate"), brier.get("ci"))
                  + " (bootstrap 95% CI)" if brier else fmt.brier(m.get("brier"))))
    pairs += [
        ("calibration intercept (ideal 0)",
         fmt.est_ci(m.get("calibration_intercept"), m.get("calibration_intercept_ci"))),
        ("calibration slope (ideal 1)",
         fmt.est_ci(m.get("calibration_slope"), m.get("calibration_slope_ci"))),
        (f"sensitivity at threshold {fmt.g(metrics.get('threshold'))}",
         fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci"))),
        ("specificity", fmt.pct_ci(m.get("specificity"), m.get("specificity_ci"))),
        ("PPV", fmt.pct_ci(m.get("ppv"), m.get("ppv_ci"))),
        ("NPV", fmt.pct_ci(m.get("npv"), m.get("npv_ci"))),
    ]
    nested = ((metrics.get("internal_validation") or {}).get("nested_cv") or {})
    auc = (nested.get("summary") or {}).get("auc") or {}
    if auc:
        pairs.append(("AUC, nested cross-validation (mean ± SD over folds)",
                      f"{fmt.mean_sd(auc.get('mean'), auc.get('sd'))}; "
                      f"{nested.get('n')} training rows, {nested.get('n_positive')} "
                      f"{w.positive}, {nested.get('n_outer_folds')} folds"))
    return pairs


def training_prevalence(metrics: Mapping, model=None) -> tuple[float, str]:
    """The prevalence the probabilities are calibrated to (proportion) and where it comes
    from: the model's training rows, else the split's training rows; nan when unknown."""
    training = getattr(model, "training", None) or {}
    n, pos = training.get("n"), training.get("n_positive")
    if fmt.finite(n, pos) and fmt.num(n) > 0:
        return fmt.num(pos) / fmt.num(n), f"{pos} of {n} training rows"
    split = metrics.get("split") or {}
    n, pos = split.get("n_train"), split.get("n_train_positive")
    if fmt.finite(n, pos) and fmt.num(n) > 0:
        return fmt.num(pos) / fmt.num(n), f"{pos} of {n} training rows"
    return float("nan"), "not recorded"


def _limitations(metrics: Mapping, simulated: bool, model=None) -> list[str]:
    w = words_of(metrics)
    out = []
    if simulated:
        ceiling = metrics.get("bayes_ceiling") or {}
        out.append(
            "Synthetic data: patients drawn from a simulator tuned to one article's figures. "
            "The numbers say how well the method recovers a known generator (the exact "
            f"posterior's AUC on the same rows is {fmt.g(ceiling.get('auc'))}), not how it "
            "will perform on real patients.")
    if w.article:
        out.append(
            "The article's figures contradict one another (D1's PPV of 93.2% at a prevalence "
            "of 9.8-15.3% needs a specificity above 99%; M3's SUVmax rise of 20-80% against "
            "Q1c's < 30%; D3's odds ratio of 4.3 against M4's 95% specificity). No data set "
            "can reproduce all of them, so the rules' performance here need not match the "
            "article's.")
    out += [
        "Single-site assumption: one population, one set of scanners and assays; no centre "
        "variable, so heterogeneity across sites was not examined.",
        "No external validation: every figure comes from patients of the same source ("
        + {"holdout": "a random patient split and cross-validation inside the training "
                      "patients",
           "cv": "repeated patient-grouped cross-validation",
           "bootstrap": "bootstrap resamples of the same patients"}.get(
            validation_scheme(metrics), "the training data and this table")
        + "). Expect lower discrimination and miscalibration elsewhere.",
        _prevalence_limitation(metrics, model),
        "Rules abstain where an input is missing, so each rule is compared with the model on "
        "the rows it covers: different rules are judged on different subsets.",
        "No sociodemographic columns: performance across groups (fairness) could not be "
        "examined.",
    ]
    epv = (metrics.get("internal_validation") or {}).get("events_per_feature") or {}
    ratio = epv.get("events_per_feature")
    if ratio is not None and float(ratio) < LOW_EVENTS_PER_FEATURE:
        out.append(f"Only {fmt.g(ratio)} events per candidate feature ({epv.get('events')} "
                   f"events, {epv.get('candidate_features')} candidate features): the model "
                   "may be unstable and optimistic.")
    if not simulated and w.article:
        out.append("The label is taken as recorded; how pseudoprogression was confirmed "
                   "(follow-up imaging at 12 weeks or later, biopsy) and by whom must be "
                   "stated by the study.")
    elif not simulated:
        standard = w.study.get("reference_standard")
        out.append(f"The label is taken as recorded in column {w.label_column}; "
                   + (f"reference standard as the study states it: {standard}."
                      if standard else f"how {w.positive} was decided and by whom must be "
                      "stated by the study."))
    return out


def _prevalence_limitation(metrics: Mapping, model=None) -> str:
    prev, source = training_prevalence(metrics, model)
    trained = (f"{fmt.pct(prev)}, {source}" if fmt.finite(prev) else
               "not recorded with these metrics")
    return (f"Probabilities are calibrated to the training prevalence ({trained}); the "
            f"evaluated rows have {fmt.pct(metrics.get('prevalence'))}. At another prevalence "
            "they need recalibration. PPV and NPV at other prevalences assume that sensitivity "
            "and specificity carry over.")


def build_model_card(metrics: Mapping, model: TrainedModel | None = None,
                     simulated: bool = False, n_patients: int | None = None) -> ModelCard:
    """The model card for ``metrics`` (a benchmark dict, plain or as in metrics.json) and
    an optional :class:`models.bundle.TrainedModel`; ``simulated`` says the data are
    synthetic; ``n_patients``: patients among the evaluated rows when the metrics do not
    say."""
    card = ModelCard()
    w = words_of(metrics)
    if w.article:
        use = ("Research only: to study how a calibrated model compares with the article's "
               "published rules in telling pseudoprogression (label 1) from true progression "
               "(label 0) at the scan that shows a lesion's enlargement, in patients on immune "
               "checkpoint inhibitors or after radio-chemotherapy.")
    else:
        population = w.study.get("population")
        use = (f"Research only: to study how a calibrated model compares with rule-based "
               f"thresholds in telling {w.positive} (label 1) from {w.negative} (label 0)"
               + (f", in {population}" if population else
                  "; the population is the study's (not recorded in the table description)")
               + ".")
    card.intended_use = [
        use,
        "Intended users: researchers in oncology imaging and biostatistics who can read "
        "calibrated probabilities, confidence intervals and decision curves.",
    ]
    card.not_intended = [
        "Not for clinical decisions: not a medical device and not validated on patients. Do "
        "not use it to continue, pause or stop any treatment.",
        "Not for populations, sites or measurement protocols other than those of its "
        "training data without external validation and recalibration.",
    ]
    training = getattr(model, "training", None) or {}
    selection = metrics.get("model_selection") or {}
    threshold = getattr(model, "threshold", metrics.get("threshold"))
    source = getattr(model, "threshold_source", None)
    family = getattr(model, "family", None) or selection.get("chosen")
    columns = list(getattr(model, "feature_columns", None) or [])
    card.model = [("family", _family_text(family, model, training)),
                  ("output", f"calibrated {w.p}, a probability in 0-1, and the "
                             f"call 1 when it is at or above {fmt.g(threshold)}")]
    cv = getattr(model, "cv_scores", None) or selection.get("cv") or {}
    params = (cv.get(family) or {}).get("best_params") if isinstance(cv, Mapping) else None
    if isinstance(params, Mapping) and params:
        n = (cv.get(family) or {}).get("n_settings")
        card.model.append(("settings", settings_text(params) + " (chosen by patient-grouped "
                           "cross-validation" + (f" among {n} candidates)" if n else ")")))
    elif family == CUSTOM:
        card.model.append(("settings", "the user's own, as given (not tuned)"))
    if columns:
        radiomic = [c for c in columns if is_radiomic(c)]
        shown = ", ".join(c for c in columns if not is_radiomic(c))
        if radiomic:
            shown += (f"{'; ' if shown else ''}{len(radiomic)} radiomic columns (counted by "
                      "sequence and feature class under Predictors)")
        card.model.append((f"feature columns ({len(columns)})", shown))
    if model is None:
        card.model.append(("model bundle", "not given to the report: family from the metrics "
                                           "where recorded; versions and data hash not shown"))

    split = metrics.get("split") or {}
    if training:
        card.data.append(f"Training data: {training.get('source', 'not recorded')}; "
                         f"{units_text(training.get('n'), training.get('n_patients'))}, "
                         f"{training.get('n_positive')} {w.positive}.")
    elif split:
        card.data.append(f"Training data: "
                         f"{units_text(split.get('n_train'), split.get('n_train_patients'))}, "
                         f"{split.get('n_train_positive')} {w.positive}.")
    card.data.append(f"Evaluated: {units_text(*evaluated_units(metrics, n_patients))}, "
                     f"{metrics.get('n_positive')} {w.positive} (prevalence "
                     f"{fmt.pct(metrics.get('prevalence'))})"
                     + (", patients held out before anything was fitted."
                        if validation_scheme(metrics) == "holdout" else "."))
    if simulated:
        card.data.append("All data are synthetic (features.synthetic.cohort); no patient data.")
    card.missing_data = missing_data_handling(w)
    card.threshold = [threshold_rationale(float(threshold), source or
                                          "not recorded (no model bundle given)", w)]
    card.performance = _metric_pairs(metrics)
    card.limitations = _limitations(metrics, simulated, model)
    card.usability = [
        "Inputs are checked against the column contract (names, units, plausible ranges); a "
        "value out of range is an error with a hint about the likely unit mistake.",
        "Missing values and missing modalities are allowed and handled as in training; a "
        "column the model was trained on but absent from the table is treated as missing, "
        "with a warning. A row with most modalities missing gets a probability close to the "
        "training prevalence: check what was measured before reading it.",
        "Next steps: external validation on real patients from several sites, recalibration "
        "to the local prevalence, and a decision analysis with clinicians' own harm weights.",
    ]
    if model is not None:
        card.provenance = [
            ("training data source", str(training.get("source", "not recorded"))),
            ("training data SHA-256", str(training.get("sha256", "not recorded"))),
            (f"training rows ({w.positive})",
             f"{units_text(training.get('n'), training.get('n_patients'))} "
             f"({training.get('n_positive')})"),
            ("seed", str(training.get("seed", "not recorded"))),
            ("model format version", str(getattr(model, "format_version", ""))),
        ]
        settings = getattr(model, "radiomics_settings", None)
        if settings:
            digest = hashlib.sha256(str(settings).encode("utf-8")).hexdigest()
            card.provenance.append(("radiomics (pyradiomics) settings",
                                    f"stored in the bundle, {len(str(settings))} characters, "
                                    f"SHA-256 {digest}"))
        for name, version in (getattr(model, "versions", None) or {}).items():
            if name == "pseudoprogression" and not w.article:
                name = "this tool"  # the package's name is the contract's class
            card.provenance.append((f"version: {name}", str(version)))
    return card
