"""Synthetic images: geometry, determinism, lesion means equal to the table, class signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from toy_data import toy_cohort

from features.errors import UserInputError
from features.synthetic.cohort import simulate_cohort
from features.synthetic.images import (
    DEFAULT_IMAGE_PARAMETERS,
    MANIFEST_COLUMNS,
    ImageParameters,
    oedema_mask_path,
    patient_folder,
    write_synthetic_images,
)


def _array(root, rel) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(root / rel)))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cohort = toy_cohort(12, seed=5)
    cohort.loc[0, "adc"] = np.nan  # "skip": no ADC map for this patient
    out = tmp_path_factory.mktemp("images")
    manifest = write_synthetic_images(cohort, out, seed=3)
    return cohort, out, manifest


def test_manifest_columns_and_relative_paths(written):
    cohort, out, manifest = written
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert manifest["patient_id"].tolist() == cohort["patient_id"].tolist()
    on_disk = pd.read_csv(out / "manifest.csv")
    assert on_disk["patient_id"].tolist() == manifest["patient_id"].tolist()
    for col in MANIFEST_COLUMNS[1:]:
        for rel in manifest[col].dropna():
            assert not rel.startswith("/")
            assert (out / rel).is_file()
    # the NaN adc was skipped, not drawn
    assert pd.isna(manifest.loc[0, "adc"])
    assert manifest["t1c"].notna().all() and manifest["mask"].notna().all()


def test_geometry_as_set(written):
    _, out, manifest = written
    p = DEFAULT_IMAGE_PARAMETERS
    row = manifest.iloc[1]
    for col in ("mask", "t1c", "flair", "adc", "rcbv"):
        img = sitk.ReadImage(str(out / row[col]))
        assert img.GetSize() == p.size_voxels
        assert np.allclose(img.GetSpacing(), p.spacing_mm)
        assert np.allclose(img.GetOrigin(), p.origin(), atol=1e-4)
        assert np.allclose(img.GetDirection(), p.direction)
    assert sitk.ReadImage(str(out / row["mask"])).GetPixelID() == sitk.sitkUInt8


def test_custom_geometry(tmp_path):
    c = 1 / np.sqrt(2)
    params = ImageParameters(size_voxels=(24, 20, 12), spacing_mm=(0.9, 0.9, 3.0),
                             origin_mm=(10.0, -20.0, 5.0),
                             direction=(c, -c, 0.0, c, c, 0.0, 0.0, 0.0, 1.0))
    manifest = write_synthetic_images(toy_cohort(2), tmp_path, params=params)
    img = sitk.ReadImage(str(tmp_path / manifest.loc[0, "flair"]))
    assert img.GetSize() == (24, 20, 12)
    assert np.allclose(img.GetSpacing(), (0.9, 0.9, 3.0))
    assert np.allclose(img.GetOrigin(), (10.0, -20.0, 5.0), atol=1e-4)
    assert np.allclose(img.GetDirection(), params.direction, atol=1e-6)


def test_mask_binary_and_not_empty(written):
    _, out, manifest = written
    for rel in manifest["mask"]:
        arr = _array(out, rel)
        assert set(np.unique(arr)) == {0, 1}
        assert arr.sum() >= DEFAULT_IMAGE_PARAMETERS.min_mask_voxels


def test_lesion_means_equal_table(written):
    cohort, out, manifest = written
    checked = 0
    for (_, row), (_, entry) in zip(cohort.iterrows(), manifest.iterrows(), strict=True):
        mask = _array(out, entry["mask"]) == 1
        for name in ("adc", "rcbv"):
            if pd.isna(row[name]):
                assert pd.isna(entry[name])
                continue
            values = _array(out, entry[name])[mask].astype(np.float64)
            assert values.mean() == pytest.approx(row[name], rel=1e-6)
            assert values.std() > 0  # textured, not a constant
            checked += 1
    assert checked >= 15


def test_deterministic(tmp_path, written):
    cohort, out, manifest = written
    again = write_synthetic_images(cohort.iloc[[1, 2]], tmp_path, seed=3)
    for col in ("mask", "t1c", "flair", "adc", "rcbv"):
        for i in (0, 1):
            if pd.isna(manifest.iloc[i + 1][col]):
                assert pd.isna(again.iloc[i][col])
                continue
            np.testing.assert_array_equal(_array(out, manifest.iloc[i + 1][col]),
                                          _array(tmp_path, again.iloc[i][col]))
    other = write_synthetic_images(cohort.iloc[[1]], tmp_path / "other", seed=4)
    assert not np.array_equal(_array(out, manifest.iloc[1]["t1c"]),
                              _array(tmp_path / "other", other.iloc[0]["t1c"]))


def test_parallel_equals_serial(tmp_path, written):
    cohort, out, manifest = written
    par = write_synthetic_images(cohort.iloc[:4], tmp_path, seed=3, jobs=2)
    for i in range(4):
        np.testing.assert_array_equal(_array(out, manifest.iloc[i]["flair"]),
                                      _array(tmp_path, par.iloc[i]["flair"]))


def test_draw_missing_and_class_differences(tmp_path):
    """Over a small cohort: ADC higher and oedema/enhancement ratio higher in PP."""
    cohort = toy_cohort(40, seed=11)
    cohort["adc"] = np.nan
    cohort["rcbv"] = np.nan
    params = ImageParameters(missing_map="draw")
    manifest = write_synthetic_images(cohort, tmp_path, seed=0, params=params)
    assert manifest[["adc", "rcbv"]].notna().all().all()
    rows = []
    for (_, row), (_, entry) in zip(cohort.iterrows(), manifest.iterrows(), strict=True):
        mask = _array(tmp_path, entry["mask"]) == 1
        oedema = sitk.GetArrayFromImage(sitk.ReadImage(
            str(oedema_mask_path(tmp_path, row["patient_id"])))) == 1
        assert not (oedema & mask).any()
        rows.append({"y": row["pseudoprogression"],
                     "adc": _array(tmp_path, entry["adc"])[mask].mean(),
                     "rcbv": _array(tmp_path, entry["rcbv"])[mask].mean(),
                     "ratio": oedema.sum() / mask.sum()})
    means = pd.DataFrame(rows).groupby("y").mean()
    assert means.loc[1, "adc"] > means.loc[0, "adc"]
    assert means.loc[1, "rcbv"] < means.loc[0, "rcbv"]
    assert means.loc[1, "ratio"] > means.loc[0, "ratio"]


def test_bad_cohort_raises(tmp_path):
    with pytest.raises(UserInputError, match="volume_change_pct"):
        write_synthetic_images(toy_cohort(2).drop(columns="volume_change_pct"), tmp_path)
    dup = toy_cohort(2)
    dup["patient_id"] = "same"
    with pytest.raises(UserInputError, match="duplicated"):
        write_synthetic_images(dup, tmp_path)
    with pytest.raises(UserInputError, match="missing_map"):
        ImageParameters(missing_map="zero")


def test_unsafe_ids_get_safe_folders():
    assert patient_folder("P001") == "P001"
    folder = patient_folder("../a b/c")
    assert "/" not in folder and not folder.startswith(".")
    assert patient_folder("a/b") != patient_folder("a_b")


def test_project_simulator_cohort(tmp_path):
    cohort = simulate_cohort(4, cohort="melanoma", seed=0)
    manifest = write_synthetic_images(cohort, tmp_path, seed=0)
    assert manifest["patient_id"].tolist() == cohort["patient_id"].tolist()
    for (_, row), (_, entry) in zip(cohort.iterrows(), manifest.iterrows(), strict=True):
        assert pd.isna(entry["adc"]) == pd.isna(row["adc"])
        if not pd.isna(row["adc"]):
            mask = _array(tmp_path, entry["mask"]) == 1
            assert _array(tmp_path, entry["adc"])[mask].astype(float).mean() == pytest.approx(
                row["adc"], rel=1e-6)
