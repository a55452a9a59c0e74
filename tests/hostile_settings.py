"""Hypothesis settings shared by the hostile-input tests.

Even with database=None hypothesis caches constants and unicode tables in ./.hypothesis; the tree
stays clean (set HYPOTHESIS_STORAGE_DIRECTORY to choose another place). One app or helper per test
(function-scoped fixtures) serves every example; failures are reproduced from the printed blob or
an @example. KAMUSM_HOSTILE_SCALE=10 runs ten times as many examples, a longer hunt.
"""
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

if not os.getenv("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "kamusm-hypothesis")

SCALE = float(os.getenv("KAMUSM_HOSTILE_SCALE", "1"))


def hostile(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
