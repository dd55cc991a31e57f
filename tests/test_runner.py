"""mmlib run: parameter checks, atomic in-place runs, clear errors."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell

from mmlib import cli
from tests.helpers import make_notebook, printed
from mmlib.runner import NotebookError, check_notebook, check_parameters, execute, execute_many, failed_cell, load_params


def _notebook(path, body="print(profile)", tagged=True):
    return make_notebook(path, body=body, tagged=tagged)


def test_unknown_parameter_is_an_error_before_running(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb")
    with pytest.raises(NotebookError, match=r"unknown parameter\(s\) \['epochs'\]; it declares \['profile', 'seeds'\]"):
        check_parameters(nb, {"epochs": 3})


def test_unchanged_parameters_are_not_injected(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb")
    assert check_parameters(nb, {"profile": "default", "seeds": [0]}) == {"seeds": [0]}
    report = execute(nb, tmp_path / "b.ipynb", {"profile": "default"})
    tags = [c.metadata.get("tags", []) for c in nbformat.read(report.output, as_version=4).cells]
    assert not any("injected-parameters" in t for t in tags)


def test_missing_parameters_cell_and_missing_notebook(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", tagged=False)
    with pytest.raises(NotebookError, match="no cell tagged 'parameters'"):
        check_parameters(nb, {})
    with pytest.raises(NotebookError, match="does not exist"):
        check_parameters(tmp_path / "missing.ipynb", {})


def test_param_file_errors(tmp_path):
    (tmp_path / "p.yaml").write_text("- a\n- b\n")
    with pytest.raises(NotebookError, match="must hold a mapping"):
        load_params(tmp_path / "p.yaml")
    with pytest.raises(NotebookError, match="cannot read parameter file"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "q.yaml").write_text("seeds: [1, 2]\n")
    assert load_params(tmp_path / "q.yaml") == {"seeds": [1, 2]}


def test_execute_injects_parameters(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb")
    report = execute(nb, tmp_path / "out" / "a.ipynb", {"profile": "quick"})
    out = nbformat.read(report.output, as_version=4)
    text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert "quick" in text and report.seconds > 0


def test_failed_inplace_run_keeps_the_stored_notebook(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", body="raise RuntimeError('boom')")
    before = nb.read_text()
    with pytest.raises(NotebookError, match="a.ipynb failed"):
        execute(nb, nb, {})
    assert nb.read_text() == before
    assert not list(tmp_path.glob(".a-*"))


def test_cli_run_and_errors(tmp_path, capsys):
    nb = _notebook(tmp_path / "a.ipynb")
    assert cli.main(["run", str(nb), "--output-dir", str(tmp_path / "out"), "-p", "seeds", "[1, 2]"]) == 0
    assert "1 notebook(s)" in capsys.readouterr().err
    b = _notebook(tmp_path / "b.ipynb")
    assert cli.main(["run", str(nb), str(b), "--output-dir", str(tmp_path / "par"), "--jobs", "2"]) == 0
    assert "2 notebook(s)" in capsys.readouterr().err and (tmp_path / "par" / "b.ipynb").exists()
    assert cli.main(["run", str(nb), "-p", "bogus", "1", "--output-dir", str(tmp_path)]) == 1
    assert "unknown parameter(s) ['bogus']" in capsys.readouterr().err
    assert cli.main(["run", str(nb)]) == 2
    assert "--inplace" in capsys.readouterr().err


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    datasets = next(line for line in out.splitlines() if line.startswith("datasets: "))
    assert {"av-digits", "av-mnist", "mfeat", "av-solo", "av-cocktail"} <= set(datasets[len("datasets: "):].split(", "))
    assert "joint-uni" in out and "profiles: quick, default, paper" in out


def test_execute_many_runs_notebooks_in_parallel_kernels(tmp_path):
    a = _notebook(tmp_path / "a.ipynb", body="import os; print(os.getpid(), profile)")
    b = _notebook(tmp_path / "b.ipynb", body="import os; print(os.getpid(), profile)")
    jobs = [(a, tmp_path / "out" / "a.ipynb"), (b, tmp_path / "out" / "b.ipynb")]
    reports = list(execute_many(jobs, {"profile": "quick"}, workers=2))
    assert sorted(r.output.name for r in reports) == ["a.ipynb", "b.ipynb"]
    texts = [printed(r.output) for r in reports]
    assert all("quick" in text for text in texts)
    assert len({text.split()[0] for text in texts}) == 2  # two kernels


def test_execute_many_checks_every_notebook_before_running_any(tmp_path):
    good = _notebook(tmp_path / "a.ipynb")
    bad = _notebook(tmp_path / "b.ipynb", tagged=False)
    with pytest.raises(NotebookError, match="no cell tagged 'parameters'"):
        list(execute_many([(good, tmp_path / "out" / "a.ipynb"), (bad, tmp_path / "out" / "b.ipynb")], {},
                          workers=2))
    assert not (tmp_path / "out" / "a.ipynb").exists()
    with pytest.raises(NotebookError, match="jobs must be a whole number >= 1"):
        list(execute_many([(good, tmp_path / "x.ipynb")], {}, workers=0))


def test_kernels_run_with_portable_numerics(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", body="import os; print(os.environ.get('GLIBC_TUNABLES'), "
                                              "os.environ.get('ATEN_CPU_CAPABILITY'))")
    report = execute(nb, tmp_path / "out.ipynb", {})
    text = printed(report.output)
    assert "glibc.cpu.hwcaps=" in text and "default" in text


# --- notebooks, list parameters and failure messages ---------------------------------------------

def _list_notebook(path, body="print(datasets, overrides)"):
    return make_notebook(path, 'datasets = ["av-digits", "mfeat"]\noverrides = {}', body)


def test_a_directory_or_a_non_ipynb_file_is_not_a_notebook(tmp_path):
    _notebook(tmp_path / "a.ipynb")
    with pytest.raises(NotebookError, match=rf"'{tmp_path}' is a directory; a \.ipynb notebook file is expected "
                                            rf"\(it holds a\.ipynb\)"):
        check_notebook(tmp_path)
    (tmp_path / "a.md").write_text("# a")
    with pytest.raises(NotebookError, match=r"a\.md' is not a notebook: a \.ipynb file is expected; "
                                            r"did you mean '.*a\.ipynb'\?"):
        check_parameters(tmp_path / "a.md", {})
    with pytest.raises(NotebookError, match=r"b\.md' is not a notebook: a \.ipynb file is expected$"):
        check_notebook(tmp_path / "b.md")
    assert check_notebook(tmp_path / "a.ipynb") == tmp_path / "a.ipynb"


def test_a_string_for_a_list_parameter_becomes_a_list_of_one_with_a_note(tmp_path, capsys):
    nb = _list_notebook(tmp_path / "a.ipynb")
    assert check_parameters(nb, {"datasets": "mfeat"}) == {"datasets": ["mfeat"]}
    assert "note: " in capsys.readouterr().err
    assert check_parameters(nb, {"datasets": ["mfeat"]}) == {"datasets": ["mfeat"]}
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("params,match", [
    ({"datasets": 3}, r"parameter 'datasets' must be a list like its default \['av-digits', 'mfeat'\], got 3; "
                      r"e.g. -p datasets '\[3\]'"),
    ({"overrides": [1]}, r"parameter 'overrides' must be a mapping like its default \{\}, got \[1\]; "
                         r"e.g. -p overrides '\{name: value\}'"),
])
def test_a_value_of_the_wrong_shape_for_a_list_or_mapping_parameter_is_an_error(tmp_path, params, match):
    with pytest.raises(NotebookError, match=match):
        check_parameters(_list_notebook(tmp_path / "a.ipynb"), params)


def test_a_failed_cell_is_named_by_its_place_in_the_source_notebook(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", body="x = 1\nraise ValueError('bad value')")
    with pytest.raises(NotebookError, match=r"a\.ipynb failed in cell 2 of 2 \(`x = 1`\): ValueError: bad value$"):
        execute(nb, tmp_path / "out.ipynb", {"profile": "quick"})  # papermill adds a parameters cell


def test_failed_cell_of_a_timeout_is_the_last_cell_that_started(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", body="import time\ntime.sleep(60)")
    executed = nbformat.read(nb, as_version=4)
    injected = new_code_cell('profile = "quick"')
    injected.metadata["tags"] = ["injected-parameters"]
    executed.cells.insert(1, injected)
    for cell in executed.cells:
        cell.metadata["papermill"] = {"start_time": "2025-01-01T00:00:00"}
    nbformat.write(executed, tmp_path / "executed.ipynb")
    assert failed_cell(tmp_path / "executed.ipynb", None) == "cell 2 of 2 (`import time`)"
    assert failed_cell(tmp_path / "executed.ipynb", 1) == "the injected parameters cell"
    assert failed_cell(tmp_path / "missing.ipynb", None) == ""


def test_a_corrupt_notebook_file_is_one_clear_error(tmp_path):
    (tmp_path / "a.ipynb").write_text("{not json")
    with pytest.raises(NotebookError, match=r"cannot read notebook '.*a\.ipynb': .*is it a Jupyter notebook"):
        check_parameters(tmp_path / "a.ipynb", {})
