"""Radiomic extraction at scale: the project's overhead over plain pyradiomics, 1 against 2
local worker processes, and a 2-worker Dask LocalCluster against 2 local workers.

Two image sizes, every patient with all four sequences (t1c, flair, adc, rcbv) and a mask,
written by features.synthetic.images from a simulated melanoma cohort:

- demo: the demo's images (40 x 40 x 24 voxels of 1 x 1 x 2 mm);
- clinical: 240 x 240 x 155 voxels of 1 mm (a whole brain field of view), a lesion of
  about 10,000 voxels; a handful of patients, since each takes seconds.

Per size, with the cache off and the settings of features/params/mri.yaml:

- plain: a loop calling pyradiomics' RadiomicsFeatureExtractor.execute(image, mask) on the
  same files with the same per-sequence settings (one extractor per sequence, built before
  the timing), one SimpleITK thread (as the project);
- project, jobs=1: features.extract.extract in this process (its checks, hashing, cache
  key, table assembly); overhead = project / plain - 1, in wall time and in this
  process's CPU time (the CPU figure holds when other programs share the cores); the
  overhead is given with the cache off and with a new, empty cache (every file hashed,
  every result written: the first run of a cached extraction);
- jobs=2: two local worker processes (joblib); "cold" starts them (joblib keeps them
  a few minutes, so only the first size's is truly cold), "warm" reuses them;
  speedup = project jobs=1 / jobs=2 warm;
- dask: a LocalCluster of two single-threaded worker processes on 127.0.0.1, started once;
  "cold" is its first batch (workers import pyradiomics), "warm" the second.

The warm runs (plain, project jobs=1, jobs=2, dask) take turns, ``--repeats`` rounds, and
the fastest run of each counts. The table is printed and written with the machine's core
count, load and package versions to ``benchmarks/results/extraction_scale.json``. Timings
depend on what else the machine is doing: the load average before and after is recorded.

    python benchmarks/extraction_scale.py                  # demo 12 patients, clinical 4
    python benchmarks/extraction_scale.py --clinical-n 0   # the demo size only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, run, write_result

TARGET_OVERHEAD = 0.05
TARGET_SPEEDUP = 1.8


def _image_parameters(size: str):
    """The ImageParameters of a size: ``demo`` (the project's default) or ``clinical``."""
    from features.synthetic.parameters import ImageParameters

    if size == "demo":
        return ImageParameters(missing_map="draw")
    # 1 mm isotropic whole-brain field of view; radius 14 mm gives about 10,000 enhancing
    # voxels once the necrotic core and bubbles are taken out
    return ImageParameters(size_voxels=(240, 240, 155), spacing_mm=(1.0, 1.0, 1.0),
                           baseline_radius_mm=14.0, baseline_radius_sd_mm=0.5,
                           max_radius_mm=18.0, missing_map="draw")


def write_cohort(size: str, n: int, folder: Path, seed: int, jobs: int) -> tuple[Path, dict]:
    """Write ``n`` patients' images of ``size`` under ``folder``; (manifest, description)."""
    import numpy as np
    import SimpleITK as sitk

    from features.synthetic import simulate_cohort
    from features.synthetic.images import write_synthetic_images

    cohort = simulate_cohort(n, cohort="melanoma", seed=seed)
    if size == "clinical":
        cohort["volume_change_pct"] = 0.0  # the lesion's size from the parameters alone
    p = _image_parameters(size)
    t0 = time.perf_counter()
    manifest = write_synthetic_images(cohort, folder, seed=seed, params=p, jobs=jobs)
    seconds = time.perf_counter() - t0
    lesion = [int(sitk.GetArrayFromImage(sitk.ReadImage(str(folder / m))).sum())
              for m in manifest["mask"]]
    return folder / "manifest.csv", {
        "patients": n, "voxels": list(p.size_voxels), "spacing_mm": list(p.spacing_mm),
        "sequences": ["t1c", "flair", "adc", "rcbv"],
        "lesion_voxels_median": int(np.median(lesion)),
        "lesion_voxels_range": [min(lesion), max(lesion)],
        "images_written_s": round(seconds, 2)}


def plain_extractors(manifest: Path, params: Path) -> dict:
    """One pyradiomics extractor per sequence column of ``manifest``, built once (as the
    project keeps its own between runs), with the project's per-sequence settings."""
    import warnings

    import pandas as pd
    from radiomics import featureextractor

    from features.extract import load_settings

    settings = load_settings(params)
    seqs = [c for c in pd.read_csv(manifest, nrows=0).columns if c not in ("patient_id", "mask")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {s: featureextractor.RadiomicsFeatureExtractor(settings.for_sequence(s))
                for s in seqs}


def plain_pyradiomics(manifest: Path, extractors: dict) -> dict[str, dict[str, float]]:
    """pyradiomics alone over the manifest: {patient: {<sequence>_<feature>: value}}."""
    import warnings

    import numpy as np
    import pandas as pd
    import radiomics
    import SimpleITK as sitk

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    radiomics.setVerbosity(60)
    threads = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    out: dict[str, dict[str, float]] = {}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for row in table.to_dict("records"):
                feats = {}
                mask = str(manifest.parent / row["mask"])
                for s, extractor in extractors.items():
                    if not row[s]:
                        continue
                    result = extractor.execute(str(manifest.parent / row[s]), mask)
                    feats.update({f"{s}_{k}": float(v) for k, v in result.items()
                                  if not k.startswith("diagnostics_")})
                out[row["patient_id"]] = feats
    finally:
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(threads)
    return out


def _timed(fn, cpu: list | None = None):
    """(wall seconds, fn()); appends this process's CPU seconds to ``cpu`` when given."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0, value


def _max_relative_difference(plain: dict, features) -> float:
    import numpy as np

    worst = 0.0
    for row in features.to_dict("records"):
        theirs = plain[row["patient_id"]]
        for name, value in row.items():
            if name == "patient_id":
                continue
            a, b = float(value), float(theirs[name])
            if np.isnan(a) and np.isnan(b):
                continue
            worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    return worst


def measure(size: str, n: int, seed: int, repeats: int, params: Path, jobs_images: int,
            log) -> dict:
    """Every timing of one size; returns its JSON record."""
    import pandas as pd
    from dask.distributed import LocalCluster

    from features.extract import extract

    record: dict = {"size": size}
    with tempfile.TemporaryDirectory(prefix=f"radiomics-scale-{size}-") as tmp:
        manifest, info = write_cohort(size, n, Path(tmp), seed, jobs_images)
        record.update(info)
        log(f"[{size}] {n} patients, {info['voxels']} voxels of {info['spacing_mm']} mm, "
            f"lesion median {info['lesion_voxels_median']} voxels; images written in "
            f"{info['images_written_s']:.0f} s")

        def project(**kw):
            return extract(manifest, params=params, use_cache=False, progress=False, **kw)

        fresh = iter(range(10**6))

        def project_with_cache():  # a new, empty cache folder: every file hashed, written
            return extract(manifest, params=params, progress=False, jobs=1,
                           cache_dir=Path(tmp) / f"cache{next(fresh)}")

        def check(result):
            pd.testing.assert_frame_equal(result.features, reference.features,
                                          check_exact=True)

        # cold runs: the first batch on fresh worker processes (they import pyradiomics)
        reference = project(jobs=1)
        assert reference.failures.empty, reference.failures
        runs = {}
        runs["jobs2_cold"], result = _timed(lambda: project(jobs=2))
        check(result)
        runs["dask_start"], cluster = _timed(lambda: LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
            processes=True))
        try:
            address = cluster.scheduler_address
            runs["dask2_cold"], result = _timed(lambda: project(scheduler=address))
            check(result)
            log(f"[{size}] cold: jobs=2 {runs['jobs2_cold']:.2f} s, dask 2 workers "
                f"{runs['dask2_cold']:.2f} s (cluster started in {runs['dask_start']:.2f} s)")
            # warm runs, interleaved so that a busy moment of the machine hits all alike
            warm = {"plain": [], "project_jobs1": [], "project_jobs1_new_cache": [],
                    "jobs2_warm": [], "dask2_warm": []}
            cpu = {"plain": [], "project_jobs1": [],  # in-process runs: CPU seconds too
                   "project_jobs1_new_cache": []}
            extractors = plain_extractors(manifest, params)
            plain = None
            for _ in range(repeats):
                seconds, plain = _timed(lambda: plain_pyradiomics(manifest, extractors),
                                        cpu["plain"])
                warm["plain"].append(seconds)
                for name, kw in (("project_jobs1", {"jobs": 1}), ("jobs2_warm", {"jobs": 2}),
                                 ("dask2_warm", {"scheduler": address})):
                    seconds, result = _timed(lambda kw=kw: project(**kw), cpu.get(name))
                    check(result)
                    warm[name].append(seconds)
                seconds, result = _timed(project_with_cache, cpu["project_jobs1_new_cache"])
                check(result)
                warm["project_jobs1_new_cache"].append(seconds)
                log(f"[{size}] " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in warm.items())
                    + f" (load {os.getloadavg()[0]:.1f})")
        finally:
            cluster.close()
        runs.update({k: min(v) for k, v in warm.items()})

    record["seconds"] = {k: round(v, 3) for k, v in runs.items()}
    record["seconds_all_repeats"] = {k: [round(x, 3) for x in v] for k, v in warm.items()}
    record["features_per_patient"] = int(reference.features.shape[1] - 1)
    record["max_relative_difference_vs_plain"] = _max_relative_difference(
        plain, reference.features)
    record["overhead"] = runs["project_jobs1"] / runs["plain"] - 1
    record["cpu_seconds"] = {k: round(min(v), 3) for k, v in cpu.items()}
    record["overhead_cpu"] = min(cpu["project_jobs1"]) / min(cpu["plain"]) - 1
    record["overhead_new_cache"] = runs["project_jobs1_new_cache"] / runs["plain"] - 1
    record["overhead_new_cache_cpu"] = (min(cpu["project_jobs1_new_cache"])
                                        / min(cpu["plain"]) - 1)
    record["speedup_2_workers_warm"] = runs["project_jobs1"] / runs["jobs2_warm"]
    record["dask_vs_local_2_workers_warm"] = runs["dask2_warm"] / runs["jobs2_warm"]
    record["seconds_per_patient"] = {k: round(v / n, 4) for k, v in runs.items()
                                     if k != "dask_start"}
    return record


def table(records: list[dict]) -> str:
    """The results as a Markdown table, one row per size."""
    head = ("| size | patients | plain s | project s | overhead (CPU) | with a new cache "
            "(CPU) | jobs=2 cold s | jobs=2 warm s | speedup 2 vs 1 | dask 2 cold s | "
            "dask 2 warm s | dask / jobs=2 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        s = r["seconds"]
        lines.append(
            f"| {r['size']} ({'x'.join(map(str, r['voxels']))}, lesion ~"
            f"{r['lesion_voxels_median']}) | {r['patients']} | {s['plain']:.2f} | "
            f"{s['project_jobs1']:.2f} | {100 * r['overhead']:+.1f}% "
            f"({100 * r['overhead_cpu']:+.1f}%) | {100 * r['overhead_new_cache']:+.1f}% "
            f"({100 * r['overhead_new_cache_cpu']:+.1f}%) | {s['jobs2_cold']:.2f} | "
            f"{s['jobs2_warm']:.2f} | {r['speedup_2_workers_warm']:.2f}x | "
            f"{s['dask2_cold']:.2f} | {s['dask2_warm']:.2f} | "
            f"{r['dask_vs_local_2_workers_warm']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-n", type=int, default=12, help="demo-size patients (12)")
    parser.add_argument("--clinical-n", type=int, default=4,
                        help="clinical-size patients (4; 0 skips the size)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating plain/project runs per size, fastest kept (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of cohort and images")
    parser.add_argument("--params", default=None, help="settings YAML (default: mri.yaml)")
    parser.add_argument("--out", default=str(RESULTS / "extraction_scale.json"),
                        help="JSON record (benchmarks/results/extraction_scale.json)")
    args = parser.parse_args(argv)

    from features.choices import DEFAULT_PARAMS

    params = Path(args.params) if args.params else DEFAULT_PARAMS

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    records = []
    for size, n in (("demo", args.demo_n), ("clinical", args.clinical_n)):
        if n > 0:
            records.append(measure(size, n, args.seed, args.repeats, params, jobs_images=2,
                                   log=log))
    load_after = os.getloadavg()
    targets = {
        "overhead_at_most_5pct": {r["size"]: r["overhead"] <= TARGET_OVERHEAD
                                  for r in records},
        "overhead_cpu_at_most_5pct": {r["size"]: r["overhead_cpu"] <= TARGET_OVERHEAD
                                      for r in records},
        "overhead_new_cache_at_most_5pct": {r["size"]: r["overhead_new_cache"]
                                            <= TARGET_OVERHEAD for r in records},
        "speedup_2_workers_at_least_1.8x": {r["size"]: r["speedup_2_workers_warm"]
                                            >= TARGET_SPEEDUP for r in records},
    }
    out = write_result("extraction_scale", {
        "load_average_1_5_15_before": [round(v, 2) for v in load_before],
        "load_average_1_5_15_after": [round(v, 2) for v in load_after],
        "settings": str(params), "sizes": records, "targets": targets}, args.out)
    print(table(records))
    print(f"\ncores: {os.cpu_count()}; load average before {load_before[0]:.1f}, after "
          f"{load_after[0]:.1f}")
    for name, by_size in targets.items():
        print(f"target {name}: " + ", ".join(
            f"{size} {'met' if ok else 'not met'}" for size, ok in by_size.items()))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
