"""Reading check-numerics reports: the full message, and only its end."""

from __future__ import annotations

import pytest

from stabcheck.run.numerics import parse_check_numerics

FULL = (
    "Graph execution error:\n\nDetected at node sgd/Mul/CheckNumericsV2 defined at (most "
    "recent call last):\n  File \"x.py\", line 1\n\n!!! Detected Infinity or NaN in output 0 "
    "of graph op \"Mul\" (# of outputs: 1) !!!\n  dtype: <dtype: 'float32'>\n"
)
TAIL = ("... [cut] ...\n : Tensor had -Inf values\n\t [[{{node builtin_mlp_1/dense_2_1/MatMul/"
        "CheckNumericsV2}}]] [Op:__inference_train_step_1953]")


@pytest.mark.parametrize(
    ("message", "op_type", "operation"),
    [(FULL, "Mul", "sgd/Mul"), (TAIL, "MatMul", "builtin_mlp_1/dense_2_1/MatMul")],
)
def test_parse_check_numerics(message, op_type, operation):
    found = parse_check_numerics(message)
    assert found is not None
    assert (found["op_type"], found["operation"]) == (op_type, operation)


@pytest.mark.parametrize("message", ["", "Incompatible shapes: [32,10] vs. [32,1]",
                                     "OOM when allocating tensor"])
def test_other_errors_are_not_check_numerics(message):
    assert parse_check_numerics(message) is None
