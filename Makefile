# resilinet-mcu: `make demo` and `make test` set everything up themselves (idempotently).
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= build/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-all test-fast clean help bench

help:
	@echo "make demo   set up; train the fashion preset (ResiliNet), split it into int8 C per node, build"
	@echo "            the firmware; pio run -t upload starts 4 emulated boards (offline); stream 200 test"
	@echo "            samples through them with no failure and with the edge (node2) dropped; reports in $(OUT)"
	@echo "make test   set up, then run the test suite (tests marked slow left out: ~15 min on 2 cores)"
	@echo "make test-all  the same with the slow tests (a Keras Applications MobileNet on boards; every preset x"
	@echo "            scheme x partition: set RESILINET_MATRIX=full)"
	@echo "make setup  only install Debian packages and the Python venv"
	@echo "make bench  set up, then regenerate BENCHMARKS.md/.json (~40 min on 2 cores with trained models cached, more from cold; BENCH_ARGS='--only SECTION ...' for some sections)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m host.build --preset fashion --scheme resilinet --board qemu --out $(OUT)
	$(VENV)/bin/pio run -t upload
	$(PY) -m host.harness --build $(OUT) --samples 200 --out $(OUT)/harness
	$(PY) -m host.harness --build $(OUT) --samples 200 --drop node2 --out $(OUT)/harness-edge-dropped
	$(PY) -m host.deploy.pio_project stop $(OUT)
	@echo; echo "make demo: the same 200 samples on the boards, without failure and with the edge (node2) dropped"
	@grep -h -m1 -A1 "^| configuration" $(OUT)/harness/harness.md
	@grep -h "^| none failed\|^| edge failed" $(OUT)/harness/harness.md $(OUT)/harness-edge-dropped/harness.md

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	RESILINET_MATRIX=full $(PY) -m pytest -q

bench: setup
	nice -n 5 $(PY) bench/run_benchmarks.py $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache
