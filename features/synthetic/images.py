"""Synthetic MRI volumes and lesion masks for a cohort table.

:func:`write_synthetic_images` writes, for every row of a cohort in the column contract,
small 3D volumes (NIfTI, through SimpleITK) of the four sequences the project uses:

- ``t1c``: T1-weighted post-contrast, arbitrary units;
- ``flair``: FLAIR, arbitrary units;
- ``adc``: apparent diffusion coefficient map in 10^-3 mm^2/s (the contract's unit);
- ``rcbv``: relative cerebral blood volume map (ratio to normal white matter);

with ``mask.nii.gz`` (the enhancing lesion, label 1, uint8) and ``oedema_mask.nii.gz``
(peritumoral oedema, label 1, uint8; not listed in the manifest, see
:func:`oedema_mask_path`). It returns the image manifest described in DESIGN.md.

A cohort with a ``lesion_id`` column may give a patient several lesions (rows): they lie
side by side along x in one volume per sequence, each on its own block of the grid, and
the mask labels them 1, 2, ... in row order. The manifest is then one row per lesion
(patient_id, lesion_id, ``label``: the lesion's value in the shared mask), which
:func:`features.extract.extract` reads as it is. :func:`simulated_cohort_with_images`
draws such patients (``ImageParameters.lesions_per_patient``).

How the classes look (every feature overlaps between the classes):

- true progression (label 0): nodular, solid, irregular enhancement with satellite nodules,
  avid enhancement, rCBV hot spots, restricted diffusion (its low ADC comes from the table);
- pseudoprogression (label 1): diffuse "feathery" or "soap-bubble" enhancement (enhancing
  strands around non-enhancing bubbles), weaker and more heterogeneous enhancement, a wider
  rim of oedema around less enhancing tissue, few and weak rCBV hot spots.

A per-patient latent "diffuseness" ``d`` in [0, 1] drives all of this: 0 is a solid nodular
lesion, 1 a diffuse soap-bubble one. ``d`` is drawn from a Beta distribution per class and
the two distributions overlap, so the images carry a moderate class signal, not a giveaway.

The mean of the ADC map inside the mask equals the table's ``adc`` and the mean of the
rCBV map inside the mask equals the table's ``rcbv`` (to about 1e-7 relative). When the
table's value is missing, ``ImageParameters.missing_map`` chooses: ``"skip"`` (default)
writes no map for that sequence (no perfusion study, no rCBV map: the manifest cell is
empty and extraction leaves those columns NaN), ``"draw"`` draws a plausible value for the
patient's class and writes the map (the table stays NaN).

Everything is deterministic given ``seed`` and ``patient_id``: each patient's random
generator is seeded from ``seed`` and the SHA-256 of the id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from joblib import Parallel, delayed
from scipy import ndimage
from tqdm import tqdm

from features.contract import ID, LABEL, LESION, checked_lesions
from features.errors import UserInputError
from features.synthetic.parameters import (
    DEFAULT_IMAGE_PARAMETERS,
    DEFAULT_PARAMETERS,
    CohortParameters,
    ImageParameters,
)
from features.tables import write_table_atomic

SEQUENCES: tuple[str, ...] = ("t1c", "flair", "adc", "rcbv")
MASK = "mask"
MANIFEST_COLUMNS: tuple[str, ...] = (ID, MASK, *SEQUENCES)
#: the manifest of a cohort with lesion ids: one row per lesion, its label in the mask
LESION_MANIFEST_COLUMNS: tuple[str, ...] = (ID, LESION, "label", MASK, *SEQUENCES)
MANIFEST_FILE = "manifest.csv"
OEDEMA_MASK_FILE = "oedema_mask.nii.gz"
_REQUIRED = (ID, LABEL, "adc", "rcbv", "volume_change_pct")




def patient_rng(seed: int, patient_id: str) -> np.random.Generator:
    """A random generator for one patient, from ``seed`` and the SHA-256 of ``patient_id``."""
    digest = hashlib.sha256(str(patient_id).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def patient_folder(patient_id: str) -> str:
    """The folder name for a patient: the id when it is filename-safe, else a safe slug."""
    pid = str(patient_id)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", pid):
        return pid
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", pid).strip("._")[:60] or "patient"
    return f"{slug}-{hashlib.sha256(pid.encode('utf-8')).hexdigest()[:8]}"


def oedema_mask_path(out_dir: str | Path, patient_id: str) -> Path:
    """Where :func:`write_synthetic_images` writes a patient's oedema mask."""
    return Path(out_dir) / patient_folder(patient_id) / OEDEMA_MASK_FILE


# --------------------------------------------------------------------------------------
# synthesis


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


class _Grid:
    """Physical coordinates (mm, index axes, centred) of the voxels, arrays in (z, y, x)."""

    def __init__(self, p: ImageParameters):
        nx, ny, nz = p.size_voxels
        sx, sy, sz = p.spacing_mm
        self.p = p
        self.shape = (nz, ny, nx)
        self.z, self.y, self.x = np.meshgrid((np.arange(nz) - (nz - 1) / 2) * sz,
                                             (np.arange(ny) - (ny - 1) / 2) * sy,
                                             (np.arange(nx) - (nx - 1) / 2) * sx,
                                             indexing="ij")

    def image(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image of ``array`` with the grid's spacing, origin and direction."""
        img = sitk.GetImageFromArray(array)
        img.SetSpacing(tuple(float(s) for s in self.p.spacing_mm))
        img.SetOrigin(self.p.origin())
        img.SetDirection(tuple(float(v) for v in self.p.direction))
        return img

    def noise(self, rng: np.random.Generator, scale_mm: float) -> np.ndarray:
        """Gaussian-smoothed white noise (sigma ``scale_mm``), standardised to mean 0, sd 1."""
        sigma_voxels = [scale_mm / s for s in reversed(self.p.spacing_mm)]  # (z, y, x)
        arr = ndimage.gaussian_filter(rng.standard_normal(self.shape), sigma_voxels)
        return (arr - arr.mean()) / (arr.std() + 1e-12)

    def distance_outside(self, region: np.ndarray) -> np.ndarray:
        """mm, distance of every voxel to ``region`` (0 inside it)."""
        img = sitk.GetImageFromArray(region.astype(np.uint8))
        img.SetSpacing(tuple(float(s) for s in self.p.spacing_mm))
        dist = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False,
                                            useImageSpacing=True)
        return np.clip(sitk.GetArrayFromImage(dist), 0, None)


def _largest_component(grid: _Grid, region: np.ndarray) -> np.ndarray:
    if not region.any():
        return region
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(grid.image(region.astype(np.uint8))))
    return sitk.GetArrayFromImage(cc) == 1


def _match_mean(values: np.ndarray, region: np.ndarray, target: float) -> np.ndarray:
    """Scale ``values`` inside ``region`` so that their float32 mean equals ``target``."""
    out = values.astype(np.float64)
    out[region] *= target / out[region].mean()
    out32 = out.astype(np.float32)
    # one correction step for the float32 rounding
    out32[region] = (out32[region].astype(np.float64)
                     * (target / out32[region].astype(np.float64).mean())).astype(np.float32)
    return out32


def _draw_value(rng: np.random.Generator, p: ImageParameters, name: str, label: int) -> float:
    if name == "adc":
        mean, sd = p.adc_draw_pp if label == 1 else p.adc_draw_tp
        return float(np.clip(rng.normal(mean, sd), 0.3, 3.0))
    median, log_sd = p.rcbv_draw_pp if label == 1 else p.rcbv_draw_tp
    return float(np.exp(np.log(median) + rng.normal(0.0, log_sd)))


