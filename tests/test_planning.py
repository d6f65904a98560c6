"""The planner on plain IR (planning/): memory placement, lifetimes, workspaces, and one plan per model
and target.  Nothing here compiles except the last test, which counts pipeline runs across compiles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy
from conftest import make_model, ort_run
from onnx import helper
from test_codegen import needs_gxx

import sofie_rdf as sr
from sofie_rdf import ir
from sofie_rdf.ir import TensorType
from sofie_rdf.ir.dims import symbol
from sofie_rdf.ops import make_node, op_for
from sofie_rdf.passes import prepare
from sofie_rdf.passes.constant_folding import fold_constants
from sofie_rdf.planning import plan_count, plan_memory, plan_row_blocks
from sofie_rdf.planning.memory import ALIGN_ELEMENTS

F32 = np.dtype(np.float32)
RNG = np.random.default_rng(3)


def _graph(nodes: list[tuple], inputs: dict[str, tuple], outputs: list[str], weights: dict | None = None) -> ir.Model:
    """A prepared IR model from (op_type, inputs, outputs[, attrs]) tuples; str dims are symbols."""
    model = ir.Model(name="plan", inputs=list(inputs), outputs=outputs, initializers=dict(weights or {}),
                     nodes=[make_node(n[0], n[1], n[2], n[3] if len(n) > 3 else {}, name=f"n{k}", version=17)
                            for k, n in enumerate(nodes)], opsets={"": 17})
    for name, shape in inputs.items():
        model.tensors[name] = TensorType(F32, tuple(symbol(d) if isinstance(d, str) else d for d in shape))
    return fold_constants(prepare(model))


def _plan(model: ir.Model, workspaces: dict[int, list[TensorType]] | None = None):
    ops = [op_for(n, model.name) for n in model.nodes]
    return ops, plan_memory(model, ops, [(workspaces or {}).get(i, []) for i in range(len(ops))])


def _lifetimes(model: ir.Model, ops, plan) -> dict[str, tuple[int, int]]:
    """(first node writing, last node reading) of every arena tensor, views counted as reads of their root."""
    life: dict[str, list[int]] = {}
    for i, op in enumerate(ops):
        for name in op.runtime_inputs(model.tensors) + [o for o in op.node.outputs if o]:
            root = plan.root(name)
            if plan.storage[root].kind == "arena":
                span = life.setdefault(root, [i, i])
                span[1] = i
    for i, names in plan.workspaces.items():
        life.update({n: [i, i] for n in names})
    return {n: tuple(s) for n, s in life.items()}


def _assert_disjoint(model: ir.Model, ops, plan) -> None:
    """Tensors alive at the same node never share memory, except an in-place output taking its input's slot."""
    life = _lifetimes(model, ops, plan)
    names = sorted(life)
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            (sa, ea), (sb, eb) = life[a], life[b]
            pa, pb = plan.storage[a], plan.storage[b]
            if pa.dtype != pb.dtype or ea < sb or eb < sa or pa.slot == pb.slot:
                continue
            oa, ob, size_a, size_b = map(_at_batch, (pa.offset, pb.offset, plan.tensor_type(model, a).size,
                                                      plan.tensor_type(model, b).size))
            assert oa + size_a <= ob or ob + size_b <= oa, (a, b)


def _at_batch(size, batch: int = 7) -> int:
    """A size or offset with every symbolic dim set to ``batch``."""
    return int(sympy.sympify(size).subs({s: batch for s in sympy.sympify(size).free_symbols}))


def test_slots_alternate_through_a_chain_of_layers():
    """Three Linear + Relu layers need two live intermediates at a time: two slots, each Relu in place."""
    weights = {f"w{k}": RNG.standard_normal((8, 8)).astype(F32) for k in range(3)}
    nodes = []
    x = "x"
    for k in range(3):
        nodes += [("MatMul", [x, f"w{k}"], [f"m{k}"]), ("Relu", [f"m{k}"], [f"r{k}" if k < 2 else "y"])]
        x = f"r{k}"
    model = _graph(nodes, {"x": (4, 8)}, ["y"], weights)
    ops, plan = _plan(model)
    assert plan.storage["x"].kind == "input" and plan.storage["w0"].kind == "weight"
    assert plan.storage["y"].kind == "output" and plan.copies == ()
    for k in range(2):
        assert plan.storage[f"r{k}"].slot == plan.storage[f"m{k}"].slot  # Relu over its input
    arena = [s for s in plan.storage.values() if s.kind == "arena"]
    assert len({s.slot for s in arena}) == 2
    assert all(s.offset % ALIGN_ELEMENTS == 0 and s.dtype == F32 for s in arena)
    assert plan.arenas == {F32: 2 * 32}
    _assert_disjoint(model, ops, plan)


