"""The row schema: identity, swept columns, measurements, provenance, in that order."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.rows import IDENTITY_COLUMNS, PROVENANCE_COLUMNS, TrialResult, build_table

T = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPEC = TrialSpec("e", 1, {"width": 8, "act": "tanh", "fixed": 3}, seed=2, swept=("width", "act"))


def test_columns_and_long_form_rows():
    res = TrialResult(SPEC.id, "ok", T, T, rows=[{"epoch": e, "loss": 1.0 / (e + 1)}
                                                 for e in range(4)])
    table = build_table([SPEC], [res], {"git_sha": "s", "hostname": "h"})
    assert table.column_names == [*IDENTITY_COLUMNS, "width", "act", "epoch", "loss",
                                  *PROVENANCE_COLUMNS]
    assert table.num_rows == 4
    assert set(table["attempt_id"].to_pylist()) == {table["attempt_id"][0].as_py()}
    assert table["config_json"][0].as_py() == '{"act":"tanh","fixed":3,"width":8}'


def test_failed_trial_is_one_row_with_the_error():
    res = TrialResult(SPEC.id, "failed", T, T, error="Traceback: boom")
    table = build_table([SPEC], [res], {})
    assert table.num_rows == 1 and table["error"][0].as_py() == "Traceback: boom"


def test_reserved_names_and_bad_status_are_rejected():
    with pytest.raises(ValueError, match="reserved"):
        build_table([SPEC], [TrialResult(SPEC.id, "ok", T, T, rows=[{"status": 1}])], {})
    with pytest.raises(ValueError, match="status"):
        TrialResult(SPEC.id, "great", T, T)
