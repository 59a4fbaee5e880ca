# mnist-fpga: train, quantize, generate VHDL, simulate bit-exactly.
#   make sim      the main job: the default network through the RTL (offline)
#   make test     unit tests and benches (pytest tests/ tb/)
# Variables: NET BITS IMAGES P PE LUT_MULT=1 SIM WAVES=1 MNIST_DIR

NET    ?= mlp256
BITS   ?= int8
IMAGES ?= 20
P      ?= 1
PE     ?=
SIM    ?= ghdl
WAVES  ?= 0
# The offline MNIST copy when it sits beside the checkout; otherwise train/ downloads.
MNIST_DIR ?= $(wildcard $(abspath ../shared/data/mnist))

VENV   := .venv
PY     := $(VENV)/bin/python
LUT_MULT ?= 0
export SIM WAVES MNIST_DIR P PE LUT_MULT
# Prefer GHDL's llvm back end (about twice as fast as mcode) when it is installed.
ifneq ($(wildcard /usr/bin/ghdl-llvm),)
export GHDL_BACKEND ?= llvm
endif

.PHONY: all sim test gen train synth accuracy regress-full report qat bench lint clean setup sim-deps

all: sim

setup:
	@bash scripts/ensure-venv.sh $(VENV)

sim-deps: setup
	@if [ "$(SIM)" = ghdl ]; then bash scripts/ensure-ghdl.sh; fi

sim: sim-deps
	@$(PY) -m tb.netsim --net $(NET) --format $(BITS) --images $(IMAGES) --p $(P) \
	    $(if $(PE),--pe $(PE))

test: sim-deps
	$(PY) -m pytest -q tests tb

gen: setup
	$(PY) -m gen.generate --weights models/$(NET).npz --format $(BITS) --name $(NET) \
	    --out build/gen/$(NET)_$(BITS)

train: setup
	$(PY) -m train.train --net all --out models

synth: sim-deps
	$(PY) -m gen.synth --net $(NET) --format $(BITS) --p $(P)

# All 10,000 MNIST test images through the RTL, split over the cores (needs MNIST_DIR
# or downloads the test set).
regress-full: sim-deps
	$(PY) -m tb.regress --net $(NET) --format $(BITS) --images 10000 --p $(P)

# docs/report.md, docs/report/*.png, docs/report/accuracy.csv (needs MNIST_DIR or downloads)
report: setup
	$(PY) -m gen.report

# The committed QAT models (about 2.5 + 3.5 min on 1 thread)
qat: setup
	$(PY) -m train.qat --net mlp256 --format int4 --epochs 20 --out models/mlp256_qat_int4.npz
	$(PY) -m train.qat --net mlp256 --format w2a2 --epochs 30 --out models/mlp256_qat_w2a2.npz

accuracy: setup
	$(PY) -m gen.evaluate --format $(BITS)

bench: sim-deps
	$(PY) -m bench.bench_sim
	$(PY) -m bench.bench_parallel

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf build .pytest_cache
