"""Transformer operators: Attention (opsets 23-25), LinearAttention (27), RMSNormalization (23),
RotaryEmbedding (23) and SwiGLU (28).

The oracle is onnxruntime where it runs the op and type (Attention and RMSNormalization
float32/float64, RotaryEmbedding float32): ``check_model`` / ``check_folded``.  Elsewhere
(SwiGLU and LinearAttention, newer than onnxruntime's opsets; RotaryEmbedding and
LinearAttention float64, outside their ONNX type lists) it is onnx's ReferenceEvaluator:
``check_ref``.  Each test names its oracle.
"""

import numpy as np
import pytest
from conftest import make_model, sofie_run
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from sofie_rdf.errors import ShapeError, SofieError

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _fold(model, feeds):
    """The model with every feed made an initializer (generation-time evaluate)."""
    folded = make_model([], [], [])
    folded.CopyFrom(model)
    kept = [i for i in folded.graph.input if i.name not in feeds]
    del folded.graph.input[:]
    folded.graph.input.extend(kept)
    folded.graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in feeds.items())
    return folded


def check_ref(model, feeds, rtol=1e-4, atol=1e-5, folded=False):
    """Oracle: onnx.reference.ReferenceEvaluator (ops or types onnxruntime does not run)."""
    ref = ReferenceEvaluator(model).run(None, feeds)
    ours = sofie_run(_fold(model, feeds), {}) if folded else sofie_run(model, feeds)
    assert len(ours) == len(ref)
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"output {k}: {a.shape} {a.dtype} != {b.shape} {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {k}")


def _node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


# ---- Attention ------------------------------------------------------------------------

def _attention(dtype=F32, rank=4, b=2, qh=4, kvh=4, sq=3, skv=5, d=8, dv=None, past=0, mask=None, outputs=1,
               opset=23, nonpad=False, symbolic=False, seed=0, **attrs):
    """(model, feeds) of one Attention node; mask = (shape, dtype) of attn_mask."""
    rng = np.random.default_rng(seed)
    dv = dv or d
    if rank == 4:
        shapes = {"q": (b, qh, sq, d), "k": (b, kvh, skv, d), "v": (b, kvh, skv, dv)}
        dims = {"q": ["N", qh, "S", d], "k": ["N", kvh, "L", d], "v": ["N", kvh, "L", dv]}
        y = ["N", qh, "S", dv]
    else:
        shapes = {"q": (b, sq, qh * d), "k": (b, skv, kvh * d), "v": (b, skv, kvh * dv)}
        dims = {"q": ["N", "S", qh * d], "k": ["N", "L", kvh * d], "v": ["N", "L", kvh * dv]}
        y = ["N", "S", qh * dv]
        attrs.update(q_num_heads=qh, kv_num_heads=kvh)
    feeds = {k: _rand(rng, s, dtype) for k, s in shapes.items()}
    names = ["q", "k", "v"]
    if mask is not None:
        mshape, mdtype = mask
        if mdtype is bool:  # key 0 always attended: onnxruntime gives NaN rows where the spec gives zeros
            feeds["m"] = (rng.random(mshape) > 0.3) | (np.arange(mshape[-1]) == 0)
        else:
            feeds["m"] = _rand(rng, mshape, mdtype)
        shapes["m"], dims["m"] = mshape, list(mshape)
    names.append("m" if mask is not None else "")
    if past:
        feeds["pk"], feeds["pv"] = _rand(rng, (b, kvh, past, d), dtype), _rand(rng, (b, kvh, past, dv), dtype)
        dims["pk"], dims["pv"] = ["N", kvh, past, d], ["N", kvh, past, dv]
    names += ["pk", "pv"] if past else ["", ""]
    if nonpad:
        feeds["np"] = rng.integers(1, skv + 1, size=b).astype(np.int64)
        dims["np"] = ["N"]
        names.append("np")
    while names[-1] == "":
        names.pop()
    total = skv + past
    outs = [("y", dtype, y), ("pk_out", dtype, ["N", kvh, total, d]), ("pv_out", dtype, ["N", kvh, total, dv]),
            ("qk", dtype, ["N", qh, "S", total])][:outputs]
    if not symbolic:
        outs = [(n, t, None) for n, t, _ in outs]
    inputs = [(n, feeds[n].dtype, dims[n] if symbolic else list(feeds[n].shape)) for n in names if n]
    model = make_model([_node("Attention", names, [o[0] for o in outs], **attrs)], inputs, outs, opset=opset)
    return model, feeds


