"""Several lesions in one mask: lesion modes, the lesion map, one row per lesion.

The real case is pyradiomics' own test image brain1 (tests/data/pyradiomics_brain1), whose
label's voxels form two separate lesions; counts, volumes and centroids are checked against
scipy.ndimage, features against pyradiomics run directly on a mask of each part.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage
from toy_data import FEW_FEATURES

from features.errors import UserInputError
from features.extract import extract, main

BRAIN1 = Path(__file__).parents[1] / "data" / "pyradiomics_brain1"
SETTINGS = """
version: "test-1"
lesions: {lesions}
min_lesion_ml: {min_ml}
lesion_connectivity: {connectivity}
mask_single_label: true
setting:
  label: 1
  normalize: false
  binWidth: 25
featureClass:
  shape: [VoxelVolume, MeshVolume]
  firstorder: [Mean, Maximum]
"""


def settings(tmp_path: Path, lesions: str = "whole", min_ml: float = 0.02,
             connectivity: str = "face", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SETTINGS.format(lesions=lesions, min_ml=min_ml, connectivity=connectivity))
    return path


def brain1_manifest(tmp_path: Path) -> Path:
    for name in ("brain1_image.nrrd", "brain1_label.nrrd"):
        shutil.copy(BRAIN1 / name, tmp_path / name)
    path = tmp_path / "manifest.csv"
    pd.DataFrame({"patient_id": ["brain1"], "mask": ["brain1_label.nrrd"],
                  "t1c": ["brain1_image.nrrd"]}).to_csv(path, index=False)
    return path


def pyradiomics_direct(image: sitk.Image, region: np.ndarray, reference: sitk.Image) -> dict:
    """pyradiomics' features of ``image`` in ``region`` (a boolean array), run directly."""
    from radiomics import featureextractor

    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    mask.CopyInformation(reference)
    extractor = featureextractor.RadiomicsFeatureExtractor(
        setting={"label": 1, "normalize": False, "binWidth": 25, "additionalInfo": False})
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(shape=["VoxelVolume", "MeshVolume"],
                                   firstorder=["Mean", "Maximum"])
    result = extractor.execute(image, mask)
    return {f"t1c_{k}": float(v) for k, v in result.items() if not k.startswith("diagnostics")}


@pytest.fixture(scope="module")
def brain1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brain1")
    manifest = brain1_manifest(tmp)
    label = sitk.ReadImage(str(BRAIN1 / "brain1_label.nrrd"))
    image = sitk.ReadImage(str(BRAIN1 / "brain1_image.nrrd"))
    arr = sitk.GetArrayFromImage(label)
    # independent count: scipy's face-connected components (6 neighbours in 3D)
    parts, n = ndimage.label(arr == 1, ndimage.generate_binary_structure(3, 1))
    counts = np.bincount(parts.ravel())[1:]
    order = np.argsort(-counts)  # lesion ids by decreasing volume
    return {"tmp": tmp, "manifest": manifest, "label": label, "image": image, "parts": parts,
            "n": n, "counts": counts[order], "numbers": order + 1,
            "components": extract(manifest, settings(tmp, "components"), use_cache=False,
                                  progress=False),
            "whole": extract(manifest, settings(tmp, "whole", name="w.yaml"), use_cache=False,
                             progress=False)}


def test_brain1_components_are_two_lesions_counted_as_scipy_counts_them(brain1):
    result = brain1["components"]
    assert brain1["n"] == 2
    lesion_map = result.lesion_map
    assert lesion_map["lesion_id"].tolist() == ["1", "2"]
    assert lesion_map["voxels"].tolist() == brain1["counts"].tolist()
    voxel_ml = np.prod(brain1["label"].GetSpacing()) / 1000.0
    np.testing.assert_allclose(lesion_map["volume_ml"], brain1["counts"] * voxel_ml, rtol=1e-12)
    # pyradiomics' own voxel volume (mm^3) of each lesion's features agrees
    features = result.features.set_index("lesion_id")
    np.testing.assert_allclose(features.loc[["1", "2"], "t1c_original_shape_VoxelVolume"],
                               brain1["counts"] * voxel_ml * 1000.0, rtol=1e-9)
    assert result.features["patient_id"].tolist() == ["brain1", "brain1"]
    assert result.failures.empty and result.dropped.empty


