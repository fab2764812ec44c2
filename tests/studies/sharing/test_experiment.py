"""The weight-sharing study end to end on the test profile, and its params checks."""

from __future__ import annotations

import pytest

from theorydl.spine.config import ConfigError
from theorydl.studies.sharing.experiment import Sharing


@pytest.mark.parametrize("sections, needle", [
    ({"sharing": {"log_every": 7}}, "log_every"),
    ({"sharing": {"targets": ["low", "low"]}}, "sharing.targets"),
])
def test_bad_params_are_named(study_params, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        study_params(**sections)


def test_sharing_test_profile_end_to_end(study_params, run_study):
    cfg, metrics = run_study(Sharing(), study_params())
    assert set(metrics) >= {"low", "high", "mixed_c1", "claims"}
    assert metrics["mixed_c1"]["shared_over_unshared"] > 0
    curve = open(cfg.paths.final_plot).read().splitlines()
    assert curve[0] == "c,shared,unshared" and len(curve) == 2