ATTENTION_CASES = {
    "mha": {},
    "gqa": {"kvh": 2},
    "mqa": {"kvh": 1},
    "diff_head_sizes": {"dv": 6},
    "scaled": {"scale": 0.3},
    "causal": {"is_causal": 1},
    "causal_cross": {"is_causal": 1, "sq": 5, "skv": 3},
    "softcap": {"softcap": 2.0},
    "float_mask_2d": {"mask": ((3, 5), "same")},
    "float_mask_3d": {"mask": ((4, 3, 5), "same")},
    "float_mask_4d": {"mask": ((2, 1, 3, 5), "same")},
    "bool_mask": {"mask": ((2, 4, 3, 5), bool)},
    "bool_mask_causal": {"mask": ((3, 5), bool), "is_causal": 1},
    "past": {"past": 2, "outputs": 3},
    "past_gqa_causal_mask": {"past": 2, "kvh": 2, "is_causal": 1, "mask": ((3, 7), "same"), "outputs": 3},
    "qk_mode0": {"outputs": 4},
    "qk_mode1_softcap": {"outputs": 4, "qk_matmul_output_mode": 1, "softcap": 1.5},
    "qk_mode2_mask": {"outputs": 4, "qk_matmul_output_mode": 2, "mask": ((3, 5), "same")},
    "qk_mode3_causal": {"outputs": 4, "qk_matmul_output_mode": 3, "is_causal": 1},
}


def _resolve(case: dict, dtype) -> dict:
    case = dict(case)
    if case.get("mask") and case["mask"][1] == "same":
        case["mask"] = (case["mask"][0], dtype)
    return case


# onnxruntime 1.31 rejects these float64 graphs (its function body binds an Add to float): ReferenceEvaluator there.
ORT_FLOAT32_ONLY = {"past_gqa_causal_mask"}


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention(check_model, case, dtype, rank):
    """Oracle: onnxruntime (Attention-23), ReferenceEvaluator for ORT_FLOAT32_ONLY in float64."""
    model, feeds = _attention(dtype, rank, **_resolve(ATTENTION_CASES[case], dtype))
    if dtype == F64 and case in ORT_FLOAT32_ONLY:
        check_ref(model, feeds)
    else:
        check_model(model, feeds)


def test_attention_softmax_precision_double(check_model):
    """Oracle: onnxruntime; float32 inputs, softmax in float64."""
    model, feeds = _attention(F32, softmax_precision=11, outputs=4, qk_matmul_output_mode=3)
    check_model(model, feeds)


def test_attention_softmax_precision_float():
    """Oracle: ReferenceEvaluator (onnxruntime refuses float64 inputs with a float32 softmax)."""
    model, feeds = _attention(F64, softmax_precision=1, outputs=4, qk_matmul_output_mode=3)
    check_ref(model, feeds)


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("case", ["gqa", "past", "bool_mask_causal", "qk_mode3_causal"])
def test_attention_symbolic_batch_and_sequence(check_model, case, rank):
    """Oracle: onnxruntime; N, S (query) and L (keys) are symbols, run at two sizes."""
    for b, sq, seed in ((2, 3, 0), (1, 4, 1)):
        spec = _resolve(ATTENTION_CASES[case], F32)
        if spec.get("mask"):
            spec["mask"] = ((sq, 5), bool)
        model, feeds = _attention(F32, rank, b=b, sq=sq, symbolic=True, seed=seed, **spec)
        check_model(model, feeds)