def test_diamond_keeps_both_branches_apart():
    """a feeds two branches joined at the end: a, b and c are alive together."""
    nodes = [("Exp", ["x"], ["a"]), ("Neg", ["a"], ["b"]), ("Abs", ["a"], ["c"]), ("Add", ["b", "c"], ["d"]),
             ("Add", ["d", "a"], ["y"])]
    model = _graph(nodes, {"x": ("N", 5)}, ["y"])
    ops, plan = _plan(model)
    slots = {n: plan.storage[n].slot for n in "abcd"}
    assert len({slots["a"], slots["b"], slots["c"]}) == 3
    assert not isinstance(plan.arenas[F32], int)  # sized by the batch N
    _assert_disjoint(model, ops, plan)


def test_views_share_their_source_and_outputs_are_bound_or_copied():
    nodes = [("Relu", ["x"], ["a"]), ("Flatten", ["a"], ["f"], {"axis": 1}), ("Neg", ["f"], ["y"])]
    model = _graph(nodes, {"x": (2, 3, 4)}, ["y", "x"])
    _, plan = _plan(model)
    assert plan.storage["f"].kind == "view" and plan.root("f") == "a"
    assert plan.copies == (1,)  # the input handed back as an output is copied at the end


def test_workspace_lives_for_its_node_only():
    """A node's scratch tensor gets arena memory during that node and is free for the tensors after it."""
    nodes = [("Exp", ["x"], ["a"]), ("Neg", ["a"], ["b"]), ("Abs", ["b"], ["c"]), ("Sqrt", ["c"], ["y"])]
    model = _graph(nodes, {"x": (64,)}, ["y"])
    scratch = TensorType(F32, (64,))
    ops, plan = _plan(model, {1: [scratch]})
    (name,) = plan.workspaces[1]
    assert plan.storage[name].kind == "arena" and plan.tensor_type(model, name) is scratch
    assert name not in model.tensors
    assert plan.storage[name].slot not in (plan.storage["a"].slot, plan.storage["b"].slot)
    _assert_disjoint(model, ops, plan)


def test_runtime_sized_tensor_gets_its_own_buffer():
    """NonZero's count is known only while running: what it sizes cannot sit at a planned offset."""
    nodes = [("NonZero", ["x"], ["i"]), ("Cast", ["i"], ["f"], {"to": 1}), ("Neg", ["f"], ["y"])]
    model = _graph(nodes, {"x": (4, 4)}, ["y"])
    _, plan = _plan(model)
    assert plan.storage["i"].kind == "dynamic" and plan.storage["f"].kind == "dynamic"
    assert plan.copies == (0,)  # an output sized at run time is always copied


def test_plan_is_frozen():
    model = _graph([("Relu", ["x"], ["y"])], {"x": (3,)}, ["y"])
    _, plan = _plan(model)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.row_block = ("N", 1)  # type: ignore[misc]


def test_row_blocks_for_independent_rows_only():
    w = RNG.standard_normal((16, 64)).astype(F32)
    rows = _graph([("MatMul", ["x", "w"], ["a"]), ("Tanh", ["a"], ["y"])], {"x": ("N", 16)}, ["y"], {"w": w})
    ops, plan = _plan(rows)
    dim, block = plan_row_blocks(rows, ops, plan)
    assert dim == "N" and block >= 1
    mixed = _graph([("MatMul", ["x", "w"], ["a"]), ("Softmax", ["a"], ["y"], {"axis": 0})], {"x": ("N", 16)}, ["y"],
                   {"w": w})
    ops, plan = _plan(mixed)
    assert plan_row_blocks(mixed, ops, plan) is None  # Softmax over the batch dim mixes the rows


@needs_gxx
def test_pipeline_runs_once_per_model_and_target(tmp_path):
    """Generating, compiling natively (two namespaces) and with the JIT plan the model once per target;
    a second load of the same model reuses the plans, a model changed in place is planned again."""
    w = RNG.standard_normal((6, 3)).astype(F32)
    onnx_model = make_model([helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("Sigmoid", ["a"], ["y"])],
                            [("x", F32, ["N", 6])], [("y", F32, ["N", 3])], {"w": w}, name="CountMe")
    before = plan_count()
    model = sr.load(onnx_model)
    model.code()
    native = sr.compile(model, backend="native")
    model.generate(tmp_path)
    assert plan_count() - before == 1
    jit = sr.compile(model, backend="jit")
    sr.load(onnx_model).code(target="jit")
    assert plan_count() - before == 2
    x = RNG.standard_normal((5, 6)).astype(F32)
    (expected,) = ort_run(onnx_model, {"x": x})
    for sess in (native, jit):
        np.testing.assert_allclose(sess.infer(x), expected, rtol=1e-5, atol=1e-6)
    model.ir.initializers["w"] = -w  # a changed model is a different model
    model.code()
    assert plan_count() - before == 3
