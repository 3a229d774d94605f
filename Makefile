# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up .venv from requirements.txt (first time only) and start the dashboard
#   make test   the same set-up, Debian's chromium for the browser tests, then the whole test suite
PYTHON ?= python3
VENV := .venv
REQ_HASH := $(shell sha1sum requirements.txt | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)
PORT ?= 8501

.PHONY: run test chromium bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "otc needs Python 3.11 or newer")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(VENV)/bin/python -m streamlit run app.py --server.port $(PORT)

chromium:
	@scripts/ensure-chromium

test: $(STAMP) chromium
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
