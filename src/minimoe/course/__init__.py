"""The course engine: the break catalog, switching breaks on and off, hints, grading, verification.

Modules: catalog (the YAML break files), switch (apply/revert in the real source files),
learners (folders, the active learner, progress), notes (the learner's break records),
grade (the grader and the gradebook), runner (detectors in a subprocess), verify (the
multi-seed kill matrix), cli (the commands). The MoE package (minimoe.*) never imports this.
"""
