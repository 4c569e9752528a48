# Two commands set everything up on a fresh machine and are safe to re-run:
#   make demo   a real check through the CLI against the embedded sandbox
#   make test   the whole suite (C extension, typing, sandbox, batches)
# Others: make build, make sanitize, make leaks, make fuzz, make bench, make clean.

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

# The whole suite against an ASan+UBSan build of the extension (msgspec's
# recipe: the runtimes preloaded, pymalloc off so ASan sees every
# allocation; leaks are `make leaks`'s job).  Built out of tree: the
# sanitized _core goes to build/sanitize/ beside links to the package's
# Python files, and the suite runs from there, so the in-tree release build
# (which other work in the tree is using) is never swapped.  Any ASan or
# UBSan report fails the run at once (reports land in build/sanitize/
# report.*); tests failing otherwise -- timing, under ASan's slowdown -- run
# once more.
SAN_DIR := build/sanitize
SAN_ENV  = LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
  PYTHONMALLOC=malloc
SAN_OPTS = ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$(CURDIR)/$(SAN_DIR)/report \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(SAN_DIR)/report
SAN_PYTEST = cd $(CURDIR)/$(SAN_DIR) && $(SAN_ENV) $(SAN_OPTS) $(CURDIR)/$(VPY) -m pytest -q \
  --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
  -o cache_dir=$(CURDIR)/$(SAN_DIR)/.pytest_cache

.PHONY: sanitize-build leaks

sanitize-build: build
	@rm -rf $(SAN_DIR)/mobilestatus && mkdir -p $(SAN_DIR)/mobilestatus
	@for f in mobilestatus/*; do case "$$f" in *.so|*/__pycache__) ;; \
	  *) ln -s "$(CURDIR)/$$f" $(SAN_DIR)/mobilestatus/ ;; esac; done
	MOBILESTATUS_SANITIZE=1 $(VPY) setup.py -q build_ext --force \
	  --build-lib $(SAN_DIR) --build-temp $(SAN_DIR)/tmp
	@cd $(CURDIR)/$(SAN_DIR) && $(SAN_ENV) ASAN_OPTIONS=detect_leaks=0 $(CURDIR)/$(VPY) -c \
	  'import mobilestatus._core as c, sys; sys.exit(0 if "/$(SAN_DIR)/" in c.__file__ else "not the sanitized build: " + c.__file__)'

sanitize: sanitize-build
	@rm -rf $(SAN_DIR)/report.* $(SAN_DIR)/.pytest_cache
	@status=0; ($(SAN_PYTEST) $(CURDIR)/tests) || status=$$?; \
	if [ $$status -eq 1 ] && ! ls $(SAN_DIR)/report.* >/dev/null 2>&1; then \
	  echo "sanitize: running the failed tests once more"; status=0; \
	  ($(SAN_PYTEST) --last-failed --last-failed-no-failures none $(CURDIR)/tests) \
	    || status=$$?; \
	fi; \
	if ls $(SAN_DIR)/report.* >/dev/null 2>&1; then \
	  cat $(SAN_DIR)/report.*; echo "sanitize: FAILED: ASan/UBSan reports above"; exit 1; \
	fi; \
	if [ $$status -eq 0 ]; then echo "sanitize: passed, 0 ASan/UBSan reports"; fi; \
	exit $$status

# Leaks: the long rounds on the release build (LEAK_ROUNDS of LEAK_CHECKS
# checks; figures in build/leak-rounds.json), then tests/test_leaks.py on
# the sanitized build under LeakSanitizer.  An LSan report with a frame in
# the extension fails; CPython's own blocks at exit do not.
LEAK_ROUNDS ?= 20
LEAK_CHECKS ?= 50000
leaks: sanitize-build
	MOBILESTATUS_LEAK_ROUNDS=$(LEAK_ROUNDS) MOBILESTATUS_LEAK_CHECKS=$(LEAK_CHECKS) \
	  MOBILESTATUS_LEAK_REPORT=$(CURDIR)/build/leak-rounds.json \
	  $(VPY) -m pytest -q -p no:cacheprovider -s tests/test_leaks.py -k rounds
	@rm -rf $(SAN_DIR)/lsan && mkdir -p $(SAN_DIR)/lsan
	cd $(CURDIR)/$(SAN_DIR) && $(SAN_ENV) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(CURDIR)/$(SAN_DIR)/lsan/report \
	  LSAN_OPTIONS=exitcode=0 MOBILESTATUS_LEAK_CHECKS=1000 \
	  $(CURDIR)/$(VPY) -m pytest -q -p no:cacheprovider --rootdir=$(CURDIR) \
	  -c $(CURDIR)/pyproject.toml $(CURDIR)/tests/test_leaks.py
	@reports=$$(ls $(SAN_DIR)/lsan/report.* 2>/dev/null | wc -l); \
	ours=$$(grep -l -E 'csrc/|_core\.cpython' $(SAN_DIR)/lsan/report.* 2>/dev/null); \
	if [ -n "$$ours" ]; then cat $$ours; echo "leaks: FAILED: LSan found leaks in the extension"; exit 1; fi; \
	echo "leaks: rounds flat; LSan: $$reports report(s), 0 with a frame in the extension"

# Both libFuzzer harnesses, FUZZ_SECONDS each, under ASan+UBSan: the JSON
# parser alone (fuzz/fuzz_json.c) and raw HTTP responses through the whole
# extension (fuzz/fuzz_response.c).  Installs clang and its libFuzzer
# runtime with apt-get when missing.  Logs: build/fuzz-{json,response}.log.
FUZZ_SECONDS ?= 60
fuzz: deps $(STAMP)
	@if ! command -v clang >/dev/null 2>&1; then \
	  echo "installing clang (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clang >/dev/null; \
	fi
	@if ! printf '#include <stddef.h>\nint LLVMFuzzerTestOneInput(const char *d, size_t n) { return 0; }\n' \
	    | clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then \
	  v=$$(clang -dumpversion | cut -d. -f1); echo "installing libclang-rt-$$v-dev (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libclang-rt-$$v-dev >/dev/null; \
	fi
	@mkdir -p build
	@status=0; \
	for target in run:json run-response:response; do \
	  log=build/fuzz-$${target#*:}.log; \
	  $(MAKE) -C fuzz $${target%%:*} FUZZ_TIME=$(FUZZ_SECONDS) PYTHON_FUZZ=$(CURDIR)/$(VPY) \
	    > $$log 2>&1 || status=1; \
	  echo "fuzz $${target#*:}: $$(grep -h -E 'stat::number_of_executed_units|^Done' $$log | tr '\n' ' ')"; \
	  grep -h -E 'ERROR|SUMMARY|crash-|leak-|timeout-|oom-' $$log | head -5; \
	done; \
	echo "corpora: fuzz/corpus $$(ls fuzz/corpus | wc -l) files, build/fuzz/response-corpus $$(ls build/fuzz/response-corpus | wc -l) files"; \
	exit $$status

bench: build
	PYCURL_SSL_LIBRARY=openssl $(VPY) -m pip install -q -r benchmarks/requirements.txt
	$(VPY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf build $(VENV) *.egg-info mobilestatus/*.so
