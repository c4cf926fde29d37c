"""A tiny pytest plugin: write each test's outcome, duration and observations to the JSON file in
$MINIMOE_RESULTS.

The grader and the verifier run tests in a subprocess with `-p minimoe.course.results_plugin` and
read this file, rather than parsing pytest's terminal output. A test's observations are what it
recorded with pytest's `record_property` (tests/conftest.py's `observe` fixture): the quantities it
measured, which the verifier turns into ranges and margins over seeds.
"""

from __future__ import annotations

import json
import os

_results: dict[str, dict] = {}


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        prev = _results.get(report.nodeid)
        if prev is None or prev["outcome"] == "passed":
            _results[report.nodeid] = {
                "outcome": report.outcome, "seconds": round(report.duration, 3),
                "message": str(report.longrepr)[-2000:] if report.failed else "",
                "properties": {str(k): _jsonable(v) for k, v in getattr(report, "user_properties", [])}}


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MINIMOE_RESULTS")
    if path and not hasattr(session.config, "workerinput"):  # the xdist controller (or a plain run) writes
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"exitstatus": int(exitstatus), "tests": _results}, f)
