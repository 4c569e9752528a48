# Two commands set everything up on a fresh machine and are safe to re-run:
#   make demo   a real check through the CLI against the embedded sandbox
#   make test   the whole suite (C extension, typing, sandbox, batches)
# Others: make build, make sanitize, make fuzz, make bench, make clean.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CSRC   := $(wildcard csrc/*.c csrc/*.h)
SO_STAMP := build/.core-built
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build demo test test-fast typecheck sanitize fuzz bench clean

all: build

# System packages: libcurl's headers (and pkg-config) to build the core.
deps:
	@if ! pkg-config --exists libcurl 2>/dev/null; then \
	  echo "installing libcurl4-openssl-dev and pkg-config (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    libcurl4-openssl-dev pkg-config >/dev/null; \
	fi

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(VPY) deps
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@mkdir -p build && touch $(SO_STAMP)
	@touch $@

$(SO_STAMP): $(CSRC) $(STAMP)
	$(VPY) setup.py -q build_ext --inplace
	@mkdir -p build && touch $@

build: deps $(STAMP) $(SO_STAMP)

# The last number is invalid on purpose: it is refused locally (no call) and
# makes the CLI exit 1 ("some numbers could not be checked"), which the demo
# accepts; any other failure fails the demo.
demo: build
	$(VPY) -m mobilestatus check --sandbox \
	  13800138000 "+86 139-1234-5675" 008615012345676 8618612345677 \
	  13312345678 13312345679 13900000999 12345 || [ $$? -eq 1 ]

test: build
	$(VPY) -m pytest -q -p no:cacheprovider
	$(VPY) -m mypy --no-error-summary
	$(VPY) -m mypy.stubtest mobilestatus._core

test-fast: build
	$(VPY) -m pytest -q -x -p no:cacheprovider -m "not slow"

typecheck: build
	$(VPY) -m mypy

# The suite against an ASan+UBSan build of the extension (msgspec's recipe:
# the runtime preloaded, pymalloc off so ASan sees every allocation).
sanitize: deps $(STAMP)
	MOBILESTATUS_SANITIZE=1 $(VPY) setup.py -q build_ext --inplace --force
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(VPY) -m pytest -q -p no:cacheprovider -m "not slow"; \
	  status=$$?; \
	  $(VPY) setup.py -q build_ext --inplace --force; touch $(SO_STAMP); \
	  exit $$status

fuzz: deps
	$(MAKE) -C fuzz run

bench: build
	PYCURL_SSL_LIBRARY=openssl $(VPY) -m pip install -q -r benchmarks/requirements.txt
	$(VPY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf build $(VENV) *.egg-info mobilestatus/*.so
