"""One study, one producer: the settings of a study and the one function that runs it.

A study is everything ``train.py`` does in one run: read (or simulate) the table, extract
image features, train (or update) and validate the model, fit the landmark models on
follow-up scans, measure the uncertainty, and build the metrics document that both the saved
model's record and the report hold. :class:`StudySettings` carries every setting, checked
once with every problem reported at once; :func:`run_study` is the only producer of the
model, the evaluation, the landmarks and the metrics document; :meth:`Study.save` writes the
model set and the report. ``train.py`` parses its options into the settings, calls these,
and prints; a research script calling them gets the same files, byte for byte::

    >>> from models.study import StudySettings, run_study             # doctest: +SKIP
    >>> settings = StudySettings(out=Path("m.skops"), cohort="melanoma", n=600,
    ...                          report=Path("report"))                # doctest: +SKIP
    >>> study = run_study(settings)                                     # doctest: +SKIP
    >>> study.save()                                                    # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from features.choices import COHORTS
from features.errors import raise_problems
from features.outputs import RunFiles
from features.progress import stage_line, stage_printer
from models.choices import UPDATE_METHODS, VALIDATIONS
from models.settings import RunSettings


@dataclass(frozen=True, kw_only=True)
class StudySettings(RunSettings):
    """Every setting of a study (the options of ``train.py``, by the same names; those it
    shares with a prediction, how the table is read, image extraction, scans and the report,
    are :class:`models.settings.RunSettings`'s).

    Data: ``cohort`` (simulate ``n`` patients, optional ``prevalence``) or ``data`` (a
    table file). Images: ``images`` (synthetic MRI for a cohort, written to ``image_dir``)
    or ``manifest`` (the user's images). Validation: ``validation``, ``test_size``,
    ``folds``, ``repeats``, ``nested_cv``; ``anticipated_c``: the C statistic expected
    from earlier studies, for the minimum sample size (Riley et al.; their conservative
    default without it).
    Threshold policy: ``threshold`` or ``target_sensitivity`` (neither: the default 0.5).
    ``estimator``: a user's classifier, as ``"module:factory"`` or an object. ``update``: a
    saved model to update with ``data`` by ``method``. ``followup`` / ``scans``: landmark
    models on follow-up scans (for a simulated cohort under holdout also across the
    simulator's uncertainty unless ``followup_sensitivity`` is False). Outputs: ``out``
    (the model) and ``report`` (a folder).
    """

    out: Path
    cohort: str | None = None
    data: Path | None = None
    n: int = 4000
    prevalence: float | None = None
    images: bool = False
    image_dir: Path | None = None
    seed: int = 0
    validation: str = "auto"
    test_size: float = 0.3
    folds: int = 5
    repeats: int | None = None
    anticipated_c: float | None = None
    nested_cv: bool = True
    threshold: float | None = None
    target_sensitivity: float | None = None
    estimator: Any = None
    update: Path | None = None
    method: str = "auto"
    followup: bool = False
    followup_sensitivity: bool = True

    NEGATED_FLAGS: ClassVar[dict[str, str]] = {
        "nested_cv": "no_nested_cv", "followup_sensitivity": "no_followup_sensitivity"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scans is not None:  # scans imply follow-up
            object.__setattr__(self, "followup", True)

    # ----------------------------------------------------------------- checks

    def problems(self) -> list[str]:
        """Every problem with these settings that can be seen without reading a table."""
        found = []
        if (self.cohort is None) == (self.data is None):
            found.append("give exactly one source of data: a simulated cohort (--cohort) or "
                         "your table (--data).")
        if self.cohort is not None and self.cohort not in COHORTS:
            found.append(f"cohort must be one of {', '.join(COHORTS)}, got {self.cohort!r}.")
        if self.cohort is not None and self.n < 50:
            found.append(f"--n {self.n} is too small to train and evaluate; use 50 or more "
                         "(4000 is the demo's size).")
        if self.prevalence is not None and not 0 < self.prevalence < 1:
            found.append(f"--prevalence must be between 0 and 1, got {self.prevalence}.")
        if self.validation not in VALIDATIONS:
            found.append(f"validation must be one of {', '.join(VALIDATIONS)}, got "
                         f"{self.validation!r}.")
        if self.anticipated_c is not None and not 0.5 < self.anticipated_c < 1:
            found.append(f"--anticipated-c must lie between 0.5 and 1, got "
                         f"{self.anticipated_c}: the AUC earlier studies report.")
        if self.method not in UPDATE_METHODS:
            found.append(f"--method must be one of {', '.join(UPDATE_METHODS)}, got "
                         f"{self.method!r}.")
        found += self._threshold_problems() + self._image_problems() + self._mode_problems()
        for option, path in (("--data", self.data), ("--table", self.table),
                             ("--update", self.update)):
            if path is not None and not path.is_file():
                found.append(f"{option} {path}: file not found. Check the path.")
        return found

    def _threshold_problems(self) -> list[str]:
        if self.threshold is not None and self.target_sensitivity is not None:
            return ["give either a threshold or a target sensitivity, not both."]
        if self.target_sensitivity is not None and not 0 < self.target_sensitivity < 1:
            return [f"target sensitivity must be in (0, 1), got {self.target_sensitivity}."]
        if self.threshold is not None and not 0 < float(self.threshold) < 1:
            return [f"threshold must be in (0, 1), got {float(self.threshold)}."]
        return []

    def _image_problems(self) -> list[str]:
        from features.choices import extraction_options_problem

        found = []
        if self.images and not self.cohort:
            found.append("--images synthesises MRI for a simulated cohort; with your own "
                         "data give --manifest instead.")
        if self.manifest and not self.data:
            found.append("--manifest goes with --data (your table); for a simulated cohort "
                         "use --images.")
        if self.manifest and not self.manifest.is_file():
            found.append(f"manifest not found: {self.manifest}. Check the path.")
        if not (self.manifest or self.images):
            problem = extraction_options_problem(
                self.params, self.cache, self.scheduler,
                "images: add --manifest M.csv (with --data) or --images (with --cohort), or "
                "drop", lesions=self.lesions)
            found += [problem] if problem else []
        if self.params is not None and not self.params.is_file():
            found.append(f"--params {self.params}: settings file not found. Check the path, "
                         "or leave --params out for features/params/mri.yaml.")
        return found

    def _mode_problems(self) -> list[str]:
        found = []
        if self.update is not None and not self.data:
            found.append("--update needs --data, the labelled local table to update the "
                         "model with.")
        if self.update is not None and self.estimator:
            found.append("--estimator trains a new model; --update refits the updated "
                         "model's own procedure. Drop one of them.")
        if self.update is not None and self.manifest:
            found.append("--update with --manifest is not supported; join the radiomic "
                         "features into --data first (python -m features.extract).")
        if self.scans is not None:
            if not self.data:
                found.append("--scans goes with --data (your table); for a simulated cohort "
                             "--followup simulates the scans.")
            if not self.scans.is_file():
                found.append(f"scans table not found: {self.scans}. Check the path.")
        elif self.followup and self.data:
            found.append("--followup with --data needs your scans: add --scans S.csv (one "
                         "row per lesion per scan).")
        if self.followup and self.update is not None:
            from models.landmarks import UPDATE_REFUSAL

            found.append(UPDATE_REFUSAL)
        return found

    def check(self) -> RunFiles:
        """Raise one :class:`UserInputError` listing every problem (:meth:`problems`) and,
        when there are none, check the outputs (:meth:`check_outputs`); return the files the
        study reads, holding the locks of its outputs."""
        raise_problems(self.problems())
        return self.check_outputs()

    def input_files(self) -> RunFiles:
        """Every file the study reads, with what a message calls it: the tables, the
        description, the manifest and every image it lists, the settings, the estimator's
        module and the model to update with its record and landmark models."""
        from features.extract import manifest_paths
        from models.landmarks import landmark_files

        files = (RunFiles().add(self.data, "the input table (--data)")
                 .add_manifest(self.manifest, "the image manifest (--manifest)",
                               manifest_paths(self.manifest) if self.manifest else ())
                 .add(self.table, "the table description (--table)")
                 .add(self.scans, "the scans table (--scans)")
                 .add(self.params, "the settings file (--params)")
                 .add_model(self.update, "the model to update (--update)",
                            landmark_files(self.update) if self.update else ()))
        if isinstance(self.estimator, str):
            files.add_estimator(self.estimator)
        return files

    def check_outputs(self) -> RunFiles:
        """The model set (the model, its record, its landmark models) and the report folder:
        writable, and none of them one of the files the study reads (checked before any
        table is read); both locked against a second run writing them until the study is
        saved (:class:`features.outputs.RunFiles`)."""
        from models.landmarks import model_set_files
        from models.report import report_files

        files = self.input_files()
        outputs = model_set_files(self.out, followup=self.followup)
        files.check_outputs("--out", outputs, "choose another file for the model, so that "
                            "none of your input files is overwritten.")
        files.hold("--out", self.out)
        if self.report:
            files.add_all((p, f"the model set (--out, {p.name})") for p in outputs)
            files.check_output_folder("--report", self.report, report_files(self.report))
            files.hold("--report", self.report)
        return files


@dataclass
class Study:
    """What :func:`run_study` produced: the model (and landmark models), its evaluation,
    the metrics document (``metrics``: what ``metrics.json`` and the model's record hold,
    :func:`models.metrics_document.build_metrics_document`), where the data came from
    (``source``), the report's ``title`` and, from images, the extraction's ``lesion_map``
    (where each lesion lies; the report's ``lesions.csv``)."""

    settings: StudySettings
    model: Any
    evaluation: Any
    metrics: dict
    source: str
    title: str
    landmarks: Any = None
    notes: list[str] = field(default_factory=list)
    outputs: RunFiles | None = None
    lesion_map: Any = None

    def save(self) -> dict[str, Path]:
        """Write the model (with its landmark models, as one set:
        :func:`models.bundle.save_model_set`) to ``settings.out`` and, with
        ``settings.report``, the report (:func:`models.report.write_report`: whole, or told
        apart); return what was written, by name."""
        from models.bundle import save_model

        self.model.metrics = copy.deepcopy(self.metrics)
        if self.landmarks is not None:  # the model and its landmark models, as one set
            from models.landmarks import save_landmarks

            paths = save_landmarks(self.landmarks.models, self.settings.out, main=self.model)
            written = {"model": Path(self.settings.out)}
            for week, path in paths.items():
                written[f"landmark_{week:g}w"] = Path(path)
        else:
            written = {"model": Path(save_model(self.model, self.settings.out))}
        if self.settings.report:
            from models import write_report

            written.update(write_report(self.settings.report, self.metrics,
                                        self.evaluation.frame, model=self.model,
                                        title=self.title,
                                        predictions=self.evaluation.predictions,
                                        lesion_map=self.lesion_map))
        if self.outputs is not None:  # the outputs are whole: let another run write them
            self.outputs.release()
        return written


def load_training_table(settings: StudySettings, progress: bool = True):
    """The table to train on (a :class:`features.description.DescribedTable`), for simulated
    data the exact Bayes posterior, the manifest of synthetic images (or None), the model to
    update (or None) and a description of the source."""
    from features.description import description_from_arguments, text_columns
    from features.tables import read_table
    from models.training import describe_table

    if settings.cohort:
        from features.synthetic import bayes_posterior, simulate_cohort

        manifest = None
        if settings.images:
            from features.synthetic import simulated_cohort_with_images

            image_dir = settings.image_dir or settings.out.parent / "images"
            table, manifest = simulated_cohort_with_images(
                settings.n, settings.cohort, settings.seed, image_dir,
                prevalence=settings.prevalence, jobs=settings.jobs, progress=progress)
        else:
            table = simulate_cohort(settings.n, cohort=settings.cohort,
                                    prevalence=settings.prevalence, seed=settings.seed)
        source = f"simulated {settings.cohort} cohort, n={settings.n}, seed={settings.seed}"
        return (describe_table(table, source=source),
                bayes_posterior(table, prevalence=settings.prevalence), manifest, None, source)
    original = None
    if settings.update is not None:
        from models import load_model

        original = load_model(settings.update, trust_pickle=settings.trust_pickle)
    description = description_from_arguments(
        settings, None if original is None else original.description)
    raw = read_table(settings.data, sep=settings.sep, decimal=settings.decimal,
                     sheet=settings.sheet, text_columns=text_columns(description))
    source = str(settings.data)
    return describe_table(raw, description, source=source), None, None, original, source


def load_scans(settings: StudySettings, described):
    """The follow-up scans, checked (:func:`features.scans.read_scans`) before any training:
    the simulator's for a simulated cohort, else the table given with ``scans``, read
    through the same table description."""
    from features.description import text_columns
    from features.scans import read_scans
    from features.tables import read_table

    if settings.cohort:
        from features.synthetic import simulate_followup

        scans = simulate_followup(described.table, seed=settings.seed)
        read_scans(scans, lesions=described.table)  # checked now; the table keeps its origin
        return scans
    raw = read_table(settings.scans, sep=settings.sep, decimal=settings.decimal,
                     text_columns=text_columns(described.description))
    return read_scans(raw, described.description, lesions=described.table,
                      source=f"the scans table {settings.scans}")


def fit_landmarks(settings: StudySettings, described, scans, source: str, scheme: str,
                  progress: bool = True):
    """The landmark models on the follow-up ``scans``
    (:func:`models.landmarks.train_landmarks`), validated by the index model's ``scheme``
    (its holdout split, or cross-validation or the bootstrap on every patient) with its
    threshold policy, and the metrics document's ``landmarks``: their figures and, for a
    simulated cohort under holdout, the figures across the simulator's settings
    (``sensitivity``: :func:`models.landmarks.followup_sensitivity`, on the same split)
    unless ``settings.followup_sensitivity`` is False."""
    from models.landmarks import followup_sensitivity, train_landmarks
    from models.statistics import to_jsonable

    stage_line(f"fitting landmark models on the follow-up scans ({scheme}) ...", progress)
    options = dict(seed=settings.seed, test_size=settings.test_size,
                   threshold=settings.threshold,
                   target_sensitivity=settings.target_sensitivity, source=source,
                   progress=stage_printer(progress))
    result = train_landmarks(described, scans, description=described.description,
                             validation=scheme, folds=settings.folds,
                             repeats=settings.repeats, **options)
    sensitivity = {}
    if settings.cohort and scheme == "holdout" and settings.followup_sensitivity:
        sensitivity = {"sensitivity": followup_sensitivity(described, result, **options)}
    return result, to_jsonable(result.metrics | sensitivity)


def run_study(settings: StudySettings, progress: bool = True) -> Study:
    """Run the study ``settings`` describe and return it (nothing is written: see
    :meth:`Study.save`). ``progress`` shows progress bars and stage lines.

    Raises :class:`UserInputError` for a problem the user can fix, before any training
    where it can be seen then.
    """
    outputs = settings.check()
    from models import train

    estimator = settings.estimator
    if isinstance(estimator, str):  # read before the table, so a wrong name fails at once
        from models.classifier import load_estimator

        estimator = load_estimator(estimator)
    described, bayes_p, manifest, original, source = load_training_table(settings, progress)
    manifest = manifest or settings.manifest
    scans = load_scans(settings, described) if settings.followup else None
    radiomics = None
    if manifest is not None:
        from features.choices import CACHE_FOLDER, DEFAULT_PARAMS
        from features.join import add_radiomic_features

        radiomics = add_radiomic_features(
            described.table, manifest, params=settings.params or DEFAULT_PARAMS,
            jobs=settings.jobs, cache_dir=settings.cache or settings.out.parent / CACHE_FOLDER,
            scheduler=settings.scheduler, lesions=settings.lesions, progress=progress)
        described.table = radiomics.table
    notes: list[str] = []
    study_entries = None
    if original is not None:
        from models.updating import update_model

        updated = update_model(original, described.table, method=settings.method,
                               seed=settings.seed, folds=settings.folds,
                               repeats=settings.repeats or 5, source=source,
                               progress=progress)
        model, evaluation, parts = updated.model, updated.evaluation, updated.document_parts()
        title = f"Update of {settings.update.name} with {source}"
        from models.landmarks import landmarks_not_updated

        note = landmarks_not_updated(settings.update)
        if note:
            model.training["landmarks"] = note  # in its record; the summary prints it
            notes.append(f"note: {note}")
    else:
        options = dict(seed=settings.seed, test_size=settings.test_size,
                       threshold=settings.threshold,
                       target_sensitivity=settings.target_sensitivity, bayes_p=bayes_p,
                       source=source, progress=progress, validation=settings.validation,
                       folds=settings.folds, repeats=settings.repeats, estimator=estimator,
                       anticipated_c=settings.anticipated_c)
        result = train(described, nested_cv=settings.nested_cv, **options)
        model, evaluation, parts = result.model, result.evaluation, result.document_parts()
        study_entries = result.study
        notes.append(f"validation: {result.validation} ({result.reason})")
        if radiomics is not None:
            from models.training import compare_without_images

            stage_line("training the same procedure without image features, for "
                       "comparison ...", progress)
            parts |= {"image_features": compare_without_images(described, result, **options),
                      "radiomic_extraction": radiomics.summary()}
            model.radiomics_settings = radiomics.settings_text
        title = (f"Held-out evaluation: {source}" if result.validation == "holdout" else
                 f"Internal validation ({result.validation}): {source}")
    if settings.report and settings.bootstrap > 0:
        from models.evaluation import uncertainty_parts

        parts |= uncertainty_parts(evaluation.frame, model.threshold,
                                   n_resamples=settings.bootstrap, seed=settings.seed,
                                   progress=progress, figures=evaluation.metrics)
    landmarks = None
    if settings.followup:
        landmarks, parts["landmarks"] = fit_landmarks(
            settings, described, scans, source, parts["validation"]["scheme"], progress)
    if settings.report:
        from models.metrics_document import FIDELITY_KEY, report_facts
        from models.statistics import to_jsonable

        parts |= report_facts(evaluation.metrics, evaluation.frame, model)
        if settings.cohort:
            from features.synthetic import fidelity_table

            parts[FIDELITY_KEY] = to_jsonable(fidelity_table(seed=settings.seed))
    from models.metrics_document import build_metrics_document

    document = build_metrics_document(evaluation.metrics, study_entries, **parts)
    return Study(settings=settings, model=model, evaluation=evaluation, metrics=document,
                 source=source, title=title, landmarks=landmarks, notes=notes,
                 outputs=outputs,
                 lesion_map=None if radiomics is None else radiomics.extraction.lesion_map)