def synthesise_patient(patient_id: str, label: int, adc: float, rcbv: float,
                       volume_change_pct: float, seed: int = 0,
                       params: ImageParameters | None = None) -> dict[str, sitk.Image]:
    """The images of one patient as SimpleITK images (no files written).

    Keys: ``t1c``, ``flair``, ``adc`` (10^-3 mm^2/s), ``rcbv`` (ratio), ``mask`` and
    ``oedema_mask`` (uint8, label 1). ``adc``/``rcbv`` are left out when the value is NaN
    and ``params.missing_map == "skip"``.
    """
    p = params or DEFAULT_IMAGE_PARAMETERS
    rng = patient_rng(seed, patient_id)
    g = _Grid(p)
    label = int(label)
    d = float(rng.beta(*(p.diffuseness_beta_pp if label == 1 else p.diffuseness_beta_tp)))

    # Lesion envelope: a sphere with a lobulated margin, grown by the volume change.
    growth = p.default_volume_change_pct if not np.isfinite(volume_change_pct) \
        else float(volume_change_pct)
    growth_factor = max(1.0 + growth / 100.0, 0.2) ** (1.0 / 3.0)
    radius = rng.normal(p.baseline_radius_mm, p.baseline_radius_sd_mm)
    radius = float(np.clip(radius * growth_factor, 2.5, p.max_radius_mm))
    cz, cy, cx = rng.normal(0.0, p.centre_jitter_mm, 3)
    dz, dy, dx = g.z - cz, g.y - cy, g.x - cx
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    lobules = np.clip(g.noise(rng, p.lobulation_scale_mm), -1.5, 1.5)
    irregularity = _lerp(p.irregularity_solid, p.irregularity_diffuse, d)
    envelope = r / radius - 1.0 - irregularity * lobules < 0
    for _ in range(rng.poisson(_lerp(p.nodules_solid, p.nodules_diffuse, d))):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        centre = u * radius * rng.uniform(0.9, 1.15)
        rn = radius * p.nodule_radius_fraction * rng.uniform(0.7, 1.3)
        envelope |= (dz - centre[0])**2 + (dy - centre[1])**2 + (dx - centre[2])**2 < rn**2
    envelope = _largest_component(g, envelope)

    # Enhancing tissue: the envelope minus a necrotic core and, when diffuse, soap bubbles.
    core = r < radius * rng.uniform(0.0, p.necrosis_fraction_max)
    bubbles = np.zeros_like(envelope)
    bubble_fraction = d * p.bubble_fraction_diffuse
    if bubble_fraction > 0:
        h = g.noise(rng, p.bubble_scale_mm)
        bubbles = envelope & (h > np.quantile(h[envelope], 1.0 - bubble_fraction))
    mask = envelope & ~core & ~bubbles
    if mask.sum() < p.min_mask_voxels:
        mask = envelope.copy()
    necrosis = envelope & ~mask

    # Oedema: an irregular rim around the envelope, wider in diffuse lesions.
    extent = max(0.5, _lerp(p.oedema_extent_solid_mm, p.oedema_extent_diffuse_mm, d)
                 + rng.normal(0.0, p.oedema_extent_sd_mm))
    fingers = np.clip(g.noise(rng, 3.0), -2.0, 2.0)
    dist = g.distance_outside(envelope)
    oedema = (dist > 0) & (dist < extent * (1.0 + p.oedema_irregularity * fingers))

    texture = g.noise(rng, p.texture_scale_mm)
    anatomy = 1.0 + p.anatomy_contrast * np.clip(g.noise(rng, p.anatomy_scale_mm), -2.5, 2.5)
    bias = 1.0 + p.bias_field * np.clip(g.noise(rng, 15.0), -2.5, 2.5)

    # T1 post-contrast.
    enhancement = _lerp(p.enhancement_solid, p.enhancement_diffuse, d) * np.exp(
        rng.normal(0.0, 0.1))
    enh_texture = _lerp(p.enhancement_texture_solid, p.enhancement_texture_diffuse, d)
    t1c = anatomy.copy()
    t1c[oedema] *= p.t1c_oedema
    t1c[necrosis] = p.t1c_necrosis
    t1c[mask] = 1.0 + enhancement * np.clip(1.0 + enh_texture * texture[mask], 0.05, None)
    t1c = t1c * bias * p.t1c_scale + rng.normal(0.0, p.noise_t1c * p.t1c_scale, g.shape)

    # FLAIR.
    flair = (2.0 - anatomy)  # grey/white contrast inverted with respect to T1
    flair[oedema] = 1.0 + p.flair_oedema * (1.0 + 0.15 * fingers[oedema])
    flair[mask] = 1.0 + p.flair_lesion * (1.0 + 0.2 * texture[mask])
    flair[necrosis] = 1.0 + p.flair_necrosis
    flair = flair * bias * p.flair_scale + rng.normal(0.0, p.noise_flair * p.flair_scale,
                                                       g.shape)

    images = {"t1c": t1c.astype(np.float32), "flair": flair.astype(np.float32)}

    # Quantitative maps: texture first, then the lesion mean is set to the table's value.
    values = {"adc": adc, "rcbv": rcbv}
    for name in ("adc", "rcbv"):
        target = values[name]
        if not np.isfinite(target):
            if p.missing_map == "skip":
                continue
            target = _draw_value(rng, p, name, label)
        if name == "adc":
            tex = _lerp(p.adc_texture_solid, p.adc_texture_diffuse, d)
            arr = p.adc_brain * (2.0 - anatomy)
            arr[oedema] = p.adc_oedema
            arr[necrosis] = p.adc_necrosis
            arr[mask] = target * np.exp(tex * texture[mask])
            arr = arr + rng.normal(0.0, p.noise_adc, g.shape)
            arr = np.clip(arr, 0.05, None)
        else:
            arr = p.rcbv_brain * anatomy
            arr[oedema] = p.rcbv_oedema
            arr[necrosis] = p.rcbv_necrosis
            hot_field = g.noise(rng, p.hotspot_scale_mm)
            fraction = _lerp(p.hotspot_fraction_solid, p.hotspot_fraction_diffuse, d)
            hot = hot_field[mask] > np.quantile(hot_field[mask], 1.0 - fraction)
            lesion = target * np.exp(p.rcbv_texture * texture[mask])
            lesion[hot] *= _lerp(p.hotspot_strength_solid, p.hotspot_strength_diffuse, d)
            arr[mask] = lesion
            arr = arr + rng.normal(0.0, p.noise_rcbv, g.shape)
            arr = np.clip(arr, 0.02, None)
        images[name] = _match_mean(arr, mask, float(target))

    out = {name: g.image(arr) for name, arr in images.items()}
    out[MASK] = g.image(mask.astype(np.uint8))
    out["oedema_mask"] = g.image(oedema.astype(np.uint8))
    return out


