"""The one place that calls into nbgrader's private API.

`check` runs a notebook the way `nbgrader validate` does but reports per test in the course's own words, so it
needs two steps of nbgrader's Validator that nbgrader exposes only as private methods (nbgrader 0.9):
`Validator._get_changed_cells(nb)` (locked cells whose checksum no longer matches) and
`Validator._preprocess(nb)` (run the validator's preprocessors on a notebook). Its public `validate(filename)`
returns only summary text. tests/test_grading.py (`test_nbgrader_private_api_is_still_there`) fails loudly if
a new nbgrader renames or removes either, so an upgrade is caught before a student meets a traceback.
"""
from __future__ import annotations

PRIVATE_VALIDATOR_METHODS = ("_get_changed_cells", "_preprocess")


def changed_locked_cells(validator, nb) -> list:
    """Locked cells of `nb` whose source differs from what nbgrader recorded (nbgrader's own rule)."""
    return validator._get_changed_cells(nb)


def run_validator_preprocessors(validator, nb):
    """`nb` after the validator's preprocessors (clear outputs, execute, ...)."""
    return validator._preprocess(nb)