def test_attention_symbolic_mask_and_head_size(check_model):
    """Oracle: onnxruntime; symbolic mask dims and a symbolic head size (default scale computed at run time)."""
    rng = np.random.default_rng(3)
    feeds = {"q": _rand(rng, (2, 2, 3, 6), F32), "k": _rand(rng, (2, 2, 4, 6), F32), "v": _rand(rng, (2, 2, 4, 6), F32),
             "m": _rand(rng, (3, 4), F32)}
    dims = {"q": ["N", 2, "S", "D"], "k": ["N", 2, "L", "D"], "v": ["N", 2, "L", "D"], "m": ["S", "L"]}
    model = make_model([_node("Attention", ["q", "k", "v", "m"], ["y"])], [(k, F32, dims[k]) for k in feeds],
                       [("y", F32, None)], opset=23)
    check_model(model, feeds)


@pytest.mark.parametrize("case", ["gqa", "past", "float_mask_4d", "qk_mode2_mask"])
def test_attention_folded(check_folded, case):
    """Oracle: onnxruntime; every input constant, so the numpy reference (evaluate) computes the outputs."""
    model, feeds = _attention(F64, 3, **_resolve(ATTENTION_CASES[case], F64))
    check_folded(model, feeds)


def test_attention_int_mask_is_additive():
    """Oracle: ReferenceEvaluator; an integer attn_mask is added to the scores like a float one."""
    model, feeds = _attention(F32, mask=((3, 5), np.int32))
    feeds["m"] = np.random.default_rng(0).integers(-3, 3, (3, 5)).astype(np.int32)
    check_ref(model, feeds)


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("case", [{"is_causal": 1}, {"is_causal": 1, "mask": ((3, 4), bool)}, {"mask": ((2, 1, 3, 6), F32)},
                                  {"kvh": 2, "is_causal": 1, "sq": 1}])
def test_attention_nonpad_kv_seqlen(case, rank):
    """Oracle: ReferenceEvaluator (Attention-24 nonpad_kv_seqlen: padding plus offset-aligned causal frontier)."""
    model, feeds = _attention(F32, rank, skv=6, opset=24, nonpad=True, **case)
    check_ref(model, feeds)
    check_ref(model, feeds, folded=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [(2, 0), (2, 1), (-1, 1), (0, -1), (1, 1)])
@pytest.mark.parametrize("extra", [{}, {"is_causal": 1}, {"past": 3, "outputs": 3}, {"mask": ((3, 5), bool)}])
def test_attention_sliding_window(dtype, window, extra):
    """Oracle: ReferenceEvaluator (Attention-25 left_window_size / right_window_size)."""
    model, feeds = _attention(dtype, opset=25, left_window_size=window[0], right_window_size=window[1], **extra)
    check_ref(model, feeds)


def test_attention_window_with_nonpad_3d():
    """Oracle: ReferenceEvaluator; window aligned to the per-batch external-cache offset, 3-D inputs, symbolic dims."""
    model, feeds = _attention(F32, 3, skv=6, opset=25, nonpad=True, symbolic=True, left_window_size=1, is_causal=1)
    check_ref(model, feeds)


def test_attention_fully_masked_rows_are_zero():
    """Oracle: ReferenceEvaluator; rows with no attended key give zero output and probabilities, not NaN."""
    model, feeds = _attention(F32, mask=((3, 5), bool), outputs=4, qk_matmul_output_mode=3)
    feeds["m"][1] = False
    check_ref(model, feeds)
    out = sofie_run(model, feeds)
    assert np.all(out[0][:, :, 1] == 0) and np.all(out[3][:, :, 1] == 0)