def test_brain1_lesion_map_centroids_and_boxes_in_physical_mm(brain1):
    label, parts = brain1["label"], brain1["parts"]
    rows = brain1["components"].lesion_map.set_index("lesion_id")
    for lesion_id, number in zip(["1", "2"], brain1["numbers"], strict=True):
        zyx = ndimage.center_of_mass(parts == number)
        centroid = label.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]])
        got = rows.loc[lesion_id, ["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]]
        np.testing.assert_allclose(got.astype(float), centroid, atol=1e-6)
        idx = np.argwhere(parts == number)
        corners = [label.TransformIndexToPhysicalPoint([int(v) for v in c[::-1]])
                   for c in (idx.min(axis=0), idx.max(axis=0))]
        lo, hi = np.minimum(*corners), np.maximum(*corners)
        np.testing.assert_allclose(
            rows.loc[lesion_id, ["bbox_min_x_mm", "bbox_min_y_mm", "bbox_min_z_mm"]].astype(
                float), lo, atol=1e-6)
        np.testing.assert_allclose(
            rows.loc[lesion_id, ["bbox_max_x_mm", "bbox_max_y_mm", "bbox_max_z_mm"]].astype(
                float), hi, atol=1e-6)


def test_brain1_each_lesion_has_the_features_of_its_own_part(brain1):
    features = brain1["components"].features.set_index("lesion_id")
    for lesion_id, number in zip(["1", "2"], brain1["numbers"], strict=True):
        direct = pyradiomics_direct(brain1["image"], brain1["parts"] == number, brain1["label"])
        got = features.loc[lesion_id, list(direct)].astype(float)
        np.testing.assert_allclose(got, list(direct.values()), rtol=1e-9)


def test_brain1_whole_is_one_row_of_the_whole_label(brain1):
    result = brain1["whole"]
    assert len(result.features) == 1 and result.features.columns[0] == "patient_id"
    assert "lesion_id" not in result.features.columns  # one row per patient, as before
    direct = pyradiomics_direct(brain1["image"], brain1["parts"] > 0, brain1["label"])
    np.testing.assert_allclose(result.features.loc[0, list(direct)].astype(float),
                               list(direct.values()), rtol=1e-9)
    assert result.lesion_map["voxels"].tolist() == [int(brain1["counts"].sum())]


def test_min_lesion_ml_drops_and_counts_the_small_part(brain1, tmp_path):
    voxel_ml = np.prod(brain1["label"].GetSpacing()) / 1000.0
    small, large = sorted(brain1["counts"] * voxel_ml)
    cut = (small + large) / 2
    result = extract(brain1["manifest"], settings(tmp_path, "components", min_ml=cut),
                     use_cache=False, progress=False)
    assert result.lesion_map["voxels"].tolist() == [int(brain1["counts"].max())]
    assert result.dropped["voxels"].tolist() == [int(brain1["counts"].min())]
    assert "dropped: 1 in 1 patient(s)" in result.summary()
    everything = extract(brain1["manifest"], settings(tmp_path, "components", min_ml=2 * large,
                                                      name="q.yaml"),
                         use_cache=False, progress=False)
    assert everything.features.empty
    (reason,) = everything.failures["reason"]
    assert "smaller than min_lesion_ml" in reason and "lower min_lesion_ml" in reason


def _write(tmp: Path, name: str, array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> str:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(tmp / name))
    return name


def _toy_image(tmp: Path, shape=(12, 12, 12), seed=0) -> str:
    rng = np.random.default_rng(seed)
    return _write(tmp, "image.nii.gz", rng.normal(100, 20, shape).astype(np.float32))


def test_connectivity_face_or_full_as_scipy_counts_it(tmp_path):
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[1:5, 1:5, 1:5] = 1
    mask[5:9, 5:9, 5:9] = 1  # touches the first cube at one corner only
    name = _write(tmp_path, "mask.nii.gz", mask)
    pd.DataFrame({"patient_id": ["p"], "mask": [name], "t1c": [_toy_image(tmp_path)]}).to_csv(
        tmp_path / "m.csv", index=False)
    for connectivity, rank in (("face", 1), ("full", 3)):
        result = extract(tmp_path / "m.csv", settings(tmp_path, "components", min_ml=0,
                                                      connectivity=connectivity),
                         use_cache=False, progress=False)
        _, n = ndimage.label(mask, ndimage.generate_binary_structure(3, rank))
        assert len(result.lesion_map) == n == (2 if connectivity == "face" else 1)


def _two_label_case(tmp: Path) -> tuple[np.ndarray, str, str]:
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[1:6, 1:6, 1:6] = 3
    mask[6:11, 6:11, 6:11] = 1
    return mask, _write(tmp, "mask.nii.gz", mask), _toy_image(tmp)


def test_labels_mode_and_a_lesion_manifest_give_the_same_rows(tmp_path):
    mask, mask_name, image = _two_label_case(tmp_path)
    pd.DataFrame({"patient_id": ["p"], "mask": [mask_name], "t1c": [image]}).to_csv(
        tmp_path / "m.csv", index=False)
    by_labels = extract(tmp_path / "m.csv", settings(tmp_path, "labels"), use_cache=False,
                        progress=False)
    assert by_labels.features["lesion_id"].tolist() == ["1", "3"]
    assert by_labels.lesion_map["label"].tolist() == [1, 3]
    assert by_labels.lesion_map["voxels"].tolist() == [int((mask == v).sum()) for v in (1, 3)]
    pd.DataFrame({"patient_id": ["p", "p"], "lesion_id": ["1", "3"], "label": [1, 3],
                  "mask": [mask_name] * 2, "t1c": [image] * 2}).to_csv(
        tmp_path / "rows.csv", index=False)
    by_rows = extract(tmp_path / "rows.csv", settings(tmp_path), use_cache=False,
                      progress=False)
    pd.testing.assert_frame_equal(by_rows.features, by_labels.features)
    # the shared mask holds two labels, yet each row names its own: no failure
    assert by_rows.failures.empty


def test_failures_name_patient_and_lesion(tmp_path):
    mask, mask_name, image = _two_label_case(tmp_path)
    mask[mask == 3] = 0
    mask[1, 1, 1] = 3  # one voxel: pyradiomics refuses it
    _write(tmp_path, "mask.nii.gz", mask)
    pd.DataFrame({"patient_id": ["p"], "mask": [mask_name], "t1c": [image]}).to_csv(
        tmp_path / "m.csv", index=False)
    result = extract(tmp_path / "m.csv", settings(tmp_path, "labels"), use_cache=False,
                     progress=False)
    assert result.features["lesion_id"].tolist() == ["1"]
    assert result.failures[["patient_id", "lesion_id", "sequence"]].values.tolist() == [
        ["p", "3", "t1c"]]
    assert "FAILED p lesion 3 [t1c]" in result.summary()


def test_cache_is_per_lesion(tmp_path):
    _, mask_name, image = _two_label_case(tmp_path)
    pd.DataFrame({"patient_id": ["p"], "mask": [mask_name], "t1c": [image]}).to_csv(
        tmp_path / "m.csv", index=False)
    params = settings(tmp_path, "labels")
    first = extract(tmp_path / "m.csv", params, cache_dir=tmp_path / "c", progress=False)
    again = extract(tmp_path / "m.csv", params, cache_dir=tmp_path / "c", progress=False)
    assert first.cache_hits == 0 and again.cache_hits == 2
    pd.testing.assert_frame_equal(again.features, first.features)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.assign(lesion_id=["1"]), "one row per lesion"),
    (lambda m: m.assign(mask_t1c=m["mask"]), "per-sequence mask"),
    (lambda m: m.assign(label=["x"]), "whole number above 0"),
])
def test_manifest_contradicting_the_lesion_mode_is_refused(tmp_path, change, message):
    _, mask_name, image = _two_label_case(tmp_path)
    change(pd.DataFrame({"patient_id": ["p"], "mask": [mask_name], "t1c": [image]})).to_csv(
        tmp_path / "m.csv", index=False)
    with pytest.raises(UserInputError, match=message):
        extract(tmp_path / "m.csv", settings(tmp_path, "components"), use_cache=False,
                progress=False)


