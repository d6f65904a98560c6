// A host emulation of the CUDA runtime and cuBLAS calls that sofie-rdf's generated CUDA code makes, for the tests
// (tests/cuda_emulation.py): the CUDA target's code, kernels included, runs on a CPU and is compared with
// onnxruntime where no GPU is present. Kernels run as host functions, one block of at most 32 threads
// (std::thread) per launch: every kernel loops with a grid stride, so one block covers any grid, and 32 threads
// make one warp for the block reductions (__syncthreads: a barrier; __shfl_xor_sync: an exchange through
// memory). Stream work runs at once, or is recorded while a graph is captured and run when it is launched.
// The work a call does is counted as it runs (kernel launches, library calls, copies: emu_counts), so the tests
// can check that a call's launches do not grow with the batch; device memory can be capped (emu_set_memory_cap)
// to see what a Session does when an allocation fails.
#pragma once

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using std::isfinite;  // device code calls the math functions unqualified

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dim3 {
   unsigned x = 1, y = 1, z = 1;
   dim3(unsigned x_ = 1) : x(x_) {}
};

namespace emu {
// Per thread, the block's threads included: launches from several host threads (a Dask or RDataFrame pool calling
// Sessions of emulated libraries side by side) must not see each other's block size.
inline thread_local dim3 thread_index, block_index, block_dim, grid_dim;

// The block being run: its barrier and the lanes' values of a shuffle.
struct Block {
   std::barrier<> sync;
   std::vector<unsigned long long> lanes;
   explicit Block(unsigned threads) : sync(threads), lanes(threads) {}
};
inline thread_local Block *block = nullptr;

struct Graph {
   std::vector<std::function<void()>> work;
};
inline thread_local Graph *capturing = nullptr;

// What the stream work has run since the last reset: kernel launches, library calls (cuBLAS, cuBLASLt), copies
// and fills.
enum Work { kKernel, kLibrary, kCopy, kWorkKinds };
inline long long counts[kWorkKinds] = {};

// Device memory allowed in all (0: no cap) and in use, as cudaMalloc sees it.
inline size_t memory_cap = 0, memory_used = 0;

// Stream work of a kind: done now, or recorded into the graph being captured; counted when it runs.
inline void submit(Work kind, std::function<void()> work)
{
   auto counted = [kind, work = std::move(work)] {
      ++counts[kind];
      work();
   };
   if (capturing)
      capturing->work.push_back(std::move(counted));
   else
      counted();
}

template <typename F>
void run(unsigned threads, const F &kernel)
{
   Block state(threads);
   std::vector<std::thread> pool;
   for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&state, &kernel, t, threads] {
         grid_dim = dim3(1);
         block_dim = dim3(threads);
         thread_index = dim3(t);
         block_index = dim3(0);
         block = &state;
         kernel();
      });
   for (auto &thread : pool)
      thread.join();
}

template <typename F>
void launch(dim3, dim3 threads, size_t, void *, F kernel)
{
   const unsigned n = threads.x < 32 ? threads.x : 32;
   submit(kKernel, [n, kernel] { run(n, kernel); });
}

inline std::mutex atomics;
} // namespace emu

#define threadIdx (::emu::thread_index)
#define blockIdx (::emu::block_index)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads()
{
   emu::block->sync.arrive_and_wait();
}

template <typename T>
T __shfl_xor_sync(unsigned, T v, int offset)
{
   static_assert(sizeof(T) <= sizeof(unsigned long long));
   unsigned long long bits = 0;
   std::memcpy(&bits, &v, sizeof(T));
   emu::block->lanes[threadIdx.x] = bits;
   __syncthreads();
   bits = emu::block->lanes[threadIdx.x ^ unsigned(offset)];
   __syncthreads();
   T out;
   std::memcpy(&out, &bits, sizeof(T));
   return out;
}

