# Ryze — the two set-up commands are `make demo` and `make test`; both work from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := libmagic1 ffmpeg chromium chromium-driver fonts-noto-color-emoji

.PHONY: setup system-packages constraints test lint demo bench chaos up clean screenshots

setup: $(STAMP)

# Debian packages the project needs: libmagic1 (neonize imports python-magic), ffmpeg (voice and
# video), chromium + chromedriver (browser tests of the agent and phone pages), an emoji font (the
# bridge's posts in the pages and their screenshots in docs/).
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# constraints.txt pins every package to the version CI tested (refresh: `make constraints`).
$(STAMP): pyproject.toml constraints.txt | system-packages
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Re-resolve pyproject.toml from scratch in a throw-away venv and freeze the result. Run it after
# changing dependencies (or to take upgrades), then `make test`, and commit both files.
CONSTRAINTS_VENV := .venv-constraints
constraints: | system-packages
	rm -rf $(CONSTRAINTS_VENV) && python3 -m venv $(CONSTRAINTS_VENV)
	$(CONSTRAINTS_VENV)/bin/pip install -q --upgrade pip
	$(CONSTRAINTS_VENV)/bin/pip install -q -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; $(CONSTRAINTS_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(CONSTRAINTS_VENV)

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/ryze demo

up: setup
	$(VENV)/bin/ryze up

bench: setup
	$(PY) -m bench

# The agent-page screenshots docs/control-room.md shows, taken by the page test itself.
screenshots: setup
	RYZE_SCREENSHOT_DIR=docs/img $(VENV)/bin/pytest -q -p no:randomly tests/demo/test_control_room_page.py

# The fault matrix (docs/reliability.md): every fault on SQLite and on PostgreSQL, ≤ 15 minutes.
chaos: setup
	$(PY) -m bench.chaos

clean:
	rm -rf $(VENV) $(CONSTRAINTS_VENV) .pytest_cache .mypy_cache .ruff_cache
