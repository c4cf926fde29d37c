# minimoe: every user action is a recipe here. `just` lists them; `just --list` shows the help.

set positional-arguments := false

python := env("PYTHON", "python3")

# List the recipes
default:
    @just --list --unsorted

# Set everything up: torch's CPU build (if torch is missing), minimoe, test and docs tools
setup:
    {{python}} -c "import torch" 2>/dev/null || {{python}} -m pip install "torch==2.13.0"
    {{python}} -m pip install -e ".[dev,docs]"
    @echo "minimoe is set up. Next: just test, then just moe-train --steps 500"

# Run the everyday test suite (pass pytest flags through, e.g. just test -k router)
test *args:
    {{python}} -m pytest -n 2 {{args}}

# Train the toy MoE and report routing health (just moe-train --help lists every flag)
moe-train *args:
    {{python}} -m minimoe.train {{args}}

# Lint the code with ruff
lint:
    {{python}} -m ruff check src tests
