"""The text of a ``state`` let's scan body: written by lowering, stored as the graph node's
value, read back by ``engine.scan`` (which runs it) and by ``peak graph`` (which shows it).

Canonical JSON — sorted keys, no spaces — so the same body is the same bytes in every
artifact and the same key in the kernel cache. Pure Python: ``peak check`` and ``peak graph``
never import numba for it.
"""

from __future__ import annotations

import json

from ..lang.builtins import POSITION_SOURCES


def body_text(instructions: list[tuple[str, list[tuple[str, int]]]], consts: list[float],
              inputs: int, boolean: bool) -> str:
    """The canonical text of a body (what the graph node stores): instructions as
    ``[op, [[kind, index], …]]``, constants, the input count, the boolean flag."""
    data = {"code": [[op, [[k, i] for k, i in ops]] for op, ops in instructions],
            "consts": consts, "inputs": inputs, "bool": boolean}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def body_source(text: str, inputs: list[str]) -> str:
    """The body as an expression to read (``peak graph``): ``self[j]`` for the state ``j``
    bars ago, ``inputs[k]`` for input k — ``max(nz(self[1], %0), %0)``."""
    data = json.loads(text)
    regs: list[str] = []
    for op, operands in data["code"]:
        words = [_operand_text(kind, index, inputs, data["consts"], regs)
                 for kind, index in operands]
        regs.append(f"{op}({', '.join(words)})")
    return regs[-1]


def _operand_text(kind: str, index: int, inputs: list[str], consts: list[float],
                  regs: list[str]) -> str:
    table = {"self": lambda: f"self[{index}]", "input": lambda: inputs[index],
             "const": lambda: repr(consts[index]), "reg": lambda: regs[index],
             "pos": lambda: POSITION_NAMES[index]}
    return table[kind]()


# the position operands of a rule that reads the position (``compile.position_lower``)
POSITION_NAMES = tuple(POSITION_SOURCES)
