# FaceCraft: two commands do all the set-up.
#   make demo   create the environment, then materialize the whole asset graph offline (demo profile)
#   make test   create the environment if needed, then run the test suite
#   make dev    the Dagster UI on the same definitions (http://127.0.0.1:3000)
#   make explore  the face explorer on http://127.0.0.1:8765 (MODEL=models:/... or a checkpoint, PORT=...)

PYTHON ?= python3
# The UI listens on loopback only; `make dev DAGSTER_HOST=0.0.0.0` to expose it (put auth in front).
DAGSTER_HOST ?= 127.0.0.1
# Instance settings: dagster.yaml (SQLite in the data root) or deploy/dagster-postgres.yaml (DAGSTER_PG_* env).
export FACECRAFT_DAGSTER_YAML ?= $(CURDIR)/dagster.yaml
VENV   := .venv
BIN    := $(VENV)/bin

export FACECRAFT_HOME ?= $(CURDIR)/data
export DAGSTER_HOME := $(FACECRAFT_HOME)/dagster
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: demo dev test validate benchmarks clean-data env instance explore gpu-wheels

env: $(VENV)/.installed

# torch and torchvision come first, pinned to the builds this machine's pip serves from disk;
# retinaface-pytorch goes in with --no-deps (its dependencies would pull a second OpenCV and streamlit).
# constraints.txt pins every package to the versions the suite last passed with.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,explorer]"
	$(BIN)/pip install --quiet --no-deps retinaface-pytorch==0.0.7
	touch $@

# The Dagster instance lives in the data root; dagster.yaml is its template.
instance:
	install -d -m 700 $(FACECRAFT_HOME) && mkdir -p $(DAGSTER_HOME) && cp $(FACECRAFT_DAGSTER_YAML) $(DAGSTER_HOME)/dagster.yaml

demo: env instance
	$(BIN)/facecraft materialize

dev: env instance
	$(BIN)/dagster dev -h $(DAGSTER_HOST) -w workspace.yaml

explore: env instance
	$(BIN)/facecraft explore $(if $(MODEL),--model $(MODEL)) $(if $(PORT),--port $(PORT))

test: env
	$(BIN)/python -m pytest

validate: env
	$(BIN)/dagster definitions validate -w workspace.yaml

benchmarks: env
	$(BIN)/python benchmarks/face_extract.py
	$(BIN)/python benchmarks/embedding_engines.py
	$(BIN)/python benchmarks/onedrive_sync.py
	$(BIN)/python benchmarks/explorer_latency.py
	$(BIN)/python benchmarks/lora_train.py --results benchmarks/results/lora_train.md

# The wheels benchmarks/gpu_check.py needs on a bare GPU machine (Python 3.12), into .whl/ (git-ignored); BENCHMARKS.md says how to use them.
gpu-wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 -r benchmarks/gpu_requirements.txt -d .whl/

clean-data:
	rm -rf $(FACECRAFT_HOME)
