# sofie-rdf: `make demo` runs the main example, `make test` the test suite, `make bench` the benchmarks.
# Both install what is missing first, so they work on a fresh machine.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .make-installed

.PHONY: install demo test test-full test-gpu conformance bench bench-gpu fuzz docs clean

$(STAMP): pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PYTHON) tutorials/demo.py

# Test processes (pytest-xdist): the CI machine has two cores; each process holds ROOT and torch (~1 GB).
# --dist loadgroup keeps a module marked xdist_group on one process (its module fixture is then built once).
TEST_JOBS ?= 2
PYTEST := $(PYTHON) -m pytest -q -n $(TEST_JOBS) --dist loadgroup

# make test JITs at -O0: Cling's -O3 code generation is most of a JIT test's time (1.7x the run of the conv,
# pool and RDataFrame tests), while what the tests check is the generated code's meaning; native builds keep
# g++ -O3, and make test-full runs with the JIT's own flags (-O3, sofie_rdf/_root.py).  The default backend
# ("auto": native where a compiler is found) is the JIT's here (SOFIE_RDF_BACKEND=jit): g++ -O3 for each model
# the tests compile without naming a backend would add minutes; tests/test_core.py checks what "auto" picks.
TEST_CLING_ARGS ?= -O0 -march=native -fno-trapping-math

test: $(STAMP)
	$(PYTHON) -m ruff check sofie_rdf tests tutorials data benchmarks
	EXTRA_CLING_ARGS="$(TEST_CLING_ARGS)" SOFIE_RDF_BACKEND=jit $(PYTEST) -m "not slow"

# The long tests make test leaves out: every ONNX backend node case of the supported operators, every model
# of onnx's suites, the larger tree ensembles, the whole product of each parametrized sweep (make test runs a
# covering subset: tests/conftest.py), the kernels on the narrower instruction sets (tests/test_isa.py).
test-full: $(STAMP)
	$(PYTEST) -m slow

# The CUDA target on a GPU: each family against onnxruntime on the CPU, device arrays, a columnar chunk. Runs
# with what the machine has (no install: GPU machines may have no package registry); nvcc from the [cuda]
# extra, CUDA_HOME or the PATH.
test-gpu:
	$(PYTHON) -m pytest -q -m gpu tests/test_cuda_numerics.py

# The CUDA target against torch (eager and CUDA-graph replay) on the same GPU at batch 1, 64, 1024, 16384, with
# device memory (the Session's own, torch's peak) and the device call's overhead: writes benchmarks/results/gpu.md,
# gpu_calls.md and gpu.png; BENCH_ARGS=--profile adds each model's per-kernel CUDA time (gpu_profile.md).
# benchmarks/gpu_session.sh runs test-gpu and bench-gpu on a lent GPU machine, logs under $OUT.
bench-gpu:
	$(PYTHON) -m benchmarks.gpu $(BENCH_ARGS)

# Every ONNX backend node case of the installed onnx, supported or not: writes docs/onnx_conformance.md.
conformance: $(STAMP)
	$(PYTHON) tests/onnx_conformance.py

# RDataFrame throughput and per-model latency/memory against onnxruntime and torch (about 20 minutes);
# writes benchmarks/results/. `make bench BENCH_ARGS=--quick` is a short run into benchmarks/results/quick/.
bench: $(STAMP)
	$(PYTHON) -c "import matplotlib" 2>/dev/null || $(PIP) install --quiet matplotlib
	$(PYTHON) -c "import treelite, tl2cgen" 2>/dev/null || $(PIP) install --quiet treelite tl2cgen
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

# The ONNX parser fuzz target, long (tests/fuzz/onnx_parser.py; make test runs 1,500 iterations).
fuzz: $(STAMP)
	$(PYTHON) -m tests.fuzz.onnx_parser --iterations 50000 --seed $${SEED:-1}

# The documentation site (mkdocs.yml, pages in docs/) into site/; --strict fails on a broken link, anchor or API
# reference. make test builds it too (tests/test_docs.py). `mkdocs serve` previews it while editing.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

clean:
	rm -rf $(STAMP) build *.egg-info .pytest_cache site