def test_bad_lesion_settings_are_refused(tmp_path):
    brain1_manifest(tmp_path)
    for text, message in (("lesions: parts", "lesions must be one of"),
                          ("min_lesion_ml: -1", "min_lesion_ml"),
                          ("lesion_connectivity: edge", "lesion_connectivity")):
        path = tmp_path / "bad.yaml"
        path.write_text(f'version: "1"\n{text}\nsetting: {{label: 1}}\n')
        with pytest.raises(UserInputError, match=message):
            extract(tmp_path / "manifest.csv", path, use_cache=False, progress=False)


def test_command_line_lesions_option_writes_the_lesion_map(tmp_path, capsys):
    manifest = brain1_manifest(tmp_path)
    out = tmp_path / "radiomics.csv"
    status = main(["--manifest", str(manifest), "--params", str(settings(tmp_path)),
                   "--out", str(out), "--no-cache", "--quiet", "--lesions", "components"])
    assert status == 0
    features = pd.read_csv(out, dtype={"lesion_id": str})
    lesion_map = pd.read_csv(tmp_path / "radiomics.lesions.csv", dtype={"lesion_id": str})
    assert features["lesion_id"].tolist() == lesion_map["lesion_id"].tolist() == ["1", "2"]
    assert "lesions (components): 2 in 1 patient(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# a simulated cohort with several lesions per patient, from images through training

N_PATIENTS = 70


