# ef speech functions — one command to run, one to test. Both install what they need.
#   make run    install and start the service on 127.0.0.1:8000 (embedded mode)
#   make test   install everything (incl. redis-server, postgresql, nginx, chromium, docker-compose, iproute2 via apt as root), run the suite
#   make lint   ruff;  make bench   benchmarks (needs nginx, wrk, redis-server: installed via apt as root)
#   make coqui  add the optional Coqui TTS engine (torch on the CPU, coqui-tts) to the venv

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

# apt-get install what is missing: as root directly, else via sudo, else say what to install.
define apt_install
	missing=""; for pair in $(1); do bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then echo "please install:$$missing (apt-get install$$missing)"; \
	  else echo "installing system packages:$$missing"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	fi
endef

.PHONY: run test lint bench coqui system-python system-test system-bench clean

system-python:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { $(call apt_install,__none__:python3-venv) ; }

$(VENV)/.installed: requirements.txt | system-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

# Coqui TTS, optional (ENGINES=coqui,…); the tests need it. torch first and alone (on this platform pip takes
# the local CPU build for exactly this version), then coqui-tts; torchaudio's CUDA-linked libraries go.
$(VENV)/.installed-coqui: requirements-coqui.txt $(VENV)/.installed
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements-coqui.txt
	rm -f $(VENV)/lib/python*/site-packages/torchaudio/lib/*.so
	@touch $@

coqui: $(VENV)/.installed-coqui

run: $(VENV)/.installed
	$(BIN)/python -m runtime serve

system-test:
	@$(call apt_install,redis-server:redis-server docker-compose:docker-compose pg_ctlcluster:postgresql chromium:chromium nginx:nginx prometheus:prometheus ip:iproute2)

test: system-test $(VENV)/.installed-dev $(VENV)/.installed-coqui
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

system-bench:
	@$(call apt_install,nginx:nginx wrk:wrk redis-server:redis-server)

bench: system-bench $(VENV)/.installed-dev $(VENV)/.installed-coqui
	$(BIN)/python -m bench.serve_cached
	$(BIN)/python -m bench.synthesis_latency
	$(BIN)/python -m bench.encoding_overhead
	$(BIN)/python -m bench.stream_ttfb
	$(BIN)/python -m bench.throughput --redis
	$(BIN)/python -m bench.worker_memory
	$(BIN)/python -m bench.soak
	$(BIN)/python -m bench.deploy
	$(BIN)/python -m bench.wyoming

clean:
	rm -rf $(VENV) .pytest_cache
