"""The CUDA target's kernels under compute-sanitizer (``benchmarks/gpu_session.sh``): each family of
tests/cuda_models.py built for the GPU and called at batch 1 and 7, directly, captured and replayed, with no
reference to compare against (the numbers are test-gpu's business): memcheck and racecheck see every launch of
the generated kernels, and pytest, onnxruntime and the comparisons stay out of the slow instrumented run.

    compute-sanitizer --tool memcheck --kernel-name kns=TMVA_SOFIE python3 -m benchmarks.gpu_sanitize [FAMILY...]
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(families: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    import cuda_models
    import test_cuda_numerics as numerics

    import sofie_rdf as sr

    for name in families or sorted(numerics.FAMILIES):
        proto = getattr(cuda_models, name)()
        sess = sr.compile(proto, backend="cuda")
        for batch in (1, 7):
            feeds = numerics._feeds(proto, name, batch, seed=batch)
            for _ in range(3):  # direct, captured in a CUDA graph, replayed
                sess.infer(*feeds.values())
        print(f"{name}: ran", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
