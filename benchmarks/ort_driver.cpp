// onnxruntime called from C++ through its C API, timed with the loop of the native engine (timing.hxx):
// the "ort_cpp" engine of benchmarks/latency.py, which writes the spec file and reads the JSON line printed.
//
// usage: ort_driver SPEC TARGET REPEATS [LIBRARY WEIGHTS]
// SPEC lines: "model PATH", then one line per input and per output, in the model's order:
//             "in|out NAME FILE RANK D0 D1 ..." (FILE: raw float32; inputs are read, outputs written).
//
// One session with one intra-op and one inter-op thread and every graph optimisation, as the Python
// engine's.  Input and output tensors are OrtValues over buffers allocated once, bound once to an IoBinding:
// each timed call is RunWithBinding alone, as a C++ user running one model over and over would write it.
//
// With LIBRARY and WEIGHTS (a sofie-rdf native library and its weights file, "-" for none), the driver also
// loads that library and times both engines in alternating measurements in this one process, through the
// library's C ABI (sofie_create, sofie_infer: one function call around the C++ Session's infer), and prints the
// library's times as "paired_native" next to onnxruntime's "per_call": the machine's speed drifts by 10 to 25%
// over seconds, and measurements minutes apart compare two moments.
#include "ort_capi.hxx"
#include "timing.hxx"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace ort_capi;

template <class T>
using Owned = std::unique_ptr<T, void (*)(T *)>;

struct Tensor {
   std::string name, file;
   std::vector<std::int64_t> shape;
   std::vector<float> data;
};

struct Spec {
   std::string model;
   std::vector<Tensor> inputs, outputs;
};

Spec read_spec(const char *path)
{
   std::ifstream in(path);
   if (!in)
      throw std::runtime_error(std::string("cannot read spec file ") + path);
   Spec spec;
   std::string line, kind;
   while (std::getline(in, line)) {
      std::istringstream fields(line);
      fields >> kind;
      if (kind == "model") {
         fields >> spec.model;
         continue;
      }
      Tensor t;
      std::size_t rank = 0, size = 1;
      fields >> t.name >> t.file >> rank;
      t.shape.resize(rank);
      for (auto &d : t.shape) {
         fields >> d;
         size *= static_cast<std::size_t>(d);
      }
      if (!fields)
         throw std::runtime_error("bad spec line: " + line);
      t.data.resize(size);
      (kind == "in" ? spec.inputs : spec.outputs).push_back(std::move(t));
   }
   return spec;
}

void read_floats(Tensor &t)
{
   std::ifstream f(t.file, std::ios::binary);
   if (!f.read(reinterpret_cast<char *>(t.data.data()), t.data.size() * sizeof(float)))
      throw std::runtime_error("cannot read " + std::to_string(t.data.size()) + " floats of " + t.name + " from " +
                               t.file);
}

void write_floats(const Tensor &t)
{
   std::ofstream(t.file, std::ios::binary)
      .write(reinterpret_cast<const char *>(t.data.data()), t.data.size() * sizeof(float));
}

Owned<Session> make_session(const Env *env, const std::string &model)
{
   const Api &ort = api();
   SessionOptions *raw_options = nullptr;
   check(ort.CreateSessionOptions(&raw_options), "CreateSessionOptions");
   Owned<SessionOptions> options(raw_options, ort.ReleaseSessionOptions);
   check(ort.SetIntraOpNumThreads(raw_options, 1), "SetIntraOpNumThreads");
   check(ort.SetInterOpNumThreads(raw_options, 1), "SetInterOpNumThreads");
   check(ort.SetSessionGraphOptimizationLevel(raw_options, ENABLE_ALL), "SetSessionGraphOptimizationLevel");
   Session *session = nullptr;
   check(ort.CreateSession(env, model.c_str(), raw_options, &session), ("CreateSession " + model).c_str());
   return {session, ort.ReleaseSession};
}

Owned<Value> wrap(const MemoryInfo *cpu, Tensor &t)
{
   Value *value = nullptr;
   check(api().CreateTensorWithDataAsOrtValue(cpu, t.data.data(), t.data.size() * sizeof(float), t.shape.data(),
                                              t.shape.size(), TENSOR_FLOAT, &value),
         ("CreateTensorWithDataAsOrtValue " + t.name).c_str());
   return {value, api().ReleaseValue};
}

