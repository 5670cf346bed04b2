# The two entry points of the README. Each sets up .venv on first use, then runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: app test lab bench clean

app: $(VENV)/.app-installed          ## run the app on the bundled champion
	$(BIN)/python app.py

test: $(VENV)/.dev-installed /usr/bin/chromium   ## run the whole test suite
	$(BIN)/python -m pytest

lab: $(VENV)/.dev-installed          ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab notebooks/

# What Hugging Face Spaces installs: requirements.txt, no torch.
$(VENV)/.app-installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Training, notebooks and tests: the app's needs plus torch, fastai, papermill, pytest...
$(VENV)/.dev-installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[train,review,dev]"
	$(BIN)/wastesort weights
	touch $(VENV)/.app-installed $@

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "install Chromium for the browser tests: sudo apt-get install chromium"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache
