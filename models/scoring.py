"""Scoring a table with a saved model: the settings of ``predict.py`` and the one function
that produces its predictions and, for a labelled table, its evaluation.

:class:`PredictionSettings` carries every setting, checked once with every problem reported
at once; :func:`run_prediction` reads the model and the table, extracts image features when
a manifest is given, predicts (with the landmark models when scans are given) and, with a
report folder, evaluates; :meth:`Scoring.save` writes the predictions and the report.
``predict.py`` parses its options into the settings, calls these, and prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import UserInputError, raise_problems
from features.outputs import RunFiles
from models.settings import RunSettings


@dataclass(frozen=True, kw_only=True)
class PredictionSettings(RunSettings):
    """Every setting of ``predict.py``, by the same names: the saved ``model``, the table
    ``data`` (read through the table description stored in the model unless ``table`` is
    given) and the predictions file ``out``; the rest is shared with a study
    (:class:`models.settings.RunSettings`)."""

    model: Path
    data: Path
    out: Path

    def problems(self) -> list[str]:
        """Every problem with these settings that can be seen without reading a file."""
        from features.choices import extraction_options_problem

        found = []
        problem = None if self.manifest else extraction_options_problem(
            self.params, self.cache, self.scheduler, "--manifest M.csv; add it or drop",
            lesions=self.lesions)
        if problem:
            found.append(problem)
        for option, path, what in (("--data", self.data, "table"),
                                   ("--scans", self.scans, "scans table"),
                                   ("--table", self.table, "table description"),
                                   ("--manifest", self.manifest, "manifest")):
            if path is not None and not path.is_file():
                found.append(f"{option} {path}: {what} not found. Check the path.")
        return found

    def check(self) -> RunFiles:
        """Raise one :class:`UserInputError` listing every problem (:meth:`problems`) and,
        when there are none, check the outputs (:meth:`check_outputs`); return the files the
        prediction reads, holding the lock of the report folder."""
        raise_problems(self.problems())
        return self.check_outputs()

    def input_files(self) -> RunFiles:
        """Every file the prediction reads, with what a message calls it: the table, the
        model set, the description, the manifest and every image it lists, the scans and the
        settings."""
        from features.extract import manifest_paths
        from models.landmarks import landmark_files

        return (RunFiles().add(self.data, "the input table (--data)")
                .add_model(self.model, "the model (--model)", landmark_files(self.model))
                .add(self.table, "the table description (--table)")
                .add_manifest(self.manifest, "the image manifest (--manifest)",
                              manifest_paths(self.manifest) if self.manifest else ())
                .add(self.scans, "the scans table (--scans)")
                .add(self.params, "the settings file (--params)"))

    def check_outputs(self) -> RunFiles:
        """The predictions file and the report folder: writable, and none of them one of
        the files the prediction reads; checked before any input is read. The report folder
        is locked against a second run writing it (:class:`features.outputs.RunFiles`)."""
        from features.extract import lesion_map_path
        from models.report import report_files

        files = self.input_files()
        files.check_output("--out", self.out,
                           "choose another file so your data is not overwritten.")
        if self.manifest:
            files.check_output("--out", lesion_map_path(self.out),
                               "its lesion map goes beside it; choose another --out so your "
                               "data is not overwritten.")
        if self.report:
            files.add(self.out, "the predictions file (--out)")
            files.check_output_folder("--report", self.report, report_files(self.report))
            files.hold("--report", self.report)
        return files


@dataclass
class Scoring:
    """What :func:`run_prediction` produced: the ``predictions`` (one row per input row),
    the ``model`` used, with a manifest the ``lesion_map`` of the extraction (where each
    lesion lies; :data:`features.extract.LESION_MAP_COLUMNS`) and, for a report, the
    ``evaluation`` with its ``metrics`` document and the report's ``title``."""

    settings: PredictionSettings
    model: Any
    predictions: Any
    evaluation: Any = None
    metrics: dict | None = None
    title: str = ""
    outputs: RunFiles | None = None
    lesion_map: Any = None

    def save(self) -> dict[str, Path]:
        """Write the predictions to ``settings.out`` (with a manifest, the lesion map beside
        it: ``pred.csv`` -> ``pred.lesions.csv``) and, with ``settings.report``, the report;
        return what was written, by name."""
        from features.extract import lesion_map_path
        from features.tables import write_table_atomic

        written = {"predictions": Path(write_table_atomic(self.predictions,
                                                          self.settings.out))}
        if self.lesion_map is not None:  # which lesion of which mask each row is
            written["lesion_map"] = Path(write_table_atomic(
                self.lesion_map, lesion_map_path(self.settings.out)))
        if self.settings.report and self.metrics is not None:
            from models import write_report

            written.update(write_report(self.settings.report, self.metrics,
                                        self.evaluation.frame, model=self.model,
                                        title=self.title))
        if self.outputs is not None:  # the outputs are whole: let another run write them
            self.outputs.release()
        return written


