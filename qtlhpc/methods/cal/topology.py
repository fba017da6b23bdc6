"""CAL topologies: Boolean functions of one to three loci, parsed from expressions and canonicalised.

A topology is written as an expression over the inputs ``A``, ``B``, ``C`` with ``~`` (not), ``&`` (and),
``|`` (or), ``^`` (xor) and parentheses; precedence is Python's (``~`` binds tightest, then ``&``, ``^``,
``|``), so ``A&B|C`` is ``(A&B)|C``.

Truth tables: a function of ``N`` inputs is an integer of ``2**N`` bits; bit ``r`` is the output for the input
row ``r`` where input ``i`` (slot ``i``: A = 0, B = 1, C = 2) takes the value ``(r >> i) & 1``.

Canonical form (de Ridder et al. 2010, Sec. 2.1: topologies are counted "modulo symmetry"): inputs a function
does not depend on are dropped (``A&B|A`` is ``A``); the remaining inputs are relabelled by the permutation that
gives the smallest truth table, so ``~A&B`` and ``A&~B`` are one topology.  Under the ``abs`` score a function
and its complement give the same score and are one topology.

The symmetry group of a canonical function (the input permutations that leave it unchanged) is, for three or
fewer inputs, always a product of symmetric groups on blocks of slots (a cyclic symmetry of three inputs
implies the full symmetric group, since the cyclic and symmetric orbits on {0,1}^3 coincide).  A network's
input tuple is therefore counted once by asking ``n_s < n_t`` for slots ``s < t`` of one block.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from qtlhpc.errors import ConfigError

NAMES = ("A", "B", "C")

#: Section 3.3's two single-input networks: association with the D2 allele (``A``) and with the B6 allele (``~A``).
SINGLES = ("A", "~A")
#: The seven topologies of the performance study, Sec. 3.2 ("and, or and xor logic as well as a more complex
#: combination"); their list (Supplementary Fig. S5) is not in the paper's text, this is the reading of the spec.
PAPER7 = ("A&B", "A|B", "A^B", "A&B&C", "A|B|C", "A^B^C", "(A&B)|C")
CATALOGUES = ("singles+paper7", "paper7", "singles", "custom")
#: the score's options (A1.2 of the spec), here so that config declarations need not load the compiled kernels
TSTATS = ("welch", "student")
SCORES = ("signed", "abs")
POLARITIES = ("as-written", "expand")


# ------------------------------------------------------------------------------------------------- parsing
def _parse(text: str, where: str) -> ast.AST:
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as error:
        raise ConfigError(f"{where}: cannot parse topology {text!r} ({error.msg}); expected an expression over "
                          "A, B, C with ~ & | ^ and parentheses, e.g. '(A&B)|C'") from None

    def check(node):
        if isinstance(node, ast.Name):
            if node.id not in NAMES:
                raise ConfigError(f"{where}: topology {text!r} uses the input {node.id!r}; the inputs are A, B, C")
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return check(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
            check(node.left)
            return check(node.right)
        raise ConfigError(f"{where}: topology {text!r} contains {ast.dump(node)[:40]!r}; only A, B, C, ~, &, |, ^ "
                          "and parentheses are allowed")

    check(tree)
    return tree


def _evaluate(node: ast.AST, values: Dict[str, int], full: int) -> int:
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        return full & ~_evaluate(node.operand, values, full)
    left, right = _evaluate(node.left, values, full), _evaluate(node.right, values, full)
    if isinstance(node.op, ast.BitAnd):
        return left & right
    if isinstance(node.op, ast.BitOr):
        return left | right
    return left ^ right


_PRECEDENCE = {ast.BitOr: 1, ast.BitXor: 2, ast.BitAnd: 3}


def _unparse(node: ast.AST, rename: Dict[str, str], parent: int = 0) -> str:
    if isinstance(node, ast.Name):
        return rename[node.id]
    if isinstance(node, ast.UnaryOp):
        inner = node.operand
        text = _unparse(inner, rename, 4)
        return "~" + text
    level = _PRECEDENCE[type(node.op)]
    symbol = {ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&"}[type(node.op)]
    text = _unparse(node.left, rename, level) + symbol + _unparse(node.right, rename, level)
    # Parentheses where the parent binds tighter, and always around a mixed and/or (readability).
    return f"({text})" if level < parent or (parent and level != parent) else text


def truth_table_of(text: str, where: str = "topology") -> int:
    """Truth table (8 bits, over A, B, C) of an expression."""
    tree = _parse(text, where)
    columns = {"A": 0b10101010, "B": 0b11001100, "C": 0b11110000}
    return _evaluate(tree, columns, 0xFF)


# --------------------------------------------------------------------------------------- truth-table algebra
def table_value(table: int, row: int) -> int:
    return (table >> row) & 1


def permute_table(table: int, n_inputs: int, perm: Sequence[int]) -> int:
    """Truth table of ``x -> f(y)`` with ``y[perm[i]] = x[i]`` (input ``i`` of the new function feeds slot
    ``perm[i]`` of the old one)."""
    out = 0
    for row in range(1 << n_inputs):
        old = 0
        for i in range(n_inputs):
            if (row >> i) & 1:
                old |= 1 << perm[i]
        if table_value(table, old):
            out |= 1 << row
    return out


def essential_inputs(table8: int) -> List[int]:
    """Slots (of three) the function depends on."""
    out = []
    for i in range(3):
        if any(table_value(table8, r) != table_value(table8, r ^ (1 << i)) for r in range(8)):
            out.append(i)
    return out


def project(table8: int, slots: Sequence[int]) -> int:
    """The function of ``len(slots)`` inputs obtained by feeding input ``k`` to slot ``slots[k]`` (others 0)."""
    out = 0
    for row in range(1 << len(slots)):
        old = 0
        for k, slot in enumerate(slots):
            if (row >> k) & 1:
                old |= 1 << slot
        if table_value(table8, old):
            out |= 1 << row
    return out


def canonical(table: int, n_inputs: int) -> Tuple[int, Tuple[int, ...]]:
    """(smallest truth table over input permutations, the permutation giving it)."""
    best = None
    for perm in itertools.permutations(range(n_inputs)):
        candidate = permute_table(table, n_inputs, perm)
        if best is None or candidate < best[0]:
            best = (candidate, perm)
    return best


def symmetry_blocks(table: int, n_inputs: int) -> Tuple[Tuple[int, ...], ...]:
    """Blocks of interchangeable slots (orbits of the transpositions that leave the function unchanged)."""
    parent = list(range(n_inputs))
    for s, t in itertools.combinations(range(n_inputs), 2):
        perm = list(range(n_inputs))
        perm[s], perm[t] = t, s
        if permute_table(table, n_inputs, perm) == table:
            root_s, root_t = parent[s], parent[t]
            parent = [root_s if p == root_t else p for p in parent]
    blocks: Dict[int, List[int]] = {}
    for slot, root in enumerate(parent):
        blocks.setdefault(root, []).append(slot)
    return tuple(tuple(b) for b in blocks.values())


def complement(table: int, n_inputs: int) -> int:
    return ((1 << (1 << n_inputs)) - 1) & ~table


def is_parity(table: int, n_inputs: int) -> bool:
    """True for ``A^B(^C)`` and its complement: fixing all inputs but one forces no output."""
    rows = 1 << n_inputs
    return all(table_value(table, r) != table_value(table, r ^ 1) for r in range(rows)) and \
        all(table_value(table, r) != table_value(table, r ^ (1 << i)) for r in range(rows) for i in range(n_inputs))


# ------------------------------------------------------------------------------------------------- topology
@dataclass(frozen=True)
class Topology:
    """One canonical topology.

    ``table``: truth table over ``n_inputs`` slots; ``name``: an expression of it over A, B, C (slot 0 = A);
    ``blocks``: interchangeable slots (an input tuple is counted once: increasing columns within a block);
    ``structure``: the catalogue entry it came from (before polarity expansion).
    """

    name: str
    n_inputs: int
    table: int
    blocks: Tuple[Tuple[int, ...], ...]
    structure: str = ""
    key: int = field(default=0, compare=False)

    @property
    def parity(self) -> bool:
        return self.n_inputs >= 2 and is_parity(self.table, self.n_inputs)

    @property
    def less_than(self) -> Tuple[Tuple[int, int], ...]:
        """Slot pairs ``(s, t)``, ``s < t``, whose columns must satisfy ``n_s < n_t``."""
        return tuple((s, t) for block in self.blocks for s, t in itertools.combinations(sorted(block), 2))

    def output(self, columns: Sequence) -> object:
        """Output for the input columns (numpy bool arrays or Python ints as bit sets), by the truth table."""
        import numpy as np

        arrays = [np.asarray(c, dtype=bool) for c in columns]
        out = np.zeros(arrays[0].shape, dtype=bool)
        for row in range(1 << self.n_inputs):
            if table_value(self.table, row):
                term = np.ones(arrays[0].shape, dtype=bool)
                for i in range(self.n_inputs):
                    term &= arrays[i] if (row >> i) & 1 else ~arrays[i]
                out |= term
        return out


def topology(text: str, *, score: str = "signed", structure: str = "", where: str = "topology") -> Topology:
    """Parse and canonicalise one expression."""
    tree = _parse(text, where)
    table8 = truth_table_of(text, where)
    slots = essential_inputs(table8)
    if not slots:
        raise ConfigError(f"{where}: topology {text!r} is constant ({'1' if table8 else '0'}); a topology must "
                          "depend on at least one input")
    n = len(slots)
    table = project(table8, slots)
    best, perm = canonical(table, n)
    key = best
    if score == "abs":
        key = min(best, canonical(complement(table, n), n)[0])
    # The name: the expression with its inputs relabelled to the canonical slots (old slot slots[perm[i]]
    # feeds new input i); of the permutations giving the canonical table, the one with the smallest name.
    names = []
    for perm in itertools.permutations(range(n)):
        if permute_table(table, n, perm) != best:
            continue
        rename = {NAMES[slots[perm[i]]]: NAMES[i] for i in range(n)}
        for name in NAMES:
            rename.setdefault(name, name)
        names.append(_unparse(tree, rename))
    name = min(names)
    assert truth_table_of(name) is not None and project(truth_table_of(name), list(range(n))) == best
    return Topology(name=name, n_inputs=n, table=best, blocks=symmetry_blocks(best, n),
                    structure=structure or text.strip(), key=key)


def _negations(text: str) -> List[str]:
    """Every negation pattern of the inputs of an expression (``A&B`` -> ``A&B``, ``~A&B``, ``A&~B``, ...)."""
    tree = _parse(text, "topology")
    names = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    out = []
    for pattern in itertools.product((False, True), repeat=len(names)):
        negate = dict(zip(names, pattern))

        def rewrite(node):
            if isinstance(node, ast.Name):
                return ast.UnaryOp(op=ast.Invert(), operand=ast.Name(id=node.id)) if negate[node.id] else node
            if isinstance(node, ast.UnaryOp):
                inner = rewrite(node.operand)
                if isinstance(inner, ast.UnaryOp) and isinstance(inner.operand, ast.Name):
                    return inner.operand  # ~~X = X
                return ast.UnaryOp(op=ast.Invert(), operand=inner)
            return ast.BinOp(left=rewrite(node.left), op=node.op, right=rewrite(node.right))

        out.append(_unparse(rewrite(tree), {k: k for k in NAMES}))
    return out


def catalogue(name: str = "singles+paper7", *, custom: Sequence[str] = (), polarity: str = "as-written",
              score: str = "signed", where: str = "[cal] topologies") -> Tuple[Topology, ...]:
    """The topologies of a catalogue, canonical and without duplicates, in catalogue order.

    ``name``: ``singles+paper7`` (default), ``paper7``, ``singles`` or ``custom`` (the expressions ``custom``);
    expressions in ``custom`` are added to a named catalogue.  ``polarity="expand"`` adds every negation pattern
    of each entry's inputs (needed for findings such as "B6 alleles at both loci", ``~A&~B``).
    """
    if name not in CATALOGUES:
        raise ConfigError(f"{where}: unknown catalogue {name!r}; expected one of {', '.join(CATALOGUES)}")
    if polarity not in POLARITIES:
        raise ConfigError(f"{where}: unknown polarity {polarity!r}; expected one of {', '.join(POLARITIES)}")
    entries: List[str] = []
    if name in ("singles+paper7", "singles"):
        entries += SINGLES
    if name in ("singles+paper7", "paper7"):
        entries += PAPER7
    entries += list(custom)
    if not entries:
        raise ConfigError(f"{where}: the catalogue is empty; give expressions in custom_topologies")
    out: List[Topology] = []
    seen = set()
    for k, entry in enumerate(entries):
        variants = _negations(entry) if polarity == "expand" else [entry]
        for text in variants:
            top = topology(text, score=score, structure=entry, where=f"{where} entry {k + 1}")
            if (top.n_inputs, top.key) in seen:
                continue
            seen.add((top.n_inputs, top.key))
            out.append(top)
    return tuple(out)
