"""mmlib run on the command line: bad arguments are refused with one clear line before any notebook runs."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mmlib import cli
from tests.helpers import make_notebook, printed


def _notebook(path, body="print(datasets)"):
    return make_notebook(path, 'datasets = ["av-digits", "mfeat"]\nseeds = None', body)


_outputs = printed


def test_a_scalar_for_a_list_parameter_runs_as_a_list_of_one(tmp_path, capsys):
    nb = _notebook(tmp_path / "a.ipynb")
    assert cli.main(["run", str(nb), "--output-dir", str(tmp_path / "out"), "-p", "datasets", "mfeat"]) == 0
    assert "parameter 'datasets' is a list; using ['mfeat'] for 'mfeat'" in capsys.readouterr().err
    assert "['mfeat']" in _outputs(tmp_path / "out" / "a.ipynb")


def test_malformed_yaml_in_p_is_one_clear_line(tmp_path, capsys):
    nb = _notebook(tmp_path / "a.ipynb")
    assert cli.main(["run", str(nb), "--output-dir", str(tmp_path), "-p", "seeds", "[0, 1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmlib run: -p seeds: not valid YAML (") and "'[0, 1'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "soon"])
def test_timeout_must_be_a_positive_whole_number(tmp_path, capsys, value):
    nb = _notebook(tmp_path / "a.ipynb")
    assert cli.main(["run", str(nb), "--output-dir", str(tmp_path), "--timeout", value]) == 2
    assert f"argument --timeout: must be a positive whole number of seconds, got '{value}'" in capsys.readouterr().err


def test_a_cell_over_the_timeout_is_named_with_the_limit(tmp_path, capsys):
    nb = _notebook(tmp_path / "a.ipynb", body="import time\ntime.sleep(30)")
    assert cli.main(["run", str(nb), "--output-dir", str(tmp_path / "out"), "--timeout", "1",
                     "-p", "seeds", "[1]"]) == 1
    err = capsys.readouterr().err
    assert "a.ipynb failed: cell 2 of 2 (`import time`) exceeded the timeout of 1 s; raise --timeout" in err
    assert "-------------------" not in err


@pytest.mark.parametrize("name", ["notebooks", "a.md", "a.py"])
def test_a_directory_or_non_ipynb_file_is_refused_before_anything_runs(tmp_path, capsys, name):
    first = _notebook(tmp_path / "first.ipynb")
    bad = tmp_path / name
    bad.mkdir() if name == "notebooks" else bad.write_text("# a")
    assert cli.main(["run", str(first), str(bad), "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and ".ipynb" in err and ("is a directory" in err or "is not a notebook" in err)
    assert not (tmp_path / "out" / "first.ipynb").exists()  # the good notebook did not run either


def test_an_unknown_parameter_of_a_later_notebook_stops_the_run_before_the_first(tmp_path, capsys):
    first = _notebook(tmp_path / "first.ipynb")
    other = tmp_path / "other.ipynb"
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell("profile = 'default'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    nbformat.write(nb, other)
    assert cli.main(["run", str(first), str(other), "-p", "seeds", "[1]", "--output-dir", str(tmp_path / "o")]) == 1
    assert "unknown parameter(s) ['seeds']" in capsys.readouterr().err
    assert not (tmp_path / "o" / "first.ipynb").exists()


def test_an_unreadable_params_file_is_a_usage_error(tmp_path, capsys):
    nb = _notebook(tmp_path / "a.ipynb")
    (tmp_path / "p.yaml").write_text("seeds: [0, 1\n")
    assert cli.main(["run", str(nb), "--params", str(tmp_path / "p.yaml"), "--output-dir", str(tmp_path)]) == 2
    assert "mmlib run: cannot read parameter file" in capsys.readouterr().err
