# mnist-fpga: train, quantize, generate VHDL, simulate bit-exactly.
#   make sim      the main job: the default network through the RTL (offline)
#   make test     unit tests and benches (pytest tests/ tb/) on all cores
# Variables: NET BITS IMAGES P PE LUT_MULT=1 SIM WAVES=1 MNIST_DIR SHARD=i/n TEST_JOBS,
# WEIGHTS IMAGE=digit.png (make sim), WEIGHTS (make gen), LAYERS EPOCHS (make train/qat),
# FROM OUT ACTIVATION=relu FORCE=1 (make import), UPDATE_DOCS=1 (make report); make synth:
# PE TARGET; make sim-netlist (or make sim NETLIST=1): NETLIST_SIM=icarus|verilator

NET    ?= mlp256
BITS   ?= int8
IMAGES ?= 20
# IMAGE=path.png (or .pgm): make sim classifies this image of yours instead of IMAGES
IMAGE  ?=
P      ?= 1
PE     ?=
SIM    ?= ghdl
WAVES  ?= 0
# make regress-full SHARD=i/n: only the i-th of n slices of the images (CI machines)
SHARD  ?=
# pytest-xdist workers of make test (auto: one per core; 0 runs in this process)
TEST_JOBS ?= auto
TARGET ?= all
NETLIST ?= 0
# The offline MNIST copy when it sits beside the checkout; otherwise train/ downloads.
MNIST_DIR ?= $(wildcard $(abspath ../shared/data/mnist))

VENV   := .venv
PY     := $(VENV)/bin/python
LUT_MULT ?= 0
export SIM WAVES MNIST_DIR P PE LUT_MULT
# $(call q,VALUE): VALUE as one single-quoted shell word (a ' inside becomes '\''), so a
# variable given on the command line (make sim NET='a;b') reaches the tools as text and
# never runs as shell code. Every variable a recipe passes to the shell goes through it.
q = '$(subst ','\'',$(1))'
# Prefer GHDL's llvm back end (about twice as fast as mcode) when it is installed.
ifneq ($(wildcard /usr/bin/ghdl-llvm),)
export GHDL_BACKEND ?= llvm
endif

.PHONY: all sim test gen train synth sim-netlist accuracy regress-full report qat bench bench-hw lint \
	clean setup sim-deps netlist-deps mutants fuzz

all: sim

setup:
	@bash scripts/ensure-venv.sh $(VENV)

sim-deps: setup
	@if [ $(call q,$(SIM)) = ghdl ]; then bash scripts/ensure-ghdl.sh; fi

# Icarus simulates the synthesized netlists (make sim-netlist, tests/test_synth.py).
netlist-deps:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "iverilog not found: installing it with apt-get" >&2; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null; \
	  elif [ $(call q,$(CI)) = true ]; then \
	    echo "error: iverilog not found (apt-get install -y iverilog): CI=true needs it for the netlist simulations" >&2; exit 1; \
	  else echo "note: iverilog not found (apt-get install -y iverilog): netlist simulations are skipped" >&2; fi; }

# WEIGHTS=path.npz simulates any float weights file, named after the file unless NET is
# given; without it, a committed QAT model for BITS (models/<net>_qat_<bits>.npz) is
# preferred over the float model, and the run says which one it uses. NETLIST=1
# simulates the synthesized netlist instead of the VHDL. IMAGE=path.png simulates that
# image, made 28x28 as docs/numerics.md section 1a says, and prints its class.
PE_ARG = $(if $(PE),--pe $(call q,$(PE)))
SIM_IMAGES = $(if $(IMAGE),--image $(call q,$(IMAGE)),--images $(call q,$(IMAGES)))
EPOCHS_ARG = $(if $(EPOCHS),--epochs $(call q,$(EPOCHS)))
SIM_NET = $(if $(and $(WEIGHTS),$(filter file,$(origin NET))),,--net $(call q,$(NET)))
sim: sim-deps $(if $(filter 1,$(NETLIST)),netlist-deps)
	@$(PY) -m mnist_fpga.tb.netsim $(SIM_NET) --format $(call q,$(BITS)) $(SIM_IMAGES) \
	    --p $(call q,$(P)) $(PE_ARG) $(if $(WEIGHTS),--weights $(call q,$(WEIGHTS)),--prefer-qat) \
	    $(if $(filter 1,$(NETLIST)),--netlist)

# The Verilog that ghdl --synth writes, through the same whole-network bench
sim-netlist: sim-deps netlist-deps
	@$(PY) -m mnist_fpga.tb.netsim --netlist --net $(call q,$(NET)) --format $(call q,$(BITS)) \
	    --images $(call q,$(IMAGES)) --p $(call q,$(P)) $(PE_ARG)

# loadgroup: tests that share state stay on one worker (conftest.py). One BLAS/OpenMP
# thread per process: the workers already fill the cores, and idle OpenBLAS threads spin.
# -rs lists every skip with its reason; under CI=true a skip for a missing tool fails.
test: sim-deps netlist-deps
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	    $(PY) -m pytest -q -rs -n $(call q,$(TEST_JOBS)) --dist loadgroup tests tb

