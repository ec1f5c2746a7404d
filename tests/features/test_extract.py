"""Extraction: good and broken cases, failure reasons, cache, naming, NRRD, command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from toy_data import toy_cohort

import features.extract as fx
from features.contract import is_radiomic
from features.errors import UserInputError
from features.synthetic.images import write_synthetic_images

REPO = Path(__file__).resolve().parents[2]
GOOD = ["good1", "good2", "good3"]
BROKEN = {  # patient -> (sequence, words the reason must contain)
    "missing_mask": ("mask", "file not found"),
    "corrupt_t1c": ("t1c", "cannot read"),
    "spacing": ("t1c", "spacing"),
    "size": ("t1c", "size"),
    "origin": ("t1c", "origin"),
    "empty": ("mask", "empty"),
    "two_labels": ("mask", "several labels"),
    "adc_units": ("adc", "bins"),
}
PARTIAL = {"corrupt_t1c": "adc", "adc_units": "t1c"}  # broken in one sequence only


def _rewrite(path: Path, fn) -> None:
    img = sitk.ReadImage(str(path))
    sitk.WriteImage(fn(img), str(path))


def _two_labels(mask: sitk.Image) -> sitk.Image:
    arr = sitk.GetArrayFromImage(mask)
    z = np.nonzero(arr)[0]
    arr[(arr == 1) & (np.arange(arr.shape[0])[:, None, None] > np.median(z))] = 2
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(mask)
    return out


def _shift_origin(img: sitk.Image) -> sitk.Image:
    img.SetOrigin(tuple(o + 5.0 for o in img.GetOrigin()))
    return img


def _respace(img: sitk.Image) -> sitk.Image:
    img.SetSpacing((1.0, 1.0, 3.0))
    return img


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    ids = GOOD + list(BROKEN)
    cohort = toy_cohort(len(ids), seed=2)
    cohort["patient_id"] = ids
    cohort["adc"] = cohort["adc"].fillna(1.1)
    cohort["rcbv"] = cohort["rcbv"].fillna(1.6)
    images = root / "images"
    manifest = write_synthetic_images(cohort, images, seed=1)[["patient_id", "mask", "t1c",
                                                                 "adc"]]
    manifest = manifest.set_index("patient_id")
    manifest.loc["missing_mask", "mask"] = "nowhere/mask.nii.gz"
    (images / manifest.loc["corrupt_t1c", "t1c"]).write_bytes(b"this is not an image")
    _rewrite(images / manifest.loc["spacing", "mask"], _respace)
    _rewrite(images / manifest.loc["size", "mask"], lambda m: m[:36, :, :])
    _rewrite(images / manifest.loc["origin", "mask"], _shift_origin)
    _rewrite(images / manifest.loc["empty", "mask"], lambda m: m * 0)
    _rewrite(images / manifest.loc["two_labels", "mask"], _two_labels)
    _rewrite(images / manifest.loc["adc_units", "adc"], lambda a: a * 1000.0)
    manifest = manifest.reset_index()
    path = images / "broken_manifest.csv"
    manifest.to_csv(path, index=False)
    cache = root / "cache"
    result = fx.extract(path, jobs=1, cache_dir=cache, progress=False)
    return {"root": root, "images": images, "manifest": manifest, "path": path,
            "cache": cache, "result": result}


def test_good_cases_extracted(data):
    feats = data["result"].features
    assert set(GOOD) <= set(feats["patient_id"])
    assert set(feats["patient_id"]) == set(GOOD) | set(PARTIAL)
    good = feats.set_index("patient_id").loc[GOOD]
    assert good.notna().all().all()
    # partial rows: the broken sequence is NaN, the other one is there
    row = feats.set_index("patient_id").loc["corrupt_t1c"]
    assert row.filter(like="t1c_").isna().all() and row.filter(like="adc_").notna().all()
    assert data["result"].n_patients == len(GOOD) + len(BROKEN)


def test_each_broken_case_named_with_its_reason(data):
    failures = data["result"].failures
    assert list(failures.columns) == ["patient_id", "sequence", "reason"]
    assert not set(GOOD) & set(failures["patient_id"])
    assert set(failures["patient_id"]) == set(BROKEN)
    for pid, (sequence, words) in BROKEN.items():
        rows = failures[(failures["patient_id"] == pid) & (failures["sequence"] == sequence)]
        assert len(rows), f"{pid}: no failure on {sequence}: {failures.to_dict('records')}"
        assert any(words in r for r in rows["reason"]), rows["reason"].tolist()
    spacing = failures[failures["patient_id"] == "spacing"]["reason"].iloc[0]
    assert "(1, 1, 3)" in spacing and "(1, 1, 2)" in spacing  # both values named
    labels = failures[failures["patient_id"] == "two_labels"]["reason"]
    assert len(labels) == 1  # the mask's problem once, not once per sequence


def test_column_names(data):
    cols = list(data["result"].features.columns)
    assert cols[0] == "patient_id"
    assert all(is_radiomic(c) for c in cols[1:])
    assert not [c for c in cols if "diagnostics" in c]
    assert "t1c_original_glcm_Contrast" in cols and "adc_original_firstorder_Mean" in cols
    assert {c.split("_")[0] for c in cols[1:]} == {"t1c", "adc"}
    # shape depends only on the mask: carried by t1c only (features/params/mri.yaml)
    assert any(c.startswith("t1c_original_shape_") for c in cols)
    assert not any(c.startswith("adc_original_shape_") for c in cols)


def test_cache_reused(data, monkeypatch):
    first = data["result"]
    present = first.features.drop(columns="patient_id").notna()
    n_sequences = sum(int(present.filter(like=f"{s}_").any(axis=1).sum())
                      for s in ("t1c", "adc"))
    cached = list(data["cache"].glob("*.json"))
    assert len(cached) == n_sequences == 2 * len(GOOD) + len(PARTIAL)

    def must_not_run(*args, **kwargs):
        raise AssertionError("pyradiomics called although the cache holds the result")

    monkeypatch.setattr(fx, "_run_pyradiomics", must_not_run)
    second = fx.extract(data["path"], jobs=1, cache_dir=data["cache"], progress=False)
    assert second.cache_hits == n_sequences
    pd.testing.assert_frame_equal(second.features, first.features)
    pd.testing.assert_frame_equal(second.failures, first.failures)
    assert len(list(data["cache"].glob("*.json"))) == n_sequences


def test_cache_entries_written_whole_and_stale_temporaries_removed_once(tmp_path,
                                                                        monkeypatch):
    """A cache entry is written atomically, with mode 0644; a killed run's temporary files
    are removed once per extraction (stale ones only), not searched for at every write."""
    import os
    import time

    from features.tables import STALE_TEMPORARY_S

    entry = tmp_path / "cache" / ("a" * 64 + ".json")
    fx._cache_write(entry, {"f": 1.5}, {"m": 1})
    assert fx._cache_read(entry) == ({"f": 1.5}, {"m": 1})
    assert entry.stat().st_mode & 0o777 == 0o644
    old, young = (tmp_path / "cache" / f".{entry.name}.{k}.tmp" for k in ("old", "young"))
    for t in (old, young):
        t.write_text("half")
    past = time.time() - STALE_TEMPORARY_S - 5
    os.utime(old, (past, past))
    assert fx.remove_stale_cache_temporaries(tmp_path / "cache") == 1
    assert not old.exists() and young.exists()
    assert [p.name for p in entry.parent.glob("*.json")] == [entry.name]
    monkeypatch.setattr(fx.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("full")))
    fx._cache_write(tmp_path / "cache" / ("b" * 64 + ".json"), {"f": 2.0}, {})
    assert sorted(p.name for p in entry.parent.iterdir()) == sorted([entry.name, young.name])


def test_cache_invalidated_by_file_change(data, tmp_path, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    row = data["manifest"].set_index("patient_id").loc["good1"]
    for col in ("mask", "t1c", "adc"):
        sitk.WriteImage(sitk.ReadImage(str(data["images"] / row[col])),
                        str(images / f"{col}.nrrd"))
    manifest = pd.DataFrame({"patient_id": ["good1"], "mask": ["mask.nrrd"],
                             "t1c": ["t1c.nrrd"], "adc": ["adc.nrrd"]})
    calls = []
    real = fx._run_pyradiomics

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fx, "_run_pyradiomics", counting)
    cache = tmp_path / "cache"
    fx.extract(manifest, base_dir=images, cache_dir=cache, progress=False)
    assert len(calls) == 2
    _rewrite(images / "adc.nrrd", lambda a: a * 1.01)
    fx.extract(manifest, base_dir=images, cache_dir=cache, progress=False)
    assert len(calls) == 3  # only the changed adc map was recomputed
    assert len(list(cache.glob("*.json"))) == 3


def test_nrrd_equals_nifti(data, tmp_path):
    images = tmp_path / "nrrd"
    images.mkdir()
    row = data["manifest"].set_index("patient_id").loc["good2"]
    for col in ("mask", "t1c", "adc"):
        sitk.WriteImage(sitk.ReadImage(str(data["images"] / row[col])),
                        str(images / f"{col}.nrrd"))
    manifest = pd.DataFrame({"patient_id": ["good2"], "mask": ["mask.nrrd"],
                             "t1c": ["t1c.nrrd"], "adc": [str(images / "adc.nrrd")]})
    result = fx.extract(manifest, base_dir=images, use_cache=False, progress=False)
    assert result.failures.empty
    nifti = data["result"].features.set_index("patient_id").loc[["good2"]].reset_index()
    pd.testing.assert_frame_equal(result.features, nifti, rtol=1e-9)


def test_quiet_without_progress(data, capfd):
    fx.extract(data["path"], cache_dir=data["cache"], progress=False)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_empty_cell_means_not_acquired(data):
    manifest = data["manifest"].set_index("patient_id").loc[["good1"]].reset_index()
    manifest.loc[0, "adc"] = ""
    result = fx.extract(manifest, base_dir=data["images"], cache_dir=data["cache"],
                        progress=False)
    assert result.failures.empty
    assert not any(c.startswith("adc_") for c in result.features.columns)


@pytest.mark.parametrize("change, words", [
    (lambda m: m.drop(columns="patient_id"), "no 'patient_id'"),
    (lambda m: m.drop(columns="mask"), "no 'mask'"),
    (lambda m: m[["patient_id", "mask"]], "no sequence column"),
    (lambda m: m.assign(patient_id="same"), "duplicated: same"),
    (lambda m: m.rename(columns={"t1c": "t1_c"}), "letters and digits"),
])
def test_manifest_problems_raise(data, change, words):
    with pytest.raises(UserInputError, match=words):
        fx.extract(change(data["manifest"]), base_dir=data["images"], progress=False)


def test_settings_per_sequence_and_checks(tmp_path):
    settings = fx.load_settings()
    assert settings.version
    assert settings.for_sequence("t1c")["setting"]["normalize"] is True
    assert settings.for_sequence("adc")["setting"]["normalize"] is False
    assert settings.for_sequence("rcbv")["setting"]["voxelArrayShift"] == 0
    assert "sequences" not in settings.for_sequence("flair")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsetting:\n  binWidth: -1\n")
    with pytest.raises(UserInputError, match="pyradiomics rejects"):
        fx.load_settings(bad)
    bad.write_text("version: 1\nsettings:\n  binWidth: 1\n")
    with pytest.raises(UserInputError, match="unknown key"):
        fx.load_settings(bad)


def test_check_geometry_direction():
    img = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    mask = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    assert fx.check_geometry(img, mask) is None
    mask.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
    assert "direction" in fx.check_geometry(img, mask, "flair")


def _cli(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "features.extract", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_exit_1_with_failures_listed(data, tmp_path):
    out, fails = tmp_path / "out" / "features.csv", tmp_path / "fails.csv"
    proc = _cli("--manifest", data["path"], "--out", out, "--failures", fails,
                "--no-cache", "--jobs", 2, "--quiet")
    assert proc.returncode == 1, proc.stderr
    for pid in BROKEN:
        assert pid in proc.stdout
    assert "Traceback" not in proc.stderr
    # two worker processes give the same table as the serial run
    written = pd.read_csv(out, dtype={"patient_id": str})
    serial = data["result"].features
    pd.testing.assert_frame_equal(written, serial, rtol=1e-9, check_dtype=False)
    assert set(pd.read_csv(fails)["patient_id"]) == set(BROKEN)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_cli_exit_2_on_manifest_without_patient_id(data, tmp_path):
    bad = tmp_path / "m.csv"
    data["manifest"].drop(columns="patient_id").to_csv(bad, index=False)
    proc = _cli("--manifest", bad, "--out", tmp_path / "f.csv")
    assert proc.returncode == 2
    assert "patient_id" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "f.csv").exists()


def test_cli_exit_0_and_help(data, tmp_path):
    good = tmp_path / "good.csv"
    m = data["manifest"]
    m[m["patient_id"].isin(GOOD)].to_csv(good, index=False)
    # relative paths now resolve against tmp_path: point them at the images
    m = pd.read_csv(good)
    for col in ("mask", "t1c", "adc"):
        m[col] = [str(data["images"] / p) for p in m[col]]
    m.to_csv(good, index=False)
    proc = _cli("--manifest", good, "--out", tmp_path / "f.csv", "--cache", data["cache"],
                "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "patients: 3, extracted: 3" in proc.stdout
    helptext = _cli("--help").stdout
    for option in ("--manifest", "--params", "--out", "--jobs", "--cache", "--no-cache",
                   "--failures", "--sequences", "--quiet", "Exit status"):
        assert option in helptext


# --------------------------------------------------------------------------------------
# masks on another grid: correctMask, per-sequence masks


def _coarse(img: sitk.Image, slice_mm: float = 4.0) -> sitk.Image:
    """``img`` resampled (linear) to ``slice_mm`` slices over the same physical extent."""
    spacing = img.GetSpacing()
    size = img.GetSize()
    new_size = (size[0], size[1], int(round(size[2] * spacing[2] / slice_mm)))
    # first voxel centre moves so that the volume's edges stay where they were
    shift = (slice_mm - spacing[2]) / 2
    origin = img.TransformContinuousIndexToPhysicalPoint((0, 0, shift / spacing[2]))
    return sitk.Resample(img, new_size, sitk.Transform(), sitk.sitkLinear, origin,
                         (spacing[0], spacing[1], slice_mm), img.GetDirection(), 0.0,
                         img.GetPixelID())


def _settings(tmp_path, correct: bool) -> Path:
    text = fx.DEFAULT_PARAMS.read_text()
    if correct:
        text = text.replace("\nsetting:\n", "\nsetting:\n  correctMask: true\n", 1)
    path = tmp_path / ("correct.yaml" if correct else "plain.yaml")
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def coarse(data, tmp_path_factory):
    """good1 with a flair map on 4 mm slices; the mask stays on the 2 mm t1c grid."""
    root = tmp_path_factory.mktemp("coarse")
    row = data["manifest"].set_index("patient_id").loc["good1"]
    t1c = sitk.ReadImage(str(data["images"] / row["t1c"]))
    mask = sitk.ReadImage(str(data["images"] / row["mask"]))
    flair = _coarse(t1c)
    sitk.WriteImage(t1c, str(root / "t1c.nii.gz"))
    sitk.WriteImage(mask, str(root / "mask.nii.gz"))
    sitk.WriteImage(flair, str(root / "flair.nii.gz"))
    nearest = sitk.Resample(mask, flair, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0,
                            mask.GetPixelID())
    sitk.WriteImage(nearest, str(root / "mask_flair.nii.gz"))
    far = sitk.Image(mask)
    far.SetOrigin(tuple(o + 80.0 for o in mask.GetOrigin()))
    sitk.WriteImage(far, str(root / "far_mask.nii.gz"))
    manifest = pd.DataFrame({"patient_id": ["good1"], "mask": ["mask.nii.gz"],
                             "t1c": ["t1c.nii.gz"], "flair": ["flair.nii.gz"]})
    return {"root": root, "manifest": manifest}


def test_mask_on_another_grid_names_the_setting(coarse, tmp_path):
    result = fx.extract(coarse["manifest"], params=_settings(tmp_path, False),
                        base_dir=coarse["root"], use_cache=False, progress=False)
    assert result.failures["sequence"].tolist() == ["flair"]
    reason = result.failures["reason"].iloc[0]
    assert "size" in reason and "correctMask: true" in reason and "params YAML" in reason
    assert any(c.startswith("t1c_") for c in result.features.columns)
    assert result.mask_resampled.empty


def test_correct_mask_resamples_by_nearest_neighbour(coarse, tmp_path):
    cache = tmp_path / "cache"
    result = fx.extract(coarse["manifest"], params=_settings(tmp_path, True),
                        base_dir=coarse["root"], cache_dir=cache, progress=False)
    assert result.failures.empty, result.failures
    assert result.mask_resampled[["patient_id", "sequence", "mask"]].values.tolist() == [
        ["good1", "flair", "mask"]]
    note = result.mask_resampled["reason"].iloc[0]
    assert "(40, 40, 24) voxels of (1, 1, 2) mm" in note
    assert "(40, 40, 12) voxels of (1, 1, 4) mm" in note
    assert "correctMask" in result.summary()
    # the same features as a mask resampled beforehand and given as mask_flair
    own = coarse["manifest"].assign(mask_flair="mask_flair.nii.gz")
    given = fx.extract(own, params=_settings(tmp_path, False), base_dir=coarse["root"],
                       use_cache=False, progress=False)
    assert given.failures.empty and given.mask_resampled.empty
    pd.testing.assert_frame_equal(given.features, result.features, rtol=1e-12)
    # from the cache: the same features and the same provenance
    again = fx.extract(coarse["manifest"], params=_settings(tmp_path, True),
                       base_dir=coarse["root"], cache_dir=cache, progress=False)
    assert again.cache_hits == 2
    pd.testing.assert_frame_equal(again.features, result.features)
    pd.testing.assert_frame_equal(again.mask_resampled, result.mask_resampled)


def test_correct_mask_refuses_a_lesion_outside_the_image(coarse, tmp_path):
    manifest = coarse["manifest"].assign(mask="far_mask.nii.gz")
    result = fx.extract(manifest, params=_settings(tmp_path, True), base_dir=coarse["root"],
                        use_cache=False, progress=False)
    assert set(result.failures["sequence"]) == {"t1c", "flair"}
    assert all("outside" in r for r in result.failures["reason"])


def test_per_sequence_mask_and_its_failures(coarse, tmp_path):
    manifest = coarse["manifest"].assign(mask_flair="nowhere.nii.gz")
    result = fx.extract(manifest, params=_settings(tmp_path, False), base_dir=coarse["root"],
                        use_cache=False, progress=False)
    assert result.failures[["sequence"]].values.ravel().tolist() == ["mask_flair"]
    assert "file not found" in result.failures["reason"].iloc[0]
    # an empty mask_flair cell falls back to the mask column
    manifest = coarse["manifest"].assign(mask_flair="", mask="")
    result = fx.extract(manifest, params=_settings(tmp_path, False), base_dir=coarse["root"],
                        use_cache=False, progress=False)
    assert result.failures.values.tolist() == [["good1", "mask", "no mask path in the manifest"]]


@pytest.mark.parametrize("columns, words", [
    ({"mask_dwi": "x"}, "mask_dwi name no sequence"),
    ({"series_uid_dwi": "1.2"}, "series_uid_dwi name no image or mask"),
])
def test_extra_columns_must_name_a_column(coarse, columns, words):
    with pytest.raises(UserInputError, match=words):
        fx.extract(coarse["manifest"].assign(**columns), base_dir=coarse["root"],
                   progress=False)