def _side_by_side(blocks: list[dict[str, sitk.Image]], p: ImageParameters
                  ) -> dict[str, sitk.Image]:
    """One patient's lesions (each :func:`synthesise_patient`'s images on ``p``'s grid) as
    one volume per sequence, the blocks side by side along x; the mask labels block i with
    i + 1. A sequence is kept when every block has it."""
    nx, ny, nz = p.size_voxels
    grid = _Grid(replace(p, size_voxels=(nx * len(blocks), ny, nz)))
    out = {}
    for name in blocks[0]:
        if not all(name in b for b in blocks):
            continue
        arrays = [sitk.GetArrayFromImage(b[name]) for b in blocks]
        if name == MASK:
            arrays = [(a > 0).astype(np.uint8) * (i + 1) for i, a in enumerate(arrays)]
        out[name] = grid.image(np.concatenate(arrays, axis=2))
    return out


def _write_patient(rows: list[dict], out_dir: Path, seed: int, p: ImageParameters
                   ) -> list[dict]:
    """Write one patient's images (one row per lesion); return its manifest rows."""
    pid = rows[0][ID]
    lesions = LESION in rows[0]
    if len(rows) == 1:
        row = rows[0]
        images = synthesise_patient(pid, row[LABEL], row["adc"], row["rcbv"],
                                    row["volume_change_pct"], seed=seed, params=p)
    else:  # every lesion's maps drawn, so that one volume serves them all
        drawn = replace(p, missing_map="draw")
        images = _side_by_side([
            synthesise_patient(f"{pid}/{row[LESION]}", row[LABEL], row["adc"], row["rcbv"],
                               row["volume_change_pct"], seed=seed, params=drawn)
            for row in rows], p)
    folder = patient_folder(pid)
    (out_dir / folder).mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in (MASK, *SEQUENCES):
        if name in images:
            paths[name] = f"{folder}/{name}.nii.gz"
            sitk.WriteImage(images[name], str(out_dir / paths[name]), useCompression=True)
    if p.write_oedema_mask:
        sitk.WriteImage(images["oedema_mask"], str(out_dir / folder / OEDEMA_MASK_FILE),
                        useCompression=True)
    entries = []
    for i, row in enumerate(rows):
        entry = {ID: pid, **({LESION: row[LESION], "label": i + 1} if lesions else {})}
        for name in (MASK, *SEQUENCES):
            # a lesion without the table's value has no map, as with one lesion
            skipped = (name in ("adc", "rcbv") and p.missing_map == "skip"
                       and not np.isfinite(row[name]))
            entry[name] = np.nan if name not in paths or skipped else paths[name]
        entries.append(entry)
    return entries