template <typename T>
T atomicCAS(T *p, T compare, T value)
{
   std::lock_guard<std::mutex> lock(emu::atomics);
   const T old = *p;
   if (old == compare)
      *p = value;
   return old;
}

template <typename T>
T atomicAdd(T *p, T value)
{
   std::lock_guard<std::mutex> lock(emu::atomics);
   const T old = *p;
   *p = old + value;
   return old;
}

inline unsigned __float_as_uint(float v) { unsigned u; std::memcpy(&u, &v, 4); return u; }
inline float __uint_as_float(unsigned u) { float v; std::memcpy(&v, &u, 4); return v; }
inline long long __double_as_longlong(double v) { long long u; std::memcpy(&u, &v, 8); return u; }
inline double __longlong_as_double(long long u) { double v; std::memcpy(&v, &u, 8); return v; }

// ---- the runtime -------------------------------------------------------------------------------------------
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaStreamCaptureMode { cudaStreamCaptureModeThreadLocal };
typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;
typedef emu::Graph *cudaGraph_t;
typedef emu::Graph *cudaGraphExec_t;
constexpr unsigned cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2;

inline const char *cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
inline std::map<void *, size_t> allocations;  // pointer -> bytes (for memory_used)
inline cudaError_t cudaMalloc(void **p, size_t bytes)
{
   *p = nullptr;
   if (emu::memory_cap && emu::memory_used + bytes > emu::memory_cap)
      return cudaErrorMemoryAllocation;
   *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
   if (!*p)
      return cudaErrorMemoryAllocation;
   emu::memory_used += bytes;
   allocations[*p] = bytes;
   return cudaSuccess;
}
inline cudaError_t cudaFree(void *p)
{
   const auto found = allocations.find(p);
   if (found != allocations.end()) {
      emu::memory_used -= found->second;
      allocations.erase(found);
   }
   std::free(p);
   return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind)
{
   std::memcpy(dst, src, bytes);
   return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind, cudaStream_t)
{
   emu::submit(emu::kCopy, [=] { std::memcpy(dst, src, bytes); });
   return cudaSuccess;
}
inline cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                     size_t height, cudaMemcpyKind, cudaStream_t)
{
   emu::submit(emu::kCopy, [=] {
      for (size_t r = 0; r < height; ++r)
         std::memcpy(static_cast<char *>(dst) + r * dpitch, static_cast<const char *>(src) + r * spitch, width);
   });
   return cudaSuccess;
}
inline cudaError_t cudaMemset(void *p, int value, size_t bytes) { std::memset(p, value, bytes); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t)
{
   emu::submit(emu::kCopy, [=] { std::memset(p, value, bytes); });
   return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
   *s = reinterpret_cast<cudaStream_t>(new char);
   return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) { delete reinterpret_cast<char *>(s); return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
   *e = reinterpret_cast<cudaEvent_t>(new char);
   return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete reinterpret_cast<char *>(e); return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode)
{
   emu::capturing = new emu::Graph;
   return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *graph)
{
   *graph = emu::capturing;
   emu::capturing = nullptr;
   return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
   *exec = new emu::Graph(*graph);
   return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t)
{
   for (auto &work : exec->work)
      work();
   return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) { delete graph; return cudaSuccess; }
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { delete exec; return cudaSuccess; }

// ---- what the tests read (tests/cuda_emulation.py) -----------------------------------------------------------
// The work run since the last reset: kernel launches, library calls, copies; then the counts start again.
extern "C" __attribute__((visibility("default"))) void emu_counts(long long *out)
{
   for (int k = 0; k < emu::kWorkKinds; ++k) {
      out[k] = emu::counts[k];
      emu::counts[k] = 0;
   }
}

// Caps the device memory cudaMalloc hands out (0: no cap); returns the bytes in use now.
extern "C" __attribute__((visibility("default"))) size_t emu_set_memory_cap(size_t bytes)
{
   emu::memory_cap = bytes;
   return emu::memory_used;
}
