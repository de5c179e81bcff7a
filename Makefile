# Two commands on a fresh machine:  make book  (set up and open the book)   make test  (run every test)
PYTHON ?= python3
VENV ?= .venv
# Windows (make from Git for Windows, MSYS2 or Chocolatey): the venv keeps its programs in Scripts\.
ifeq ($(OS),Windows_NT)
BIN := $(VENV)/Scripts
EXE := .exe
else
BIN := $(VENV)/bin
EXE :=
endif
# Every package is installed at the version CI tests (constraints.txt). TORCH_SPEC names what to install
# for PyTorch; another build for your GPU, e.g.:
#   make book TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu126"
# (a different torch *version* also needs CONSTRAINTS= to install without the pins).
TORCH_SPEC ?= torch torchvision
CONSTRAINTS ?= constraints.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
# make book as root (many containers): JupyterLab refuses unless told; make book ALLOW_ROOT=1 passes it.
ALLOW_ROOT ?=

.PHONY: book install test unit notebooks lint execute site site-test clean FORCE

$(BIN)/python$(EXE):
	$(PYTHON) -m venv $(VENV)

# Rewritten only when the value changes, so that a new TORCH_SPEC / CONSTRAINTS reinstalls.
$(VENV)/.install-spec: FORCE | $(BIN)/python$(EXE)
	@echo 'TORCH_SPEC=$(TORCH_SPEC) CONSTRAINTS=$(CONSTRAINTS)' | cmp -s - $@ || \
		echo 'TORCH_SPEC=$(TORCH_SPEC) CONSTRAINTS=$(CONSTRAINTS)' > $@

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(VENV)/.install-spec | $(BIN)/python$(EXE)
	$(BIN)/python$(EXE) -m pip install --quiet $(PIP_C) --upgrade pip
	$(BIN)/python$(EXE) -m pip install --quiet $(PIP_C) $(TORCH_SPEC)
	$(BIN)/python$(EXE) -m pip install --quiet $(PIP_C) -e ".[book,dev]"
	touch $@

install: $(VENV)/.installed

book: install
	@if [ -z "$(ALLOW_ROOT)" ] && [ "$$(id -u 2>/dev/null)" = "0" ]; then \
		echo "make book: you are root, and JupyterLab will not run as root; run it as a normal user, or in a container: make book ALLOW_ROOT=1"; \
		exit 0; \
	fi; \
	$(BIN)/jupyter$(EXE) lab $(if $(ALLOW_ROOT),--allow-root,) notebooks/

lint: install
	$(BIN)/ruff$(EXE) check .

unit: install
	$(BIN)/pytest$(EXE) -q -n 2 tests

# Every chapter and its solutions executed in smoke mode, two notebooks at a time (each notebook stays on one
# worker, and each worker's PyTorch gets one thread, so two workers share two cores without oversubscribing
# them). Of the Chinese edition one chapter runs, from notebooks/zh/ (Chinese messages, its own folder): the
# others have byte-identical code (the drift check in `make unit` proves it) and no relative paths (the
# house rules), so running all of them again would double this step and test nothing new.
ZH_SMOKE ?= notebooks/zh/03_training_loops.ipynb
notebooks: install
	OMP_NUM_THREADS=1 D2LMINI_SMOKE=1 $(BIN)/pytest$(EXE) -q -n 2 --dist loadfile --durations=15 \
		--nbval-lax --nbval-current-env $(wildcard notebooks/[0-9][0-9]_*.ipynb) $(ZH_SMOKE) solutions/

test: lint unit notebooks site-test

# Re-execute chapters in reader mode and save their outputs: make execute NB=notebooks/03_training_loops.ipynb
NB ?= notebooks/*.ipynb
execute: install
	$(BIN)/python$(EXE) tools/execute.py $(NB)

# The book as a website in _build/html/ (Jupyter Book 1.x), built offline from the committed outputs: no
# notebook is executed. Chapters are whatever notebooks/NN_*.ipynb exist; the glossary comes from their tables.
SITE_DEPS := $(BIN)/python$(EXE) -c "import jupyter_book, selenium, mathjax" 2>/dev/null || \
	$(BIN)/python$(EXE) -m pip install --quiet $(PIP_C) -e ".[site]"
site: install
	@$(SITE_DEPS)
	$(BIN)/python$(EXE) tools/build_site.py

# Build the site and open every page in headless Chromium (Debian: apt-get install chromium chromium-driver).
# Skipped with the reason where chromium is missing; fails instead in CI (CI=true). Two workers: the website's
# tests stay together on one (one build, one server); the JupyterLab chapters are shared out between both,
# each worker with its own JupyterLab and browser. Their kernels use one thread each, so two share two cores.
site-test: install
	@$(SITE_DEPS)
	D2LMINI_SITE_TEST=1 $(BIN)/pytest$(EXE) -q -n 2 --dist loadgroup tests/site

clean:
	rm -rf $(VENV) _build
