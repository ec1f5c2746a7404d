"""Extraction on a dask.distributed cluster (loopback only): same result as the local run,
a lost worker costs only its patient, the cache resumes an interrupted run, Dask optional."""

from __future__ import annotations

import os
import sys

import distributed  # a development dependency: its absence fails, never skips
import pandas as pd
import pytest
from toy_data import toy_cohort

import features.extract as fx
from features.errors import UserInputError
from features.synthetic.images import write_synthetic_images
from features.synthetic.parameters import ImageParameters

BROKEN = "P0002"  # its t1c file is not an image


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    table = toy_cohort(5, seed=5)
    manifest = write_synthetic_images(table, root, seed=3,
                                      params=ImageParameters(size_voxels=(16, 16, 10)))
    broken = manifest.set_index("patient_id").loc[BROKEN, "t1c"]
    (root / broken).write_bytes(b"not an image")
    path = root / "manifest.csv"
    local = fx.extract(path, use_cache=False, progress=False)
    assert set(local.failures["patient_id"]) == {BROKEN}
    return {"root": root, "path": path, "manifest": manifest, "local": local}


@pytest.fixture(scope="module")
def cluster():
    import dask

    # one task per worker at a time, a patient retried once after its worker died
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
            processes=True, scheduler_kwargs={"allowed_failures": 1})
    try:
        yield cluster
    finally:
        cluster.close()


def _same(result, local):
    pd.testing.assert_frame_equal(result.features, local.features, check_exact=True)
    pd.testing.assert_frame_equal(result.failures, local.failures)
    assert result.n_patients == local.n_patients


def test_cluster_gives_the_local_result(cohort, cluster):
    result = fx.extract(cohort["path"], use_cache=False, progress=False,
                        scheduler=cluster.scheduler_address)
    _same(result, cohort["local"])


def test_interrupted_run_resumes_from_the_cache(cohort, cluster, tmp_path):
    cache = tmp_path / "cache"
    first = cohort["manifest"].iloc[:2]  # the run stopped after two patients
    fx.extract(first, base_dir=cohort["root"], cache_dir=cache, progress=False,
               scheduler=cluster.scheduler_address)
    done = len(list(cache.glob("*.json")))
    assert done > 0
    result = fx.extract(cohort["path"], cache_dir=cache, progress=False,
                        scheduler=cluster.scheduler_address)
    assert result.cache_hits == done
    _same(result, cohort["local"])


def _kill_worker_on(patient_id: str):
    """A worker plugin that ends its worker's process when it starts ``patient_id``."""

    class KillOn(distributed.WorkerPlugin):
        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "executing" and str(key).endswith(f"-{patient_id}"):
                os._exit(1)

    return KillOn()


def test_lost_worker_costs_only_its_patient(cohort, cluster, tmp_path):
    crash = cohort["manifest"].iloc[[0]].assign(patient_id="crash")
    manifest = pd.concat([cohort["manifest"], crash], ignore_index=True)
    with distributed.Client(cluster) as client:
        client.register_plugin(_kill_worker_on("crash"), name="kill-on-crash")
        try:
            result = fx.extract(manifest, base_dir=cohort["root"], use_cache=False,
                                progress=False, scheduler=cluster.scheduler_address)
        finally:
            client.unregister_worker_plugin("kill-on-crash")
    lost = result.failures[result.failures["patient_id"] == "crash"]
    assert lost["sequence"].tolist() == ["all"]
    assert "KilledWorker" in lost["reason"].iloc[0], lost["reason"].iloc[0]
    rest = result.failures[result.failures["patient_id"] != "crash"].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, cohort["local"].failures)
    pd.testing.assert_frame_equal(result.features, cohort["local"].features, check_exact=True)


def test_missing_dask_names_the_install(cohort, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(UserInputError, match=r"pip install '\.\[dask\]'"):
        fx.extract(cohort["path"], use_cache=False, progress=False, scheduler="local")


def test_unreachable_scheduler_is_a_user_error(cohort):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(UserInputError, match="cannot reach the Dask scheduler"):
        fx.extract(cohort["path"], use_cache=False, progress=False,
                   scheduler="tcp://127.0.0.1:9")


def test_cli_scheduler_local_starts_and_closes_a_cluster(cohort, tmp_path, capsys):
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out = tmp_path / "features.csv"
    status = fx.main(["--manifest", str(cohort["path"]), "--out", str(out), "--scheduler",
                      "local", "--jobs", "2", "--no-cache", "--quiet"])
    assert status == 1  # the broken case
    assert BROKEN in capsys.readouterr().out
    written = pd.read_csv(out, dtype={"patient_id": str})
    pd.testing.assert_frame_equal(written, cohort["local"].features, rtol=1e-12,
                                  check_dtype=False)
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, left


def test_cli_help_names_the_scheduler():
    helptext = fx._parser().format_help()
    assert "--scheduler" in helptext and "local" in helptext and ".[dask]" in helptext