def population_report(model, table, metrics: dict) -> dict:
    """For a labelled table's report: how it differs from the training population, and the
    measured shift in calibration (calibration-in-the-large; 0 is none; from the
    evaluation's figures, ``metrics``)."""
    from dataclasses import asdict

    from models.population import TrainingProfile

    shifts = ([] if model.population is None else
              TrainingProfile.from_dict(model.population).compare(table))
    return {"shifts": [asdict(s) for s in shifts],
            "training_prevalence": model.training_prevalence,
            "calibration_intercept": metrics["model"].get("calibration_intercept"),
            "calibration_intercept_ci": metrics["model"].get("calibration_intercept_ci"),
            "remedy": "python train.py --update MODEL --data LOCAL.csv (README: Your own "
                      "data, updating a model for a new site)"}


def load_landmark_models(settings: PredictionSettings) -> dict:
    """The landmark models saved beside the model by ``train.py --followup``; an error
    saying so when there are none."""
    from models.landmarks import load_landmarks

    model = settings.model
    landmarks = load_landmarks(model, trust_pickle=settings.trust_pickle)
    if not landmarks:
        raise UserInputError(f"--scans needs the landmark models of {model.name} "
                             f"({model.stem}.landmark-0w{model.suffix}, ...), which "
                             "train.py --followup writes beside the model; none were found "
                             f"in {model.parent}. Train with --followup, or drop --scans.")
    return landmarks


def with_landmark_predictions(predictions, landmarks: dict, described,
                              settings: PredictionSettings):
    """``predictions`` with, per lesion, the landmark model's probability (``p_<positive
    class>_landmark``, as the predictions' own probability column) and call at the
    latest decision time the scans reach (``landmark_week``) and the rules over time as of
    then (:func:`models.landmarks.predict_landmarks`; rows in the same order)."""
    from features.description import text_columns
    from features.tables import read_table
    from models.landmarks import predict_landmarks

    description = described.description
    scans = read_table(settings.scans, sep=settings.sep, decimal=settings.decimal,
                       text_columns=text_columns(description))
    by_landmark = predict_landmarks(landmarks, described, scans, description=description)
    from models.report.words import probability_column

    keys = list(by_landmark.columns[:2])
    added = by_landmark.drop(columns=keys).rename(columns={
        "p_pseudoprogression": probability_column(described.positive_name) + "_landmark",
        "prediction": "prediction_landmark"})
    return predictions.join(added.set_axis(predictions.index))


def run_prediction(settings: PredictionSettings, progress: bool = True) -> Scoring:
    """Predict every row of ``settings.data`` with the saved model (nothing is written:
    see :meth:`Scoring.save`); with ``settings.report``, also evaluate those rows, which
    then need the label. Raises :class:`UserInputError` for a problem the user can fix,
    before any prediction where it can be seen then."""
    outputs = settings.check()
    from features.choices import CACHE_FOLDER
    from features.contract import ID, LABEL
    from features.description import description_from_arguments, text_columns
    from features.tables import read_table
    from models import load_model, predict_table
    from models.prediction import prepare_for_model, with_radiomic_features

    model = load_model(settings.model, trust_pickle=settings.trust_pickle)
    landmarks = load_landmark_models(settings) if settings.scans is not None else None
    description = description_from_arguments(settings, model.description)
    raw = read_table(settings.data, sep=settings.sep, decimal=settings.decimal,
                     sheet=settings.sheet,
                     text_columns=text_columns(description or model.table_description()))
    described = prepare_for_model(model, raw, description, source=str(settings.data))
    if settings.report and LABEL not in described.table.columns:
        label = (description or model.table_description()).label_column
        raise UserInputError(f"--report needs the label column '{label}' in "
                             f"{settings.data}; drop --report to predict without evaluating, "
                             "or name the label column with --label-column.")
    lesion_map = None
    if settings.manifest:
        radiomics = with_radiomic_features(
            model, described.table, settings.manifest, settings.jobs,
            cache_dir=settings.cache or settings.out.parent / CACHE_FOLDER,
            params=settings.params, scheduler=settings.scheduler, lesions=settings.lesions)
        described.table, lesion_map = radiomics.table, radiomics.extraction.lesion_map
        if len(lesion_map):  # the lesions of the predicted patients, not the whole manifest
            lesion_map = lesion_map[lesion_map[ID].isin(described.table[ID])]
    table = described.table
    predictions = predict_table(model, described, source=str(settings.data))
    if landmarks is not None:
        predictions = with_landmark_predictions(predictions, landmarks, described, settings)
    scoring = Scoring(settings, model, predictions, outputs=outputs, lesion_map=lesion_map)
    if settings.report:
        from models import evaluate
        from models.evaluation import uncertainty_parts
        from models.metrics_document import build_metrics_document, report_facts

        if (description or model.table_description()).label_missing == "skip":
            table = table[table[LABEL].notna()]  # unlabelled rows: predicted, not evaluated
        evaluation = scoring.evaluation = evaluate(model, table, warn=False)
        figures = evaluation.metrics
        uncertainty = {} if settings.bootstrap <= 0 else uncertainty_parts(
            evaluation.frame, model.threshold, n_resamples=settings.bootstrap,
            progress=progress, figures=figures)
        scoring.metrics = build_metrics_document(
            figures, population_shift=population_report(model, table, figures),
            **uncertainty, **report_facts(figures, evaluation.frame, model))
        scoring.title = f"Evaluation of {settings.model.name} on {settings.data.name}"
    return scoring
