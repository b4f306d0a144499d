"""Reading TensorFlow's ``enable_check_numerics`` report: which operation made the NaN.

With check-numerics on, the first op whose output holds an Inf or a NaN raises an
``InvalidArgumentError`` whose message names the graph node ("Detected at node
sgd/Mul/CheckNumericsV2") and the op type ('graph op "Mul"'). Pure text parsing.
"""

from __future__ import annotations

import re

_NODE = re.compile(r"Detected at node '?([^\s']+?)'? defined at")
_OP = re.compile(r'Detected (Infinity or NaN|NaN|Infinity|-Infinity)[^\n]*? in output (\d+) of '
                 r'(?:graph |eagerly-executing )?op "([^"]+)"')


# The runtime's own line, at the end of the message: "Tensor had NaN values
# [[{{node dense_2_1/MatMul/CheckNumericsV2}}]]" (all there is when the middle was cut).
_TAIL = re.compile(r"Tensor had (NaN|Inf|-Inf|\+Inf|NaN and Inf) values.*?"
                   r"\{\{node ([^}]+?)/CheckNumericsV2\}\}", re.DOTALL)


def parse_check_numerics(message: str) -> dict[str, str | int] | None:
    """The node, op type and output index that check-numerics blamed, or None."""
    op = _OP.search(message)
    if op is None:
        tail = _TAIL.search(message)
        if tail is None:
            return None
        node = tail.group(2)
        return {"op_type": re.sub(r"_\d+$", "", node.rsplit("/", 1)[-1]), "operation": node,
                "output": 0, "detected": tail.group(1)}
    node = _NODE.search(message)
    name = node.group(1).removesuffix("/CheckNumericsV2") if node else None
    return {"op_type": op.group(3), "operation": name or op.group(3),
            "output": int(op.group(2)), "detected": op.group(1)}
