# minimoe: every user action is a recipe here. `just` lists them; `just --list` shows the help.

# Arguments reach each command as they were typed, one by one ("$@"): a path with spaces stays one argument
set positional-arguments := true

python := env("PYTHON", "python3")
# Where `just setup` gets torch when torch is missing: pip's own configured index by default. On a
# stock Linux machine PyPI's torch is the multi-GB CUDA build: there, take the CPU build with
# TORCH_INDEX=https://download.pytorch.org/whl/cpu just setup
torch_index := env("TORCH_INDEX", "")

# List the recipes
default:
    @just --list --unsorted

# Set everything up: torch 2.13.0 if torch is missing (TORCH_INDEX: from where), minimoe, test and docs tools
setup:
    {{python}} -c "import torch" 2>/dev/null || {{python}} -m pip install "torch==2.13.0" {{ if torch_index == "" { "" } else { "--index-url " + quote(torch_index) } }}
    {{python}} -m pip install -e ".[dev,docs]"
    @echo "minimoe is set up. Next: just test, then just moe-train --steps 500"

# Run the everyday test suite (pass pytest flags through, e.g. just test -k router). In the course's checkout
# a phase's lab tests run only when a path names them (just test tests/phase36; all: just test -m lab). The
# lab models they train are kept in .minimoe/runs, keyed by the source: a later run of the same code reads them
test *args:
    MINIMOE_RUNS="${MINIMOE_RUNS:-.minimoe/runs}" {{python}} -m pytest -n 2 --dist loadgroup -m "not slow" "$@"

# Run the slow tests: the phases' lab tests, fresh runs behind every lab output, the site build (CI runs them)
test-slow *args:
    {{python}} -m pytest -n 2 --dist loadgroup -m "(slow or lab) and not alone" "$@"
    {{python}} -m pytest -p no:xdist -m "slow and alone" "$@"

# Train the toy MoE and report routing health (just moe-train --help lists every flag)
moe-train *args:
    {{python}} -m minimoe.train "$@"

# Train with the experts sharded over N local ranks (torchrun; gloo on CPU), e.g. just moe-train-ep 2 --config labs/phase-42-expert-parallelism/lab.yaml
moe-train-ep n *args:
    {{python}} -m minimoe.launch "$@"

# Compress a trained MoE's experts (average, ternary, prune) and judge it by source note 004's criteria (phase 39's model)
compress *args:
    {{python}} -m minimoe.compress --config labs/phase-39-expert-compression/lab.yaml "$@"

# P_total, P_active, their split and the token budgets of a config (same flags as moe-train)
params *args:
    {{python}} -m minimoe.params "$@"

# Lint the code with ruff
lint:
    {{python}} -m ruff check src tests

# List every break: phase, id, on/off (--titles: what each breaks, a spoiler for a blind hunt; --phase N, --lang es)
breaks *args:
    {{python}} -m minimoe.course list "$@"

# Switch breaks: on <id> | off <id> | off --all | status | blind <phase> | show <id>
break *args:
    {{python}} -m minimoe.course break "$@"

# Create a learner folder with notes templates, and make them the active learner
new-learner name:
    {{python}} -m minimoe.course new-learner "$1"

# Make an existing learner the active one
learner name:
    {{python}} -m minimoe.course learner "$1"

# Show the next rung of a break's hint ladder (no id: the blind break; --lang es)
hint *args:
    {{python}} -m minimoe.course hint "$@"

# A phase's blind-hunt page in the terminal: what to run and what to watch; it names no break (--lang es)
hunt phase *args:
    {{python}} -m minimoe.course hunt "$@"

# Self-study: grade a learner of this checkout (honest feedback, not a judge); writes learners/<name>/grade.md
grade name *args:
    {{python}} -m minimoe.course grade "$@"

# Classroom: build learner repositories with breaks in them (--phase N|--breaks IDS, --blind, --learners A,B|--class)
handout *args:
    {{python}} -m minimoe.course handout "$@"

# Classroom: grade submissions (folders, .bundle files, archives) with the instructor's own detectors
autograde *args:
    {{python}} -m minimoe.course autograde "$@"

# Classroom: every learner's latest autograde into classroom/gradebook.csv
gradebook *args:
    {{python}} -m minimoe.course gradebook "$@"

# Check every break over labs/seeds.yaml's verify seeds: the learner suite's red tests as declared, detectors, symptom measure
verify-breaks *args:
    {{python}} -m minimoe.course verify "$@"

# Build the course site (English + Spanish) strictly into site/: a broken link or missing page fails
docs *args:
    {{python}} -m minimoe.course.site build "$@"

# Serve the course site at http://127.0.0.1:8000, rebuilding when a page changes (--port N)
docs-serve *args:
    {{python}} -m minimoe.course.site serve "$@"

# Time the MoE layer beside a dense FFN, its balanced floor, Hugging Face's Mixtral block and a per-expert loop (--quick: a subset)
bench *args:
    {{python}} -m minimoe.perf.bench "$@"

# Split goal G5's gap (the MoE layer over its balanced floor) into the dispatch and the grouped matmuls, and name their torch operations with the profiler
bench-gap *args:
    {{python}} -m minimoe.perf.gap "$@"

# Where the time of `just moe-train` goes: fresh runs' wall time, each phase, each part of a step, the torch ops (same flags, e.g. just profile --steps 500)
profile *args:
    {{python}} -m minimoe.perf.profile "$@"

# Copy the latest benchmark (runs/bench/) into docs/performance/, the site's performance page
record-bench *args:
    {{python}} -m minimoe.course.site record-bench "$@"

# Regenerate every lab page's output blocks from real runs (--phase N, --only NAME, --check)
docs-outputs *args:
    {{python}} -m minimoe.course outputs "$@"

# Run one of the labs' experiments (just experiment --help lists them), e.g. just experiment super4096
experiment name *args:
    {{python}} -m minimoe.experiments "$@"

# Classroom mode end to end in a scratch folder: a handout, three learners' submissions, autograde, gradebook
classroom-demo:
    {{python}} -m minimoe.course.demo
