// Timing loop shared by every C++ benchmark of benchmarks/latency.py: the native driver compiles it with
// the flags sofie_rdf.build uses, the JIT benchmark declares it to Cling.  benchmarks/latency.py's
// time_calls is the same algorithm in Python, for the engines called from Python.
#ifndef SOFIE_RDF_BENCH_TIMING_HXX
#define SOFIE_RDF_BENCH_TIMING_HXX

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

namespace sofie_rdf_bench {

inline double seconds_since(std::chrono::steady_clock::time_point start)
{
   return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Tells the compiler that any memory may have been read or changed, so that it can neither drop nor hoist
// a call whose inputs did not change (Cling sees the inline infer of the JIT header and would).
inline void clobber_memory()
{
   asm volatile("" : : : "memory");
}

// Seconds per call of `call`: `repeats` measurements of n back-to-back calls each, n chosen so that one
// measurement lasts about `target` seconds (at least one call).  Calibration doubles n from 1 until a
// batch takes a tenth of the target, which also warms caches and branch predictors up.
template <class F>
std::vector<double> time_calls(F &&call, double target, int repeats)
{
   long n = 1;
   for (;;) {
      auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < n; ++i) {
         call();
         clobber_memory();
      }
      double dt = seconds_since(start);
      if (dt >= target / 10) {
         n = dt >= target ? 1 : static_cast<long>(n * target / dt) + 1;
         break;
      }
      n *= 2;
   }
   std::vector<double> per_call;
   for (int r = 0; r < repeats; ++r) {
      auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < n; ++i) {
         call();
         clobber_memory();
      }
      per_call.push_back(seconds_since(start) / n);
   }
   return per_call;
}

// Peak resident set size of this process in kB (VmHWM), 0 where /proc is missing.
inline long peak_rss_kb()
{
   std::ifstream status("/proc/self/status");
   std::string key;
   long value = 0;
   while (status >> key) {
      if (key == "VmHWM:") {
         status >> value;
         return value;
      }
      status.ignore(1 << 12, '\n');
   }
   return 0;
}

} // namespace sofie_rdf_bench

#endif