GEN_NET = $(if $(and $(WEIGHTS),$(filter file,$(origin NET))),$(basename $(notdir $(WEIGHTS))),$(NET))
gen: setup
	$(PY) -m mnist_fpga.gen.hdl.generate --weights $(call q,$(or $(WEIGHTS),models/$(NET).npz)) \
	    --format $(call q,$(BITS)) --name $(call q,$(GEN_NET)) \
	    --out $(call q,build/gen/$(GEN_NET)_$(BITS))

# LAYERS=784,128,64,10 NET=<name>: any MLP; without LAYERS the three reference networks
train: setup
ifneq ($(LAYERS),)
	$(PY) -m mnist_fpga.train.train --net $(call q,$(NET)) --layers $(call q,$(LAYERS)) $(EPOCHS_ARG) \
	    --out models
else
	$(PY) -m mnist_fpga.train.train --net all --out models
endif

# ghdl --synth, yosys (synth_ecp5 + nextpnr-ecp5 on LFE5UM-85F, synth_xilinx xc7): SYNTH lines
synth: sim-deps
	@$(PY) -m mnist_fpga.gen.eda.synth --net $(call q,$(NET)) --format $(call q,$(BITS)) --p $(call q,$(P)) \
	    $(PE_ARG) --target $(call q,$(TARGET))

# All 10,000 MNIST test images through the RTL, split over the cores (needs MNIST_DIR
# or downloads the test set); SHARD=i/n runs one slice of them. Results JSON and JUnit
# XML go to build/regress/<run>/ (python -m mnist_fpga.tb.regress --merge combines shards).
regress-full: sim-deps
	$(PY) -m mnist_fpga.tb.regress --net $(call q,$(NET)) --format $(call q,$(BITS)) --images 10000 \
	    --p $(call q,$(P)) $(if $(SHARD),--shard $(call q,$(SHARD)))

# build/report/report.md, report/*.png, report/accuracy.csv (needs MNIST_DIR or downloads);
# UPDATE_DOCS=1 writes them over the committed docs/report.md and docs/report/ instead
UPDATE_DOCS ?= 0
report: setup
	$(PY) -m mnist_fpga.gen.reports.report $(if $(filter 1,$(UPDATE_DOCS)),--out docs)

# The committed QAT models (about 2.5 + 3.5 min on 1 thread); with LAYERS (any MLP, from
# models/<NET>.npz) one run into models/<NET>_qat_<BITS>.npz, which make sim then prefers
qat: setup
ifneq ($(LAYERS),)
	$(PY) -m mnist_fpga.train.qat --net $(call q,$(NET)) --layers $(call q,$(LAYERS)) \
	    --format $(call q,$(BITS)) $(EPOCHS_ARG) --out $(call q,models/$(NET)_qat_$(BITS).npz)
else
	$(PY) -m mnist_fpga.train.qat --net mlp256 --format int4 --epochs 20 --out models/mlp256_qat_int4.npz
	$(PY) -m mnist_fpga.train.qat --net mlp256 --format w2a2 --epochs 30 --out models/mlp256_qat_w2a2.npz
endif

# A float MLP from ONNX or a PyTorch file into our .npz (docs/models.md); a state_dict
# holds no activations: ACTIVATION=relu says them
.PHONY: import
import: setup
	$(PY) -m mnist_fpga.gen.frontends.import_model --from $(call q,$(FROM)) \
	  --out $(call q,$(or $(OUT),build/import/$(basename $(notdir $(FROM))).npz)) \
	  $(if $(ACTIVATION),--activation $(call q,$(ACTIVATION))) $(if $(filter 1,$(FORCE)),--force)

accuracy: setup
	$(PY) -m mnist_fpga.gen.reports.evaluate --format $(call q,$(BITS))

# the speed goals (bench/bench_goals.py: MNIST loading, failing benches fail fast); images/s
# for GHDL, and for NVC when it is on PATH; then the P sweep; then the P x PE
# hardware sweep (bench-hw: synthesis and place and route, an hour the first time,
# seconds when the RTL has not changed)
bench: sim-deps
	$(PY) -m mnist_fpga.bench.bench_goals
	$(PY) -m mnist_fpga.bench.bench_sim
	$(PY) -m mnist_fpga.bench.bench_parallel
	$(PY) -m mnist_fpga.bench.sweep_hw

bench-hw: sim-deps
	$(PY) -m mnist_fpga.bench.sweep_hw --net $(call q,$(or $(NET),mlp256)) \
	    $(if $(POINTS),--points $(call q,$(POINTS)))

# Every RTL mutant of tb/mutants/mutants.toml must be killed by its kill suite
# (writes docs/mutants.md).
mutants: sim-deps
	$(PY) -m mnist_fpga.tb.mutants.run

# The deterministic fuzz: FUZZ_EXAMPLES networks from seed FUZZ_SEED_BASE (default 0).
FUZZ_EXAMPLES ?= 200
fuzz: sim-deps
	FUZZ_EXAMPLES=$(call q,$(FUZZ_EXAMPLES)) $(PY) -m pytest -q -p no:cacheprovider tb/fuzz

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf build .pytest_cache