def test_attention_short_mask_pads_with_masked_keys():
    """Oracle: ReferenceEvaluator (onnxruntime wants the mask as long as the keys); a shorter mask masks
    out the keys past its end."""
    model, feeds = _attention(F32, mask=((3, 3), F32), past=2, outputs=3)
    check_ref(model, feeds)


ATTENTION_ERRORS = [
    ({"rank": 4, "kvh": 3}, 23, r"q_num_heads \(4\) must be a multiple of kv_num_heads \(3\)"),
    ({"rank": 4, "mask": ((3, 9), F32)}, 23, r"attn_mask covers 9 keys, but there are only 5"),
    ({"rank": 4, "mask": ((2, 3, 3, 5), F32)}, 23, r"cannot be broadcast|does not broadcast"),
    ({"rank": 4, "q_num_heads": 4, "kv_num_heads": 4}, 25, r"must not be set for 4-D inputs"),
    ({"rank": 4, "q_num_heads": 2}, 23, r"q_num_heads=2 disagrees with the input heads dim 4"),
    ({"rank": 4, "qk_matmul_output_mode": 4}, 23, r"qk_matmul_output_mode must be one of"),
    ({"rank": 4, "softmax_precision": 10}, 23, r"softmax_precision 10 .* not supported"),
    ({"rank": 4, "left_window_size": -2}, 25, r"left_window_size must be -1 or nonnegative"),
    ({"rank": 4, "past": 2, "nonpad": True}, 24, r"nonpad_kv_seqlen cannot be combined with past_key"),
]


@pytest.mark.parametrize("spec, opset, message", ATTENTION_ERRORS)
def test_attention_errors(spec, opset, message):
    model, feeds = _attention(F32, opset=opset, **spec)
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, feeds)


def test_attention_3d_needs_num_heads():
    node = helper.make_node("Attention", ["q3", "k", "v"], ["y"])
    model = make_model([node], [("q3", F32, [2, 3, 32]), ("k", F32, [2, 5, 32]), ("v", F32, [2, 5, 32])],
                       [("y", F32, None)], opset=23)
    with pytest.raises(ShapeError, match="3-D inputs need the q_num_heads and kv_num_heads attributes"):
        sofie_run(model, {})


def test_attention_past_key_without_past_value():
    model = make_model([_node("Attention", ["q", "k", "v", "", "pk"], ["y"])],
                       [("q", F32, [1, 2, 3, 4]), ("k", F32, [1, 2, 3, 4]), ("v", F32, [1, 2, 3, 4]),
                        ("pk", F32, [1, 2, 2, 4])], [("y", F32, None)], opset=23)
    with pytest.raises(ShapeError, match="past_key and past_value must be given together"):
        sofie_run(model, {})


def test_attention_nonpad_out_of_range_at_run_time():
    model, feeds = _attention(F32, opset=24, nonpad=True, symbolic=True)
    feeds["np"] = np.array([2, 9], np.int64)
    with pytest.raises(SofieError, match=r"nonpad_kv_seqlen 9 is outside \[0, 5\]"):
        sofie_run(model, feeds)


def test_attention_kv_heads_at_run_time():
    """Symbolic head counts are checked when the code runs."""
    dims = {"q": ["N", "H", 3, 4], "k": ["N", "G", 3, 4], "v": ["N", "G", 3, 4]}
    model = make_model([_node("Attention", ["q", "k", "v"], ["y"])], [(k, F32, d) for k, d in dims.items()],
                       [("y", F32, None)], opset=23)
    rng = np.random.default_rng(0)
    feeds = {"q": _rand(rng, (1, 3, 3, 4), F32), "k": _rand(rng, (1, 2, 3, 4), F32), "v": _rand(rng, (1, 2, 3, 4), F32)}
    with pytest.raises(SofieError, match=r"q_num_heads \(3\) must be a multiple of kv_num_heads \(2\)"):
        sofie_run(model, feeds)


# ---- LinearAttention -----------------------------------------------------------------