// A sofie-rdf native library through its C ABI (sofie_rdf/targets/_cxx/c_abi.py), inputs and outputs of its own.
class Library {
public:
   Library(const char *path, const char *weights, const Spec &spec)
   {
      handle_ = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (!handle_)
         throw std::runtime_error(std::string("dlopen: ") + dlerror());
      auto create = reinterpret_cast<void *(*)(const char *)>(symbol("sofie_create"));
      infer_ = reinterpret_cast<int (*)(void *, const std::size_t *, void *const *)>(symbol("sofie_infer"));
      error_ = reinterpret_cast<const char *(*)()>(symbol("sofie_last_error"));
      destroy_ = reinterpret_cast<void (*)(void *)>(symbol("sofie_destroy"));
      session_ = create(std::string(weights) == "-" ? nullptr : weights);
      if (!session_)
         throw std::runtime_error(std::string("sofie_create: ") + error_());
      for (const auto &t : spec.inputs)
         buffers_.push_back(const_cast<float *>(t.data.data()));
      for (const auto &t : spec.outputs) {
         outputs_.emplace_back(t.data.size());
         buffers_.push_back(outputs_.back().data());
      }
   }
   Library(const Library &) = delete;
   Library &operator=(const Library &) = delete;
   ~Library()
   {
      if (session_)
         destroy_(session_);
      dlclose(handle_);
   }
   void infer()
   {
      if (infer_(session_, dims_, buffers_.data()) != 0)
         throw std::runtime_error(std::string("sofie_infer: ") + error_());
   }

private:
   void *symbol(const char *name)
   {
      void *f = dlsym(handle_, name);
      if (!f)
         throw std::runtime_error(std::string("dlsym ") + name + ": " + dlerror());
      return f;
   }
   void *handle_ = nullptr, *session_ = nullptr;
   int (*infer_)(void *, const std::size_t *, void *const *) = nullptr;
   const char *(*error_)() = nullptr;
   void (*destroy_)(void *) = nullptr;
   std::vector<std::vector<float>> outputs_;
   std::vector<void *> buffers_;
   const std::size_t dims_[1] = {0}; // the benchmark's models have no symbolic dims
};

void print_times(const char *key, const std::vector<double> &times)
{
   std::printf(", \"%s\": [", key);
   for (std::size_t i = 0; i < times.size(); ++i)
      std::printf("%s%.9g", i ? ", " : "", times[i]);
   std::printf("]");
}

int run(const char *spec_path, double target, int repeats, const char *library, const char *weights)
{
   const Api &ort = api();
   Spec spec = read_spec(spec_path);
   for (auto &t : spec.inputs)
      read_floats(t);

   auto t0 = std::chrono::steady_clock::now();
   Env *raw_env = nullptr;
   check(ort.CreateEnv(LOGGING_WARNING, "sofie_rdf_bench", &raw_env), "CreateEnv");
   Owned<Env> env(raw_env, ort.ReleaseEnv);
   Owned<Session> session = make_session(raw_env, spec.model);
   double construct = sofie_rdf_bench::seconds_since(t0);

   MemoryInfo *raw_cpu = nullptr;
   check(ort.CreateCpuMemoryInfo(ARENA_ALLOCATOR, MEM_TYPE_DEFAULT, &raw_cpu), "CreateCpuMemoryInfo");
   Owned<MemoryInfo> cpu(raw_cpu, ort.ReleaseMemoryInfo);
   RunOptions *raw_run_options = nullptr;
   check(ort.CreateRunOptions(&raw_run_options), "CreateRunOptions");
   Owned<RunOptions> run_options(raw_run_options, ort.ReleaseRunOptions);
   IoBinding *raw_binding = nullptr;
   check(ort.CreateIoBinding(session.get(), &raw_binding), "CreateIoBinding");
   Owned<IoBinding> binding(raw_binding, ort.ReleaseIoBinding);
   std::vector<Owned<Value>> values;
   for (auto &t : spec.inputs) {
      values.push_back(wrap(raw_cpu, t));
      check(ort.BindInput(raw_binding, t.name.c_str(), values.back().get()), ("BindInput " + t.name).c_str());
   }
   for (auto &t : spec.outputs) {
      values.push_back(wrap(raw_cpu, t));
      check(ort.BindOutput(raw_binding, t.name.c_str(), values.back().get()), ("BindOutput " + t.name).c_str());
   }

   auto call = [&] { check(ort.RunWithBinding(session.get(), raw_run_options, raw_binding), "RunWithBinding"); };
   t0 = std::chrono::steady_clock::now();
   call();
   double first = sofie_rdf_bench::seconds_since(t0);
   for (const auto &t : spec.outputs)
      write_floats(t);
   std::vector<double> per_call, paired;
   if (library) {
      Library sofie(library, weights, spec);
      std::tie(paired, per_call) = sofie_rdf_bench::time_paired([&] { sofie.infer(); }, call, target, repeats);
   } else {
      per_call = sofie_rdf_bench::time_calls(call, target, repeats);
   }

   std::printf("{\"version\": \"%s\", \"construct_s\": %g, \"first_call_s\": %g, \"peak_rss_mb\": %g",
               OrtGetApiBase()->GetVersionString(), construct, first, sofie_rdf_bench::peak_rss_kb() / 1024.0);
   print_times("per_call", per_call);
   if (library)
      print_times("paired_native", paired);
   std::printf("}\n");
   return 0;
}

} // namespace

int main(int argc, char **argv)
{
   if (argc != 4 && argc != 6) {
      std::fprintf(stderr, "usage: %s SPEC TARGET REPEATS [LIBRARY WEIGHTS]\n", argv[0]);
      return 2;
   }
   try {
      return run(argv[1], std::atof(argv[2]), std::atoi(argv[3]), argc == 6 ? argv[4] : nullptr,
                 argc == 6 ? argv[5] : nullptr);
   } catch (const std::exception &e) {
      std::fprintf(stderr, "ort_driver: %s\n", e.what());
      return 1;
   }
}