@pytest.fixture(scope="module")
def multi_lesion(tmp_path_factory):
    from dataclasses import replace

    from features.join import add_radiomic_features
    from features.synthetic import DEFAULT_PARAMETERS, simulated_cohort_with_images

    tmp = tmp_path_factory.mktemp("multi")
    params = tmp / "fast.yaml"
    params.write_text(FEW_FEATURES)
    small = replace(DEFAULT_PARAMETERS, images=replace(DEFAULT_PARAMETERS.images,
                                                       size_voxels=(32, 32, 16)))
    table, manifest = simulated_cohort_with_images(N_PATIENTS, "melanoma", seed=3,
                                                   image_dir=tmp / "images", prevalence=0.5,
                                                   progress=False, params=small)
    radiomics = add_radiomic_features(table, manifest, params=params, use_cache=False,
                                      progress=False, sequences=["t1c"])
    return {"table": table, "manifest": pd.read_csv(manifest, dtype=str),
            "radiomics": radiomics, "root": tmp / "images"}


def test_simulated_image_cohort_has_patients_with_several_lesions(multi_lesion):
    table, manifest = multi_lesion["table"], multi_lesion["manifest"]
    per_patient = table.groupby("patient_id").size()
    assert per_patient.index.size == N_PATIENTS and per_patient.max() > 1
    # one manifest row per lesion, each its own label value in the patient's shared mask
    assert manifest[["patient_id", "lesion_id"]].values.tolist() == \
        table[["patient_id", "lesion_id"]].values.tolist()
    several = per_patient[per_patient > 1].index[0]
    rows = manifest[manifest["patient_id"] == several]
    assert rows["mask"].nunique() == 1 and rows["label"].tolist() == [
        str(i + 1) for i in range(len(rows))]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(multi_lesion["root"] / rows["mask"].iloc[0])))
    assert sorted(np.unique(mask[mask > 0]).tolist()) == list(range(1, len(rows) + 1))
    lesion_map = multi_lesion["radiomics"].extraction.lesion_map
    voxels = lesion_map[lesion_map["patient_id"] == several]["voxels"].tolist()
    assert voxels == [int((mask == i + 1).sum()) for i in range(len(rows))]


def test_several_lesions_go_from_images_through_training_grouped_by_patient(multi_lesion):
    from models import train
    from models.training import describe_table

    radiomics = multi_lesion["radiomics"]
    joined = radiomics.table
    assert radiomics.extraction.failures.empty
    assert radiomics.join.only_in_clinical == [] and radiomics.join.only_in_radiomic == []
    # every lesion got its own features: as many distinct rows as lesions
    assert joined["t1c_original_firstorder_Mean"].notna().all()
    assert joined["t1c_original_firstorder_Mean"].nunique() == len(joined)
    summary = radiomics.summary()
    assert summary["n_lesions"] == len(joined) and summary["n_patients"] == N_PATIENTS

    result = train(describe_table(joined, source="sim"), seed=0, validation="holdout",
                   nested_cv=False, progress=False)
    train_ids, test_ids = set(result.train_ids), set(result.test_ids)
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(joined["patient_id"])
    evaluated = result.evaluation.frame
    # no lesion straddles training and evaluation: every evaluated lesion's patient is held
    # out, and every lesion of a held-out patient is evaluated
    assert set(evaluated["patient_id"]) == test_ids
    held_out = joined[joined["patient_id"].isin(test_ids)]
    assert sorted(zip(evaluated["patient_id"], evaluated["lesion_id"].astype(str),
                      strict=True)) == \
        sorted(zip(held_out["patient_id"], held_out["lesion_id"].astype(str), strict=True))
    several = joined.groupby("patient_id").size().loc[lambda s: s > 1].index
    assert set(several) & train_ids and set(several) & test_ids


def test_correct_mask_resamples_each_lesion_onto_the_image_grid(tmp_path):
    mask, mask_name, _ = _two_label_case(tmp_path)
    fine = np.random.default_rng(1).normal(100, 20, (24, 24, 24)).astype(np.float32)
    image = _write(tmp_path, "fine.nii.gz", fine, spacing=(0.5, 0.5, 0.5))
    sitk_image = sitk.ReadImage(str(tmp_path / image))
    sitk_image.SetOrigin((-0.25, -0.25, -0.25))  # voxel corners of both grids coincide
    sitk.WriteImage(sitk_image, str(tmp_path / image))
    pd.DataFrame({"patient_id": ["p"], "mask": [mask_name], "t1c": [image]}).to_csv(
        tmp_path / "m.csv", index=False)
    params = settings(tmp_path, "labels")
    params.write_text(params.read_text().replace("  label: 1\n",
                                                 "  label: 1\n  correctMask: true\n"))
    result = extract(tmp_path / "m.csv", params, use_cache=False, progress=False)
    assert result.failures.empty
    assert result.mask_resampled[["lesion_id", "sequence"]].values.tolist() == [
        ["1", "t1c"], ["3", "t1c"]]
    # each lesion, resampled by nearest neighbour to voxels 8 times smaller, keeps its volume
    voxels = result.features.set_index("lesion_id")["t1c_original_shape_VoxelVolume"]
    np.testing.assert_allclose(voxels.loc[["1", "3"]], [(mask == v).sum() for v in (1, 3)])
