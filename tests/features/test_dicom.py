"""DICOM series folders as manifest cells: one series, several series, choosing one, cache."""

from __future__ import annotations

import locale
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from toy_data import toy_cohort

import features.extract as fx
from features.synthetic.images import write_synthetic_images
from features.synthetic.parameters import ImageParameters

UID_A = "1.2.826.0.1.3680043.8.498.10001"
UID_B = "1.2.826.0.1.3680043.8.498.10002"
STUDY = "1.2.826.0.1.3680043.8.498.10000"
#: small settings: shape needs no image, firstorder and glcm see every voxel value
SETTINGS = """
version: "test-dicom"
setting:
  label: 1
  binWidth: 10
  resampledPixelSpacing: [1.0, 1.0, 1.0]
  interpolator: sitkBSpline
  preCrop: true
imageType:
  Original: {}
featureClass:
  firstorder: []
  glcm: []
"""


def write_dicom_series(image: sitk.Image, folder: Path, series_uid: str,
                       description: str) -> None:
    """Write an integer 3D ``image`` as one DICOM file per slice (axial, in index order).

    GDCM's writer leaves the process's C locale changed (LC_CTYPE "C": text files then read
    as ASCII); the locale is put back afterwards.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_slices(image, folder, series_uid, description)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_slices(image: sitk.Image, folder: Path, series_uid: str, description: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    d = image.GetDirection()
    orientation = (d[0], d[3], d[6], d[1], d[4], d[7])  # row and column direction cosines
    spacing = image.GetSpacing()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_ = image[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0008|103e": description,
            "0020|000d": STUDY,
            "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint(
                (0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in orientation),
            "0018|0050": f"{spacing[2]:g}",
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
        }
        for tag, value in tags.items():
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid[-5:]}_{k:03d}.dcm"))
        writer.Execute(slice_)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    cohort = toy_cohort(1, seed=4)
    cohort["adc"] = 1.1
    cohort["rcbv"] = 1.6
    write_synthetic_images(cohort, root / "nifti", seed=2,
                           params=ImageParameters(size_voxels=(16, 16, 10)))
    pid = cohort["patient_id"].iloc[0]
    t1c = sitk.ReadImage(str(root / "nifti" / pid / "t1c.nii.gz"))
    volume = sitk.Cast(sitk.Round(t1c), sitk.sitkInt16)  # DICOM holds integers
    other = sitk.Cast(sitk.Round(t1c * 0.5 + 40), sitk.sitkInt16)
    mask = sitk.ReadImage(str(root / "nifti" / pid / "mask.nii.gz"))
    sitk.WriteImage(volume, str(root / "t1c.nii.gz"))
    sitk.WriteImage(other, str(root / "other.nii.gz"))
    sitk.WriteImage(mask, str(root / "mask.nii.gz"))
    write_dicom_series(volume, root / "one", UID_A, "T1 post contrast")
    write_dicom_series(volume, root / "two", UID_A, "T1 post contrast")
    write_dicom_series(other, root / "two", UID_B, "T1 other")
    write_dicom_series(mask, root / "mask_dicom", UID_B + ".9", "lesion mask")
    (root / "empty").mkdir()
    params = root / "settings.yaml"
    params.write_text(SETTINGS)
    nifti = fx.extract(pd.DataFrame({"patient_id": ["p"], "mask": ["mask.nii.gz"],
                                     "t1c": ["t1c.nii.gz"]}),
                       params=params, base_dir=root, use_cache=False, progress=False)
    assert nifti.failures.empty, nifti.failures
    return {"root": root, "params": params, "nifti": nifti}


def _extract(data, cache=None, **columns):
    manifest = pd.DataFrame({"patient_id": ["p"], "mask": ["mask.nii.gz"], **columns})
    return fx.extract(manifest, params=data["params"], base_dir=data["root"],
                      cache_dir=cache, use_cache=cache is not None, progress=False)


def test_series_folder_equals_nifti(data):
    result = _extract(data, t1c=["one"])
    assert result.failures.empty, result.failures
    pd.testing.assert_frame_equal(result.features, data["nifti"].features, rtol=1e-6)
    assert result.series.to_dict("records") == [
        {"patient_id": "p", "column": "t1c", "series_uid": UID_A, "files": 10}]


def test_mask_as_series_folder(data):
    result = _extract(data, t1c=["one"], mask=["mask_dicom"])
    assert result.failures.empty, result.failures
    pd.testing.assert_frame_equal(result.features, data["nifti"].features, rtol=1e-6)
    assert set(result.series["column"]) == {"mask", "t1c"}


def test_folder_with_two_series_is_a_failure_listing_them(data):
    result = _extract(data, t1c=["two"])
    assert result.features.empty
    (reason,) = result.failures["reason"]
    assert result.failures["sequence"].tolist() == ["t1c"]
    for words in ("2 DICOM series", UID_A, UID_B, "10 files", "'T1 post contrast'",
                  "'T1 other'", "series_uid_t1c"):
        assert words in reason, reason


@pytest.mark.parametrize("column", ["series_uid_t1c", "series_uid"])
def test_series_uid_column_picks_one(data, column):
    result = _extract(data, t1c=["two"], **{column: [UID_A]})
    assert result.failures.empty, result.failures
    pd.testing.assert_frame_equal(result.features, data["nifti"].features, rtol=1e-6)
    other = _extract(data, t1c=["two"], **{column: [UID_B]})
    assert other.failures.empty
    assert other.series["series_uid"].tolist() == [UID_B]
    assert not np.allclose(other.features.iloc[0, 1:].astype(float),
                           result.features.iloc[0, 1:].astype(float))


def test_row_series_uid_leaves_single_series_folders_alone(data):
    result = _extract(data, t1c=["two"], mask=["mask_dicom"], series_uid=[UID_A])
    assert result.failures.empty, result.failures
    pd.testing.assert_frame_equal(result.features, data["nifti"].features, rtol=1e-6)
    assert result.series["series_uid"].tolist() == [UID_B + ".9", UID_A]  # mask, t1c


def test_unknown_series_uid_lists_the_folder(data):
    result = _extract(data, t1c=["two"], series_uid_t1c=["1.2.3"])
    (reason,) = result.failures["reason"]
    assert "no DICOM series 1.2.3" in reason and UID_A in reason and UID_B in reason


def test_folder_without_dicom_and_uid_on_a_file(data):
    result = _extract(data, t1c=["empty"])
    assert "no DICOM series" in result.failures["reason"].iloc[0]
    result = _extract(data, t1c=["t1c.nii.gz"], series_uid_t1c=[UID_A])
    assert "is a file" in result.failures["reason"].iloc[0]


def test_cache_keeps_series_apart(data, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first_a = _extract(data, cache, t1c=["two"], series_uid_t1c=[UID_A])
    first_b = _extract(data, cache, t1c=["two"], series_uid_t1c=[UID_B])
    assert len(list(cache.glob("*.json"))) == 2

    def must_not_run(*args, **kwargs):
        raise AssertionError("pyradiomics called although the cache holds the result")

    monkeypatch.setattr(fx, "_run_pyradiomics", must_not_run)
    again_a = _extract(data, cache, t1c=["two"], series_uid_t1c=[UID_A])
    again_b = _extract(data, cache, t1c=["two"], series_uid_t1c=[UID_B])
    assert again_a.cache_hits == again_b.cache_hits == 1
    pd.testing.assert_frame_equal(again_a.features, first_a.features)
    pd.testing.assert_frame_equal(again_b.features, first_b.features)


def test_changed_slice_invalidates_the_cache(data, tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(data["root"] / "one", folder)
    cache = tmp_path / "cache"
    _extract(data, cache, t1c=[str(folder)])
    volume = sitk.ReadImage(str(data["root"] / "t1c.nii.gz"))
    volume[8, 8, 4] = volume[8, 8, 4] + 7  # one voxel of one slice file
    write_dicom_series(volume, folder, UID_A, "T1 post contrast")
    second = _extract(data, cache, t1c=[str(folder)])
    assert second.cache_hits == 0 and second.failures.empty
    assert len(list(cache.glob("*.json"))) == 2
