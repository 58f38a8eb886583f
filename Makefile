# Set-up from nothing on Debian: the tools via apt (when missing), Python packages in .venv.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_TOOLS := hisat2:hisat2 samtools:samtools featureCounts:subread fasterq-dump:sra-toolkit \
	chromium:chromium chromedriver:chromium-driver
DEMO := .demo
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: env tools demo test check refresh clean-demo peers
ATLAS ?= .

env: tools $(STAMP)

# apt only for the commands that are missing; sudo when not root.
tools:
	@missing=""; for pair in $(APT_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

# Reinstalled only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The whole suite, then the model-fit tests again on other CPU kernels than this CPU's own (AVX2 ones on an
# AVX-512 CPU, the generic ones elsewhere): PyTorch, oneDNN, MKL and OpenBLAS pick kernels by CPU, and a
# model test must hold on every CI machine.
ALT_KERNELS := $(shell if grep -qw avx512f /proc/cpuinfo 2>/dev/null; \
	then echo ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 OPENBLAS_CORETYPE=Haswell; \
	else echo ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Sandybridge; fi)

test: env
	$(PY) -m pytest
	env $(ALT_KERNELS) $(PY) -m pytest -m slow tests/unit

# The edit loop's tier: lint and the unit tests without model fits, SLURM or workflow runs.
check: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not slow and not slurm and not workflow and not gpu" tests/unit

demo: env
	scatlas demo --outdir $(DEMO) --run --cores 2
	@echo "demo report: $(DEMO)/report.html (MultiQC: $(DEMO)/results/multiqc/multiqc_report.html)"
	@echo "demo outputs: $(DEMO)/manifests/*.tsv, $(DEMO)/quant/*.h5ad, $(DEMO)/labels/*.tsv, $(DEMO)/atlas/*.h5ad, $(DEMO)/de/*.tsv, $(DEMO)/results/"

# The biweekly refresh of the atlas in $(ATLAS) (its config.yaml when present): query, then run.
refresh: env
	scatlas refresh --directory $(ATLAS) $(if $(wildcard $(ATLAS)/config.yaml),--configfile $(ATLAS)/config.yaml) --cores $(or $(CORES),2)

clean-demo:
	rm -rf $(DEMO)

# The benchmarks' peers that need their own environment (CellTypist: scikit-learn < 1.8).
peers: .venv-peers/.installed
.venv-peers/.installed: benchmarks/peers-requirements.txt
	test -x .venv-peers/bin/python || python3 -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q --disable-pip-version-check -r benchmarks/peers-requirements.txt
	touch $@
