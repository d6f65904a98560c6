// The part of onnxruntime's C API that benchmarks/ort_driver.cpp calls, declared by hand.
//
// The onnxruntime pip wheel ships libonnxruntime.so but no headers, and its header is not copied into this
// repository.  The C API is one function, OrtGetApiBase(), returning a table whose GetApi(version) gives a
// struct of function pointers (OrtApi).  That struct only ever grows at its end, so a prefix of it declared
// with the right slot numbers is valid for every library at least as new as the slots' source.  The slot
// numbers and enum values below were read off the public onnxruntime_c_api.h (slots 0-137 are unchanged
// since API version 13); each used slot's position is checked at compile time, and the driver checks the
// library's version string at run time.
#ifndef SOFIE_RDF_BENCH_ORT_CAPI_HXX
#define SOFIE_RDF_BENCH_ORT_CAPI_HXX

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ort_capi {

// The API version asked for: the oldest whose table holds every slot used here (13: onnxruntime 1.13).  Any
// newer library serves it with the same table, so the driver runs with every onnxruntime since, not only with
// the wheel it was written against (asking for 31 refused onnxruntime 1.30).
constexpr std::uint32_t API_VERSION = 13;

struct Env;
struct Status; // nullptr means success
struct MemoryInfo;
struct IoBinding;
struct Session;
struct Value;
struct RunOptions;
struct SessionOptions;

enum TensorElementType : int { TENSOR_FLOAT = 1 };         // ONNXTensorElementDataType
enum LoggingLevel : int { LOGGING_WARNING = 2 };            // OrtLoggingLevel
enum AllocatorType : int { ARENA_ALLOCATOR = 1 };           // OrtAllocatorType
enum MemType : int { MEM_TYPE_DEFAULT = 0 };                // OrtMemType
enum GraphOptimizationLevel : int { ENABLE_ALL = 99 };      // GraphOptimizationLevel

// OrtApi up to slot 137; `unused_<first>_<last>` pads the slots this benchmark does not call.
struct Api {
   void *unused_0_1[2];
   const char *(*GetErrorMessage)(const Status *);                                         // 2
   Status *(*CreateEnv)(LoggingLevel, const char *logid, Env **out);                       // 3
   void *unused_4_6[3];
   Status *(*CreateSession)(const Env *, const char *model_path, const SessionOptions *, Session **out); // 7
   void *unused_8[1];
   Status *(*Run)(Session *, const RunOptions *, const char *const *input_names, const Value *const *inputs,
                  std::size_t n_inputs, const char *const *output_names, std::size_t n_outputs,
                  Value **outputs);                                                          // 9
   Status *(*CreateSessionOptions)(SessionOptions **out);                                  // 10
   void *unused_11_22[12];
   Status *(*SetSessionGraphOptimizationLevel)(SessionOptions *, GraphOptimizationLevel);  // 23
   Status *(*SetIntraOpNumThreads)(SessionOptions *, int);                                 // 24
   Status *(*SetInterOpNumThreads)(SessionOptions *, int);                                 // 25
   void *unused_26_38[13];
   Status *(*CreateRunOptions)(RunOptions **out);                                          // 39
   void *unused_40_48[9];
   Status *(*CreateTensorWithDataAsOrtValue)(const MemoryInfo *, void *data, std::size_t bytes,
                                             const std::int64_t *shape, std::size_t rank, TensorElementType,
                                             Value **out);                                   // 49
   void *unused_50_68[19];
   Status *(*CreateCpuMemoryInfo)(AllocatorType, MemType, MemoryInfo **out);               // 69
   void *unused_70_91[22];
   void (*ReleaseEnv)(Env *);                                                              // 92
   void (*ReleaseStatus)(Status *);                                                        // 93
   void (*ReleaseMemoryInfo)(MemoryInfo *);                                                // 94
   void (*ReleaseSession)(Session *);                                                      // 95
   void (*ReleaseValue)(Value *);                                                          // 96
   void (*ReleaseRunOptions)(RunOptions *);                                                // 97
   void *unused_98_99[2];
   void (*ReleaseSessionOptions)(SessionOptions *);                                        // 100
   void *unused_101_132[32];
   Status *(*RunWithBinding)(Session *, const RunOptions *, const IoBinding *);            // 133
   Status *(*CreateIoBinding)(Session *, IoBinding **out);                                 // 134
   void (*ReleaseIoBinding)(IoBinding *);                                                  // 135
   Status *(*BindInput)(IoBinding *, const char *name, const Value *);                     // 136
   Status *(*BindOutput)(IoBinding *, const char *name, const Value *);                    // 137
};

#define ORT_CAPI_SLOT(field, slot) static_assert(offsetof(Api, field) == (slot) * sizeof(void *), #field)
ORT_CAPI_SLOT(GetErrorMessage, 2);
ORT_CAPI_SLOT(CreateEnv, 3);
ORT_CAPI_SLOT(CreateSession, 7);
ORT_CAPI_SLOT(Run, 9);
ORT_CAPI_SLOT(CreateSessionOptions, 10);
ORT_CAPI_SLOT(SetSessionGraphOptimizationLevel, 23);
ORT_CAPI_SLOT(SetInterOpNumThreads, 25);
ORT_CAPI_SLOT(CreateRunOptions, 39);
ORT_CAPI_SLOT(CreateTensorWithDataAsOrtValue, 49);
ORT_CAPI_SLOT(CreateCpuMemoryInfo, 69);
ORT_CAPI_SLOT(ReleaseEnv, 92);
ORT_CAPI_SLOT(ReleaseRunOptions, 97);
ORT_CAPI_SLOT(ReleaseSessionOptions, 100);
ORT_CAPI_SLOT(RunWithBinding, 133);
ORT_CAPI_SLOT(BindOutput, 137);
#undef ORT_CAPI_SLOT

struct ApiBase {
   const Api *(*GetApi)(std::uint32_t version);
   const char *(*GetVersionString)();
};

extern "C" const ApiBase *OrtGetApiBase();

// The API table of the linked library; throws when the library is older than API_VERSION.
inline const Api &api()
{
   static const Api *table = OrtGetApiBase()->GetApi(API_VERSION);
   if (!table)
      throw std::runtime_error(std::string("onnxruntime ") + OrtGetApiBase()->GetVersionString() +
                               " does not provide C API version " + std::to_string(API_VERSION));
   return *table;
}

// Throws the message of a failed call (and releases its status); success is a null status.
inline void check(Status *status, const char *what)
{
   if (!status)
      return;
   std::string message = std::string(what) + ": " + api().GetErrorMessage(status);
   api().ReleaseStatus(status);
   throw std::runtime_error(message);
}

} // namespace ort_capi

#endif
