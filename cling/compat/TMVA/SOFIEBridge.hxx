// TMVA/SOFIEBridge.hxx: how the C++ SOFIE classes of sofie-rdf's compat layer (TMVA/RModel.hxx,
// TMVA/RModelParser_ONNX.hxx, TMVA/RSofieReader.hxx, ...) reach sofie-rdf, which is Python.
//
// `import sofie_rdf.compat` registers one Python callable with SetBridge; every C++ call fills a Call
// (the operation, the model's handle, string arguments, shapes), the Python side runs it and fills in the
// results, the text it printed (written here to std::cout, so a macro's own output stays in order) and,
// when it failed, the error, thrown here as std::runtime_error.  Without the import there is no Python to
// call, and each call throws saying so.
#ifndef SOFIE_RDF_COMPAT_TMVA_SOFIEBRIDGE_HXX
#define SOFIE_RDF_COMPAT_TMVA_SOFIEBRIDGE_HXX

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

// One request to the Python side and its answer.  At global scope: cppyy spells the type of a Python
// callback's parameter without its namespace.
struct SofieRdfCompatCall {
   // the request
   std::string op;                            // what to do: "parse_onnx", "generate", "print", ...
   long handle = -1;                          // the RModel it is about (-1: none)
   std::vector<std::string> args;             // its arguments, spelled as text
   std::vector<std::vector<std::size_t>> shapes; // input shapes (PyTorch::Parse, RSofieReader)
   // the answer
   std::string text;                          // what the Python side printed
   std::string error;                         // non-empty: the call failed, with this message
   std::string result;                        // a text result
   long result_handle = -1;                   // a model handle (the parsers)
   std::vector<long long> numbers;            // numeric results (a shape, a type, a flag)
   std::vector<std::string> strings;          // a list of names
   std::uintptr_t data = 0;                   // tensor bytes, valid until the call returns to C++
   std::size_t nbytes = 0;
};

namespace sofie_rdf_compat {

using Call = SofieRdfCompatCall;
using BridgeFunction = std::function<void(SofieRdfCompatCall &)>;

inline BridgeFunction &Bridge()
{
   static BridgeFunction bridge;
   return bridge;
}

// Called once by `import sofie_rdf.compat`, with the Python function that answers calls.
inline void SetBridge(BridgeFunction function)
{
   Bridge() = std::move(function);
}

inline bool HasBridge()
{
   return static_cast<bool>(Bridge());
}

// Run a call on the Python side; throws std::runtime_error with its message where it failed.
// `copy` runs while the answer's tensor bytes are still valid.
inline Call Dispatch(Call call, const std::function<void(const Call &)> &copy = {})
{
   static std::recursive_mutex mutex;
   std::lock_guard<std::recursive_mutex> lock(mutex);
   if (!HasBridge())
      throw std::runtime_error(
         "TMVA::Experimental::SOFIE (sofie-rdf's compat layer): the Python side is not loaded; run "
         "`import sofie_rdf.compat` in Python before this C++ (from a Python driver, or see "
         "docs/guides/from_sofie.md for the root prompt)");
   Bridge()(call);
   if (!call.text.empty())
      std::cout << call.text << std::flush;
   if (!call.error.empty())
      throw std::runtime_error(call.error);
   if (copy)
      copy(call);
   return call;
}

// The name the Python side reads a C++ element type by (GetTensorData<T>).
template <typename T>
const char *TypeName();
template <> inline const char *TypeName<float>() { return "float"; }
template <> inline const char *TypeName<double>() { return "double"; }
template <> inline const char *TypeName<std::int8_t>() { return "int8_t"; }
template <> inline const char *TypeName<std::uint8_t>() { return "uint8_t"; }
template <> inline const char *TypeName<std::int16_t>() { return "int16_t"; }
template <> inline const char *TypeName<std::uint16_t>() { return "uint16_t"; }
template <> inline const char *TypeName<std::int32_t>() { return "int32_t"; }
template <> inline const char *TypeName<std::uint32_t>() { return "uint32_t"; }
template <> inline const char *TypeName<std::int64_t>() { return "int64_t"; }
template <> inline const char *TypeName<std::uint64_t>() { return "uint64_t"; }
template <> inline const char *TypeName<bool>() { return "bool"; }

} // namespace sofie_rdf_compat

#endif // SOFIE_RDF_COMPAT_TMVA_SOFIEBRIDGE_HXX
