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

.PHONY: setup book book-zh i18n-pot i18n-update i18n-check check-book test test-hub benchmark clean

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
CODE_KEY = $(shell cat $$(find companion -name '*.py' -o -name '*.json' | LC_ALL=C sort) requirements.txt pyproject.toml \
	| sha256sum | cut -c1-16)
BOOK_KEY = $(BOOK_PROFILE)-$(or $(COMPANION_SOURCE),auto)-$(CODE_KEY)

# Progress bars are for readers running a chapter; the built page shows none (tqdm, datasets, hub loads).
BOOK_QUIET = TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_PROGRESS_BARS=1

book: setup
	mkdir -p _build/jupyter_cache/$(BOOK_KEY)
	ln -sfn jupyter_cache/$(BOOK_KEY) _build/.jupyter_cache
	$(BIN)/python tools/book_cache.py prepare _build/.jupyter_cache $(BOOK_PROFILE)
	start=$$(date +%s); COMPANION_PROFILE=$(BOOK_PROFILE) $(BOOK_QUIET) $(BIN)/jupyter-book build --all --warningiserror \
		--keep-going .; status=$$?; $(BIN)/python tools/book_cache.py times _build/.jupyter_cache $$start; exit $$status
	$(MAKE) book-zh

# The Chinese edition (tools/book_i18n.py): the English pages with the translations of
# book/locale/zh_CN/LC_MESSAGES/book/<page>.po, rendered from the English build's jupyter-cache (every
# chapter a cache hit: jupyter-cache hashes code cells only, and translation happens after the notebook is
# read; the results page, `execution_mode: force`, runs again, reading the same results files). It goes to
# _build/html/zh_CN beside the English edition; every page links to its twin in the other edition, and
# the site root lets the reader choose. It is built in a folder of its own first because myst-nb writes
# its jupyter_execute folder beside the output folder. jupyter-book's CLI cannot set `language`, so this
# build runs sphinx-build on the conf.py that `jupyter-book config sphinx` derives from _config.yml.
I18N_LANG := zh_CN
LOCALE := book/locale
POT := _build/i18n/_build/gettext

book-zh: setup
	$(BIN)/jupyter-book config sphinx . >/dev/null
	start=$$(date +%s); COMPANION_PROFILE=$(BOOK_PROFILE) $(BOOK_QUIET) PYTHONPATH=tools $(BIN)/sphinx-build -b html -E \
		-W --keep-going -D language=$(I18N_LANG) -D nb_execution_cache_path=$(CURDIR)/_build/.jupyter_cache \
		-d _build/$(I18N_LANG)/doctrees . _build/$(I18N_LANG)/html; status=$$?; \
		$(BIN)/python tools/book_cache.py times _build/.jupyter_cache $$start; \
		echo "Chinese edition: $$(( $$(date +%s) - start )) s"; exit $$status
	rm -rf _build/html/$(I18N_LANG) && cp -a _build/$(I18N_LANG)/html _build/html/$(I18N_LANG)
	cp tools/language_chooser.html _build/html/index.html

# The English messages, one .pot per page: a gettext build, which executes nothing (tools/book_i18n.py).
i18n-pot: $(VENV)/.installed
	rm -rf _build/i18n
	$(BIN)/jupyter-book build . --path-output _build/i18n --builder custom --custom-builder gettext \
		--warningiserror --quiet

# Translators: merge the English messages into the catalogues (new ones untranslated, changed ones fuzzy).
i18n-update: i18n-pot
	$(BIN)/python tools/book_i18n.py update $(POT) $(LOCALE) $(I18N_LANG)

# The drift check of `make test`: fails when a catalogue is out of date with the English source.
i18n-check: i18n-pot
	$(BIN)/python tools/book_i18n.py check $(POT) $(LOCALE) $(I18N_LANG)

# A browser check of the rendered book (run `make book` first): every page of _toc.yml in headless Chromium
# (Debian's chromium + chromium-driver), full-page screenshots in _build/screenshots.
check-book: $(VENV)/.installed
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		{ echo "check-book needs Chromium: apt-get install chromium chromium-driver"; exit 2; }
	$(BIN)/python tools/check_book.py _build/html

# The first pass (offline) runs each chapter as the smoke book on the offline source runs it (progress bars
# off, results in book/results) and stores each chapter that passed in that book's jupyter-cache
# (book/conftest.py): `COMPANION_PROFILE=smoke COMPANION_SOURCE=offline make book` then renders the chapters
# without running them a second time (CI's browser check).
test: setup i18n-check
	COMPANION_PROFILE=smoke $(BOOK_QUIET) BOOK_CACHE=$(CURDIR)/_build/jupyter_cache/smoke-offline-$(CODE_KEY) \
		$(BIN)/python -m pytest tests book --nbmake --nbmake-timeout=1800 -p no:cacheprovider
	$(MAKE) test-hub

test-hub: setup
	$(BIN)/python tests/hub_fixture.py $(HUB_FIXTURE)
	$(HUB_ENV) COMPANION_PROFILE=smoke $(BIN)/python -m pytest tests book --nbmake --nbmake-timeout=1800 \
		-p no:cacheprovider

benchmark: setup
	$(BIN)/python benchmarks/padding.py
	$(BIN)/python benchmarks/prefix_cache.py
	$(BIN)/python benchmarks/flops.py
	$(BIN)/python benchmarks/qlora_memory.py --shape minilm

clean:
	rm -rf _build $(VENV) book/results $(HUB_FIXTURE)
