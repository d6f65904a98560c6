// Timing loop shared by every C++ benchmark of benchmarks/latency.py: the native driver compiles it with
// the flags sofie_rdf.build uses, the JIT benchmark declares it to Cling.  benchmarks/latency.py's
// time_calls is the same algorithm in Python, for the engines called from Python.
#ifndef SOFIE_RDF_BENCH_TIMING_HXX
#define SOFIE_RDF_BENCH_TIMING_HXX

#include <chrono>
#include <fstream>
#include <string>
#include <utility>
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

// Seconds per call of n back-to-back calls of `call`.
template <class F>
double seconds_per_call(F &&call, long n)
{
   auto start = std::chrono::steady_clock::now();
   for (long i = 0; i < n; ++i) {
      call();
      clobber_memory();
   }
   return seconds_since(start) / n;
}

// Calls per measurement of about `target` seconds (at least one): n doubles from 1 until a batch takes a tenth of
// the target, which also warms caches and branch predictors up.
template <class F>
long calls_for(F &&call, double target)
{
   for (long n = 1;; n *= 2) {
      const double dt = seconds_per_call(call, n) * n;
      if (dt >= target / 10)
         return dt >= target ? 1 : static_cast<long>(n * target / dt) + 1;
   }
}

// Seconds per call of `call`: `repeats` measurements of n back-to-back calls each, n chosen so that one
// measurement lasts about `target` seconds.
template <class F>
std::vector<double> time_calls(F &&call, double target, int repeats)
{
   const long n = calls_for(call, target);
   std::vector<double> per_call;
   for (int r = 0; r < repeats; ++r)
      per_call.push_back(seconds_per_call(call, n));
   return per_call;
}

// time_calls of two calls in alternating measurements (a first, then b, then b, then a, ...), so that both see
// the same moments of a machine whose speed drifts: {a's seconds per call, b's}.
template <class A, class B>
std::pair<std::vector<double>, std::vector<double>> time_paired(A &&a, B &&b, double target, int repeats)
{
   const long na = calls_for(a, target), nb = calls_for(b, target);
   std::pair<std::vector<double>, std::vector<double>> out;
   for (int r = 0; r < repeats; ++r) {
      if (r % 2 == 0) {
         out.first.push_back(seconds_per_call(a, na));
         out.second.push_back(seconds_per_call(b, nb));
      } else {
         out.second.push_back(seconds_per_call(b, nb));
         out.first.push_back(seconds_per_call(a, na));
      }
   }
   return out;
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