def _check_cohort(cohort: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(cohort, pd.DataFrame):
        raise UserInputError(f"cohort must be a pandas DataFrame, got {type(cohort).__name__}.")
    missing = [c for c in _REQUIRED if c not in cohort.columns]
    if missing:
        raise UserInputError(
            f"the cohort lacks column(s) {', '.join(missing)}; the images need "
            f"{', '.join(_REQUIRED)} (adc, rcbv and volume_change_pct may hold NaN).")
    keys = [ID, LESION] if LESION in cohort.columns else [ID]
    df = cohort[[*keys, *_REQUIRED[1:]]].copy()
    df[ID] = df[ID].astype(str)
    if LESION in df.columns:
        df[LESION] = checked_lesions(df[ID], df[LESION], "the cohort")
    else:
        dup = df[ID][df[ID].duplicated()].unique()
        if len(dup):
            raise UserInputError(f"the cohort has duplicated {ID}: {', '.join(dup[:5])}; "
                                 f"give several lesions of a patient a '{LESION}' column.")
    labels = pd.to_numeric(df[LABEL], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise UserInputError(f"'{LABEL}' must be 0 or 1 in every row of the cohort.")
    df[LABEL] = labels.astype(int)
    for col in ("adc", "rcbv", "volume_change_pct"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("adc", "rcbv"):
        if (df[col] <= 0).any():
            raise UserInputError(f"'{col}' must be positive (or empty) to set a map's mean.")
    return df


def write_synthetic_images(cohort: pd.DataFrame, out_dir: str | Path, seed: int = 0,
                           params: ImageParameters | None = None, jobs: int = 1,
                           progress: bool = False) -> pd.DataFrame:
    """Write each patient's t1c, flair, adc, rcbv and mask as .nii.gz under ``out_dir``.

    ``cohort`` needs patient_id, pseudoprogression (0/1), adc (10^-3 mm^2/s), rcbv (ratio) and
    volume_change_pct (%); the last three may be NaN. With a ``lesion_id`` column, a
    patient's rows are its lesions, side by side in one volume (see the module's text).
    Files go to ``out_dir/<patient>/<sequence>.nii.gz`` (plus ``oedema_mask.nii.gz``).
    Returns the manifest (patient_id, [lesion_id, label,] mask, t1c, flair, adc, rcbv;
    paths relative to ``out_dir``, empty where a map was skipped) and writes it as
    ``out_dir/manifest.csv``. ``jobs`` patients are written in parallel (joblib).
    """
    p = params or DEFAULT_IMAGE_PARAMETERS
    if int(seed) < 0:
        raise UserInputError(f"seed must be a non-negative integer, got {seed}.")
    df = _check_cohort(cohort)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    patients = [group.to_dict("records")
                for _, group in df.groupby(ID, sort=False)]
    if jobs == 1 or len(patients) < 2:
        written = (_write_patient(rows, out, int(seed), p) for rows in patients)
    else:
        written = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_write_patient)(rows, out, int(seed), p) for rows in patients)
    entries = [e for rows in tqdm(written, total=len(patients), desc="synthetic MRI",
                                  unit="patient", disable=not progress) for e in rows]
    columns = LESION_MANIFEST_COLUMNS if LESION in df.columns else MANIFEST_COLUMNS
    manifest = pd.DataFrame(entries, columns=list(columns))
    write_table_atomic(manifest, out / MANIFEST_FILE)
    return manifest


def lesions_per_patient(n: int, seed: int, params: ImageParameters) -> np.ndarray:
    """How many lesions each of ``n`` simulated patients has: 1, 2, ... with
    ``params.lesions_per_patient``'s probabilities, from a generator of its own for
    ``seed``."""
    rng = np.random.default_rng([int(seed), 0x1E5])
    probabilities = np.asarray(params.lesions_per_patient, dtype=float)
    return rng.choice(np.arange(1, len(probabilities) + 1), size=int(n),
                      p=probabilities / probabilities.sum())


def simulated_cohort_with_images(n: int, cohort: str, seed: int, image_dir: str | Path,
                                 prevalence: float | None = None, jobs: int = 1,
                                 progress: bool = True, params: CohortParameters | None = None
                                 ) -> tuple[pd.DataFrame, Path]:
    """Simulate ``n`` patients and write their synthetic MRI under ``image_dir``, both shaped
    by ``params`` (the simulator's parameter table; its ``images`` field for the MRI).

    Each patient has 1, 2, 3, ... lesions with ``params.images.lesions_per_patient``'s
    probabilities (drawn from ``seed``): the cohort's rows are lesions, grouped into
    patients in order, each group keeping its first row's patient_id and numbering its
    lesions in ``lesion_id``. Returns the clinical table (one row per lesion) and the path
    of the image manifest.
    """
    from features.synthetic.cohort import simulate_cohort

    params = DEFAULT_PARAMETERS if params is None else params
    per_patient = lesions_per_patient(n, seed, params.images)
    table = simulate_cohort(int(per_patient.sum()), cohort=cohort, prevalence=prevalence,
                            seed=seed, params=params)
    patient = np.repeat(np.arange(n), per_patient)
    first = np.r_[0, np.cumsum(per_patient)[:-1]]
    table[ID] = table[ID].to_numpy()[first][patient]
    table.insert(1, LESION, [str(k + 1) for k in np.concatenate(
        [np.arange(k) for k in per_patient])] if n else [])
    image_dir = Path(image_dir)
    if progress:
        print(f"writing synthetic MRI for {n} patients ({len(table)} lesions) to "
              f"{image_dir} ...", flush=True)
    write_synthetic_images(table, image_dir, seed=seed, params=params.images, jobs=jobs)
    return table, image_dir / MANIFEST_FILE
