"""The walkthrough notebook: stored without outputs, and runs from start to end on a small
cohort in this interpreter's environment, writing only into its output folder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ipykernel  # noqa: F401  (development dependencies: their absence fails, never skips)
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
STRIP = ROOT / "notebooks" / "strip_outputs.py"
SMALL = "N = 800\nSEED = 0\nOUTPUT = {output!r}\nFIDELITY_N = 20_000\n"
#: Names the notebook writes into OUTPUT; none may appear in the repository.
WRITTEN = ("model.skops", "my_cohort.csv", "report", "report.html", "metrics.md")


def _parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def _text(cell) -> str:
    """Everything a code cell showed as text (streams, plain and markdown results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts += [out.data.get("text/plain", ""), out.data.get("text/markdown", "")]
    return "\n".join(parts)


def _cell(nb, snippet: str):
    """The one code cell whose source contains ``snippet``."""
    found = [c for c in nb.cells if c.cell_type == "code" and snippet in c.source]
    assert len(found) == 1, f"expected one code cell containing {snippet!r}, got {len(found)}"
    return found[0]


def _repo_entries() -> set[Path]:
    return {p for name in WRITTEN for p in (ROOT / name, ROOT / "notebooks" / name)
            if p.exists()}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook run with small parameters; returns (notebook, output folder)."""
    tmp = tmp_path_factory.mktemp("walkthrough")
    # A python3 kernelspec that runs this very interpreter, found before any other.
    spec = tmp / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)", "language": "python"}))
    output = tmp / "output"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    _parameters_cell(nb).source = SMALL.format(output=str(output))
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    before = _repo_entries()
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
    # One OpenMP thread: gradient boosting's thread pool slows to a crawl on busy cores.
    patch.setenv("OMP_NUM_THREADS", "1")
    try:
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        patch.undo()
    assert _repo_entries() == before, "the notebook wrote into the repository"
    return nb, output


def test_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert not any("execution" in c.metadata for c in code)
    params = _parameters_cell(nb)
    assert re.search(r"^N = \d", params.source, re.M)
    assert re.search(r"^OUTPUT = None", params.source, re.M)


def test_strip_outputs_leaves_stored_notebook_unchanged_and_clears_a_run(executed, tmp_path):
    copy = tmp_path / "stored.ipynb"
    shutil.copy(NOTEBOOK, copy)
    run = subprocess.run([sys.executable, str(STRIP), str(copy)], capture_output=True,
                         text=True, check=True)
    assert "already clean" in run.stdout
    assert copy.read_bytes() == NOTEBOOK.read_bytes()

    ran = tmp_path / "ran.ipynb"
    nbformat.write(executed[0], ran)
    subprocess.run([sys.executable, str(STRIP), str(ran)], check=True, capture_output=True)
    cleared = nbformat.read(ran, as_version=4)
    assert all(c.outputs == [] and c.execution_count is None
               for c in cleared.cells if c.cell_type == "code")


def test_runs_in_this_interpreter(executed):
    nb, _ = executed
    assert _text(nb.cells[-1]).strip() == sys.executable


def test_simulation_and_fidelity(executed):
    nb, _ = executed
    assert "800 patients" in _text(_cell(nb, "cohort = simulate_cohort(N"))
    assert sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs) >= 2 + 6
    fidelity = _text(_cell(nb, "fidelity_table(n=FIDELITY_N"))
    assert re.search(r"\d+ of \d+ quantities within their target", fidelity)
    assert "| figure_id | quantity |" in fidelity


def test_benchmark_and_ceiling(executed):
    nb, _ = executed
    bench = _text(_cell(nb, "print(format_benchmark_table(metrics))"))
    assert "sensitivity (95% CI)" in bench and "PPV (95% CI)" in bench
    assert "D1_perfusion_diffusion" in bench and "Q1_four_part" in bench
    ceiling = _text(_cell(nb, 'metrics["bayes_ceiling"]'))
    model_auc = float(re.search(r"model AUC\s+([0-9.]+)", ceiling).group(1))
    bayes_auc = float(re.search(r"Bayes ceiling\s+([0-9.]+)", ceiling).group(1))
    assert 0.7 < model_auc <= 1 and 0.7 < bayes_auc <= 1
    assert "model PPV" in _text(_cell(nb, "model_at_rule_sensitivity"))


def test_report_figures_written_and_shown(executed):
    nb, output = executed
    shown = _cell(nb, "display(Image(")
    report = output / "report"
    written = sorted(p.name for p in report.glob("*.png"))
    assert {"roc.png", "calibration.png"} <= set(written) and len(written) >= 6
    assert sum("image/png" in o.get("data", {}) for o in shown.outputs) == len(written)
    assert (report / "metrics.md").is_file() and (report / "metrics.json").is_file()
    assert (report / "report.html").is_file()


def test_predictions_and_saved_model(executed):
    nb, output = executed
    table = _text(_cell(nb, "predictions = predict_table("))
    for column in ("p_pseudoprogression", "prediction", "risk_group", "rule_Q1_four_part"):
        assert column in table
    assert "the same probabilities: True" in _text(_cell(nb, "save_model("))
    assert (output / "model.skops").is_file()


def test_own_table(executed):
    nb, output = executed
    assert (output / "my_cohort.csv").is_file()
    text = _text(_cell(nb, "own_result = train("))
    assert "scanner_site" in text
    assert "il8_pg_ml" not in text.split("features used:")[1].split("\n")[0]
    # D4 reads IL-8, which this table lacks: not benchmarked (no row of n = 0); the others are
    assert not re.search(r"^D4_cytokines\s", text, re.M)
    assert re.search(r"^D1_perfusion_diffusion\s+\d+", text, re.M)
    assert "sensitivity (95% CI)" in text