def _linear_attention(rule="gated_delta", dtype=F32, b=2, t=4, qh=4, kvh=2, dk=3, dv=5, past=True, decay_width="head",
                      beta_width="head", symbolic=False, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    feeds = {"q": _rand(rng, (b, t, qh * dk), dtype), "k": _rand(rng, (b, t, kvh * dk), dtype) * 0.5,
             "v": _rand(rng, (b, t, kvh * dv), dtype)}
    names = ["q", "k", "v", "ps" if past else ""]
    if past:
        feeds["ps"] = _rand(rng, (b, kvh, dk, dv), dtype)
    if rule in ("gated", "gated_delta"):
        width = kvh if decay_width == "head" else kvh * dk
        feeds["g"] = -rng.random((b, t, width)).astype(dtype)
    names.append("g" if "g" in feeds else "")
    if rule in ("delta", "gated_delta"):
        feeds["beta"] = rng.random((b, t, kvh if beta_width == "head" else 1)).astype(dtype)
    names.append("beta" if "beta" in feeds else "")
    while names[-1] == "":
        names.pop()
    lead = ["N", "T"] if symbolic else [b, t]
    dims = {n: (lead + [v.shape[2]] if n != "ps" else (lead[:1] + list(v.shape[1:]))) for n, v in feeds.items()}
    node = _node("LinearAttention", names, ["y", "state"], q_num_heads=qh, kv_num_heads=kvh, update_rule=rule, **attrs)
    model = make_model([node], [(n, dtype, dims[n]) for n in names if n], [("y", dtype, None), ("state", dtype, None)],
                       opset=27)
    return model, feeds


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("heads", [(4, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize("past", [True, False])
def test_linear_attention(dtype, rule, heads, past):
    """Oracle: ReferenceEvaluator (LinearAttention-27; onnxruntime has no opset 27)."""
    model, feeds = _linear_attention(rule, dtype, qh=heads[0], kvh=heads[1], past=past)
    check_ref(model, feeds)


@pytest.mark.parametrize("widths", [("key", "head"), ("head", "one"), ("key", "one")])
def test_linear_attention_gate_widths(widths):
    """Oracle: ReferenceEvaluator; decay per key dim, beta shared by the heads."""
    model, feeds = _linear_attention(decay_width=widths[0], beta_width=widths[1])
    check_ref(model, feeds)


def test_linear_attention_scale_symbolic_and_folded():
    """Oracle: ReferenceEvaluator; explicit scale, symbolic batch and steps, then folded."""
    model, feeds = _linear_attention(symbolic=True, scale=0.25, chunk_size=2)
    check_ref(model, feeds)
    check_ref(model, feeds, folded=True)


@pytest.mark.parametrize("rule, drop, message", [
    ("gated", "g", r"update_rule 'gated' requires decay"),
    ("linear", None, None),
    ("bogus", None, r"update_rule 'bogus' is not one of"),
])
def test_linear_attention_errors(rule, drop, message):
    model, feeds = _linear_attention("delta" if rule == "linear" else rule)
    node = model.graph.node[0]
    if rule == "linear":
        node.attribute[-1].s = b"linear"
        message = r"update_rule 'linear' forbids beta"
    if drop:
        node.input[list(node.input).index(drop)] = ""
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, feeds)


def test_linear_attention_heads_must_divide():
    model, feeds = _linear_attention(qh=3, kvh=2)
    with pytest.raises(ShapeError, match=r"q_num_heads \(3\) must be a positive multiple of kv_num_heads \(2\)"):
        sofie_run(model, feeds)


# ---- RMSNormalization ------------------------------------------------------------------

def _rms(dtype, shape, scale_shape, symbolic=False, scale_dtype=None, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    scale_dtype = scale_dtype or dtype
    feeds = {"x": _rand(rng, shape, dtype) * 3, "s": _rand(rng, scale_shape, scale_dtype)}
    dims = ["N", *shape[1:]] if symbolic else list(shape)
    model = make_model([_node("RMSNormalization", ["x", "s"], ["y"], **attrs)],
                       [("x", dtype, dims), ("s", scale_dtype, list(scale_shape))], [("y", scale_dtype, None)], opset=23)
    return model, feeds


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis, scale_shape", [(-1, (5,)), (2, (4, 5)), (1, (3, 4, 5)), (0, (2, 3, 4, 5)), (-2, (1, 5)),
                                               (1, (3, 1, 1)), (-1, (1,))])
def test_rms_normalization(check_model, dtype, axis, scale_shape):
    """Oracle: onnxruntime (RMSNormalization-23), scale broadcast across the normalised dims."""
    model, feeds = _rms(dtype, (2, 3, 4, 5), scale_shape, axis=axis)
    check_model(model, feeds)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stash_type", [1, 11])
def test_rms_normalization_epsilon_stash(check_model, dtype, stash_type):
    """Oracle: onnxruntime; epsilon large enough to matter, statistics in float32 or float64."""
    model, feeds = _rms(dtype, (3, 6), (6,), epsilon=0.5, stash_type=stash_type)
    check_model(model, feeds)


def test_rms_normalization_symbolic_and_folded(check_model, check_folded):
    """Oracle: onnxruntime; symbolic batch at two sizes, then every input constant."""
    for n in (1, 4):
        model, feeds = _rms(F32, (n, 3, 8), (8,), symbolic=True)
        check_model(model, feeds)
    model, feeds = _rms(F64, (2, 3, 8), (3, 8), axis=1)
    check_folded(model, feeds)


def test_rms_normalization_scale_type():
    """Oracle: ReferenceEvaluator values; Y takes the scale's type (V, as the schema says; the reference
    casts to X's type instead)."""
    model, feeds = _rms(F64, (2, 6), (6,), scale_dtype=F32)
    (ours,), (ref,) = sofie_run(model, feeds), ReferenceEvaluator(model).run(None, feeds)
    assert ours.dtype == F32
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attrs, scale_shape, message", [
    ({"axis": 3}, (5,), r"axis 3 is out of range for rank 3"),
    ({}, (4,), r"cannot be broadcast|does not broadcast"),
    ({"stash_type": 6}, (5,), r"stash_type 6 is not supported"),
])
def test_rms_normalization_errors(attrs, scale_shape, message):
    model, feeds = _rms(F32, (2, 3, 5), scale_shape, **attrs)
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, feeds)


