# Two commands on a fresh machine:  make book  (set up and open the book)   make test  (run every test)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The exact torch build CI uses; readers elsewhere may override, e.g. make book TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: book install test unit notebooks lint execute site site-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[book,dev]"
	touch $@

install: $(VENV)/.installed

book: install
	$(BIN)/jupyter lab notebooks/

lint: install
	$(BIN)/ruff check .

unit: install
	$(BIN)/pytest -q tests

# Every chapter executed in smoke mode, two notebooks at a time (each notebook stays on one worker, and
# each worker's PyTorch gets one thread, so two workers share two cores without oversubscribing them).
notebooks: install
	OMP_NUM_THREADS=1 D2LMINI_SMOKE=1 $(BIN)/pytest -q -n 2 --dist loadfile --durations=15 \
		--nbval-lax --nbval-current-env notebooks/

test: lint unit notebooks site-test

# Re-execute chapters in reader mode and save their outputs: make execute NB=notebooks/03_training_loops.ipynb
NB ?= notebooks/*.ipynb
execute: install
	$(BIN)/python tools/execute.py $(NB)

# The book as a website in _build/html/ (Jupyter Book 1.x), built offline from the committed outputs: no
# notebook is executed. Chapters are whatever notebooks/NN_*.ipynb exist; the glossary comes from their tables.
SITE_DEPS := $(BIN)/python -c "import jupyter_book, selenium, mathjax" 2>/dev/null || $(BIN)/pip install --quiet -e ".[site]"
site: install
	@$(SITE_DEPS)
	$(BIN)/python tools/build_site.py

# Build the site and open every page in headless Chromium (Debian: apt-get install chromium chromium-driver).
# Skipped with the reason where chromium is missing; fails instead in CI (CI=true).
site-test: install
	@$(SITE_DEPS)
	D2LMINI_SITE_TEST=1 $(BIN)/pytest -q tests/site

clean:
	rm -rf $(VENV) _build
