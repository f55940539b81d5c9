# Two commands do everything on a fresh machine (see README.md):
#   make book   set up, execute every chapter in the `cpu` profile, render HTML to _build/html
#   make test   set up, run the unit tests and execute every notebook in the `smoke` profile, on the
#               offline source and then on the hub source against a hub-shaped fixture (`make test-hub`)
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv first on PATH, so notebook kernels run its Python.
export PATH := $(BIN):$(PATH)
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

# The hub path without the hub: tiny models, data sets and metrics under their hub names (tests/hub_fixture.py).
HUB_FIXTURE := $(CURDIR)/.hub-fixture
HUB_ENV := COMPANION_SOURCE=hub HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HF_HOME=$(HUB_FIXTURE)

.PHONY: setup book check-book test test-hub benchmark clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed
	$(BIN)/python -m companion fetch

# jupyter-cache keys a chapter on its code cells alone, so each state of what else decides its figures (the
# companion package, the pinned requirements, the profile and the source) gets a cache folder of its own:
# a second build with nothing changed executes nothing, a changed chapter re-executes that chapter only,
# and a changed companion re-executes every chapter. `--all` makes Sphinx re-read every page so that
# each one asks the cache (unchanged pages would otherwise not be looked at); the results page is
# executed on every build (notebook metadata `mystnb.execution_mode: force`).
BOOK_PROFILE = $(or $(COMPANION_PROFILE),cpu)
BOOK_KEY = $(BOOK_PROFILE)-$(or $(COMPANION_SOURCE),auto)-$(shell cat $$(find companion -name '*.py' -o -name '*.json' | \
	LC_ALL=C sort) requirements.txt pyproject.toml | sha256sum | cut -c1-16)

# Progress bars are for readers running a chapter; the built page shows none (tqdm, datasets, hub loads).
BOOK_QUIET = TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_PROGRESS_BARS=1

book: setup
	mkdir -p _build/jupyter_cache/$(BOOK_KEY)
	ln -sfn jupyter_cache/$(BOOK_KEY) _build/.jupyter_cache
	$(BIN)/python tools/book_cache.py prepare _build/.jupyter_cache $(BOOK_PROFILE)
	start=$$(date +%s); COMPANION_PROFILE=$(BOOK_PROFILE) $(BOOK_QUIET) $(BIN)/jupyter-book build --all --warningiserror \
		--keep-going .; status=$$?; $(BIN)/python tools/book_cache.py times _build/.jupyter_cache $$start; exit $$status

# A browser check of the rendered book (run `make book` first): every page of _toc.yml in headless Chromium
# (Debian's chromium + chromium-driver), full-page screenshots in _build/screenshots.
check-book: $(VENV)/.installed
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		{ echo "check-book needs Chromium: apt-get install chromium chromium-driver"; exit 2; }
	$(BIN)/python tools/check_book.py _build/html

test: setup
	COMPANION_PROFILE=smoke $(BIN)/python -m pytest tests book --nbmake --nbmake-timeout=1800 -p no:cacheprovider
	$(MAKE) test-hub

test-hub: setup
	$(BIN)/python tests/hub_fixture.py $(HUB_FIXTURE)
	$(HUB_ENV) COMPANION_PROFILE=smoke $(BIN)/python -m pytest tests/test_hub_fixture.py tests/test_hub_manifest.py \
		book --nbmake --nbmake-timeout=1800 -p no:cacheprovider

benchmark: setup
	$(BIN)/python benchmarks/padding.py
	$(BIN)/python benchmarks/prefix_cache.py
	$(BIN)/python benchmarks/flops.py

clean:
	rm -rf _build $(VENV) book/results $(HUB_FIXTURE)