# ---- RotaryEmbedding --------------------------------------------------------------------

def _rotary(dtype=F32, rank=4, b=2, h=3, s=4, d=8, rot=0, positions=True, symbolic=False, max_pos=10, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    half = (rot or d) // 2
    x_shape = (b, h, s, d) if rank == 4 else (b, s, h * d)
    cache = (max_pos, half) if positions else (b, s, half)
    angles = rng.random(cache) * 3
    feeds = {"x": _rand(rng, x_shape, dtype), "c": np.cos(angles).astype(dtype), "sn": np.sin(angles).astype(dtype)}
    names = ["x", "c", "sn"]
    if positions:
        feeds["p"] = rng.integers(0, max_pos, (b, s)).astype(np.int64)
        names.append("p")
    if rank == 3:
        attrs["num_heads"] = h
    sym = {"x": ["N", h, "S", d] if rank == 4 else ["N", "S", h * d], "c": list(cache) if positions else ["N", "S", half],
           "p": ["N", "S"]}
    sym["sn"] = sym["c"]
    inputs = [(n, feeds[n].dtype, sym[n] if symbolic else list(feeds[n].shape)) for n in names]
    node = _node("RotaryEmbedding", names, ["y"], rotary_embedding_dim=rot, **attrs)
    return make_model([node], inputs, [("y", dtype, None)], opset=23), feeds


ROTARY_CASES = {
    "plain": {}, "interleaved": {"interleaved": 1}, "partial": {"rot": 4}, "partial_interleaved": {"rot": 6, "interleaved": 1},
    "no_positions": {"positions": False}, "no_positions_interleaved": {"positions": False, "interleaved": 1},
}


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("case", ROTARY_CASES)
def test_rotary_embedding(check_model, case, rank):
    """Oracle: onnxruntime (RotaryEmbedding-23, float32)."""
    model, feeds = _rotary(F32, rank, **ROTARY_CASES[case])
    check_model(model, feeds)


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("case", ROTARY_CASES)
def test_rotary_embedding_float64(case, rank):
    """Oracle: ReferenceEvaluator (float64 is outside the op's ONNX types, onnxruntime refuses it)."""
    model, feeds = _rotary(F64, rank, **ROTARY_CASES[case])
    check_ref(model, feeds)


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("positions", [True, False])
def test_rotary_embedding_symbolic(check_model, rank, positions):
    """Oracle: onnxruntime; symbolic batch and sequence at two sizes."""
    for b, s in ((2, 4), (1, 7)):
        model, feeds = _rotary(F32, rank, b=b, s=s, positions=positions, symbolic=True, rot=6)
        check_model(model, feeds)


def test_rotary_embedding_folded(check_folded):
    """Oracle: onnxruntime; every input constant (numpy reference)."""
    model, feeds = _rotary(F32, 3, rot=4, interleaved=1)
    check_folded(model, feeds)


def test_rotary_embedding_position_out_of_range():
    model, feeds = _rotary(F32, 4, symbolic=True)
    feeds["p"][1, 2] = 10
    with pytest.raises(SofieError, match=r"position id 10 is outside \[0, 10\)"):
        sofie_run(model, feeds)


@pytest.mark.parametrize("spec, message", [
    ({"rot": 5}, r"rotary_embedding_dim 5 must be even"),
    ({"rot": 10}, r"rotary_embedding_dim 10 must be even and in \(0, 8\]"),
    ({"num_heads": 2}, r"num_heads=2 disagrees with the heads dim 3"),
])
def test_rotary_embedding_errors(spec, message):
    model, feeds = _rotary(F32, 4, **spec)
    with pytest.raises(ShapeError, match=message):
        sofie_run(model, feeds)


def test_rotary_embedding_3d_needs_num_heads():
    model, feeds = _rotary(F32, 3)
    attrs = model.graph.node[0].attribute
    del attrs[[a.name for a in attrs].index("num_heads")]
    with pytest.raises(ShapeError, match="3-D input needs the num_heads attribute"):
        sofie_run(model, feeds)


# ---- SwiGLU --------------------------------------------------------------------------------

def _swiglu(dtype, shape, dims=None, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    feeds = {"a": _rand(rng, shape, dtype) * 4, "b": _rand(rng, shape, dtype)}
    dims = dims or list(shape)
    model = make_model([_node("SwiGLU", ["a", "b"], ["y"], **attrs)], [("a", dtype, dims), ("b", dtype, dims)],
                       [("y", dtype, None)], opset=28)
    return model, feeds


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 1.702, -0.5])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 8)])
def test_swiglu(dtype, alpha, shape):
    """Oracle: ReferenceEvaluator (SwiGLU-28; onnxruntime has no opset 28)."""
    model, feeds = _swiglu(dtype, shape, alpha=alpha)
    check_ref(model, feeds)


def test_swiglu_symbolic_and_folded():
    """Oracle: ReferenceEvaluator; symbolic dims, then every input constant."""
    model, feeds = _swiglu(F32, (3, 5), dims=["N", "D"])
    check_ref(model, feeds)
    check_ref(model, feeds, folded=True)


def test_swiglu_shapes_must_match():
    model = make_model([_node("SwiGLU", ["a", "b"], ["y"])], [("a", F32, [2, 3]), ("b", F32, [1, 3])],
                       [("y", F32, None)], opset=28)
    with pytest.raises(ShapeError, match=r"must have one shape and type"):
        sofie_run(model, {})
