// TMVA/RModel.hxx for a ROOT without TMVA (the PyPI build), declared by `import sofie_rdf.compat`:
// SOFIE's C++ RModel, ETensorType, Options and type helpers, as SOFIE's macros call them
// (TMVA_SOFIE_ONNX.C, TMVA_SOFIE_PyTorch.C).  An RModel is a handle to the Python RModel of
// sofie_rdf.compat (sofie_rdf/_compat/rmodel.py), which does the work; copies share that model.
// The numbering of ETensorType and Options is SOFIE's.
#ifndef SOFIE_RDF_COMPAT_TMVA_RMODEL_HXX
#define SOFIE_RDF_COMPAT_TMVA_RMODEL_HXX

#include "TMVA/SOFIEBridge.hxx"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace TMVA {
namespace Experimental {
namespace SOFIE {

enum class ETensorType {
   UNDEFINED = 0, FLOAT = 1, UNINT8 = 2, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7,
   STRING = 8, BOOL = 9, FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, COMPLEX64 = 14, COMPLEX28 = 15,
   BFLOAT16 = 16
};

enum class Options {
   kDefault = 0x0, kNoSession = 0x1, kNoWeightFile = 0x2, kRootBinaryWeightFile = 0x4, kGNN = 0x8,
   kGNNComponent = 0x10, kProfile = 0x20
};

inline std::underlying_type_t<Options> operator|(Options a, Options b)
{
   return static_cast<std::underlying_type_t<Options>>(a) | static_cast<std::underlying_type_t<Options>>(b);
}
inline std::underlying_type_t<Options> operator|(std::underlying_type_t<Options> a, Options b)
{
   return a | static_cast<std::underlying_type_t<Options>>(b);
}

inline std::string ConvertTypeToString(ETensorType type)
{
   switch (type) {
   case ETensorType::FLOAT: return "float";
   case ETensorType::UINT8: return "uint8_t";
   case ETensorType::INT8: return "int8_t";
   case ETensorType::UINT16: return "uint16_t";
   case ETensorType::INT16: return "int16_t";
   case ETensorType::INT32: return "int32_t";
   case ETensorType::INT64: return "int64_t";
   case ETensorType::BOOL: return "bool";
   case ETensorType::FLOAT16: return "float16";
   case ETensorType::DOUBLE: return "double";
   case ETensorType::UINT32: return "uint32_t";
   case ETensorType::UINT64: return "uint64_t";
   case ETensorType::BFLOAT16: return "bfloat16";
   default: return "other_" + std::to_string(static_cast<int>(type));
   }
}

inline ETensorType ConvertStringToType(std::string name)
{
   for (int t : {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16})
      if (ConvertTypeToString(static_cast<ETensorType>(t)) == name)
         return static_cast<ETensorType>(t);
   if (name == "float32" || name == "Float")
      return ETensorType::FLOAT;
   if (name == "float64" || name == "Double")
      return ETensorType::DOUBLE;
   if (name == "int64")
      return ETensorType::INT64;
   if (name == "int32" || name == "int")
      return ETensorType::INT32;
   return ETensorType::UNDEFINED;
}

inline std::size_t ConvertShapeToLength(const std::vector<std::size_t> &shape)
{
   std::size_t length = 1;
   for (auto d : shape)
      length *= d;
   return length;
}

inline std::string ConvertShapeToString(const std::vector<std::size_t> &shape)
{
   std::string out = "{ ";
   for (std::size_t i = 0; i < shape.size(); ++i)
      out += std::to_string(shape[i]) + (i + 1 < shape.size() ? " , " : " ");
   return out + "}";
}

class RModel {
public:
   RModel() = default;
   // A handle given out by the Python side (the parsers make RModels).
   explicit RModel(long handle) : fHandle(handle) {}
   // SOFIE's empty model, filled operator by operator: refused by the Python side, which says why.
   RModel(std::string name, std::string parsedtime) { Run("new", {name, parsedtime}); }

   void Initialize(int batchSize = -1, bool verbose = false)
   {
      Run("initialize", {std::to_string(batchSize), Flag(verbose)});
   }
   void Initialize(const std::map<std::string, std::size_t> &inputParams, bool verbose = false)
   {
      std::vector<std::string> args{"-1", Flag(verbose)};
      for (const auto &p : inputParams) {
         args.push_back(p.first);
         args.push_back(std::to_string(p.second));
      }
      Run("initialize", args);
   }

   void Generate(std::underlying_type_t<Options> options, int batchSize = -1, long pos = 0, bool verbose = false)
   {
      Run("generate", {std::to_string(options), std::to_string(batchSize), std::to_string(pos), Flag(verbose)});
   }
   void Generate(Options options = Options::kDefault, int batchSize = -1, int pos = 0, bool verbose = false)
   {
      Generate(static_cast<std::underlying_type_t<Options>>(options), batchSize, static_cast<long>(pos), verbose);
   }

   void OutputGenerated(std::string filename = "", bool append = false) { Run("output", {filename, Flag(append)}); }
   std::string ReturnGenerated() { return Run("method", {"ReturnGenerated"}).result; }
   void PrintGenerated() { Run("method", {"PrintGenerated"}); }
   long WriteInitializedTensorsToFile(std::string filename = "")
   {
      return static_cast<long>(Run("write_weights", {filename}).numbers.at(0));
   }

   void PrintRequiredInputTensors() { Run("method", {"PrintRequiredInputTensors"}); }
   void PrintInitializedTensors() { Run("method", {"PrintInitializedTensors"}); }
   void PrintIntermediateTensors() { Run("method", {"PrintIntermediateTensors"}); }
   void PrintOutputTensors() { Run("method", {"PrintOutputTensors"}); }
   void PrintDynamicTensors() { Run("method", {"PrintDynamicTensors"}); }
   void HeadInitializedTensors(std::string name, int n_print = 50)
   {
      Run("head", {name, std::to_string(n_print)});
   }

   bool CheckIfTensorAlreadyExist(std::string name) { return Run("exists", {name}).numbers.at(0) != 0; }
   bool IsInitializedTensor(const std::string &name) const { return Run("initialized", {name}).numbers.at(0) != 0; }
   std::vector<std::size_t> GetTensorShape(std::string name) const
   {
      const auto numbers = Run("shape", {name}).numbers;
      return std::vector<std::size_t>(numbers.begin(), numbers.end());
   }
   ETensorType GetTensorType(std::string name) const
   {
      return static_cast<ETensorType>(Run("type", {name}).numbers.at(0));
   }
   // The values of an initialized tensor (a weight), flat, as T; refused where T is not its type.
   template <typename T>
   std::vector<T> GetTensorData(const std::string &name) const
   {
      std::vector<T> values;
      sofie_rdf_compat::Call call = Request("tensor_data", {name, sofie_rdf_compat::TypeName<T>()});
      sofie_rdf_compat::Dispatch(call, [&values](const sofie_rdf_compat::Call &answer) {
         values.resize(answer.nbytes / sizeof(T));
         if (answer.nbytes)
            std::memcpy(values.data(), reinterpret_cast<const void *>(answer.data), answer.nbytes);
      });
      return values;
   }

   std::vector<std::string> GetInputTensorNames() const { return Run("names", {"inputs"}).strings; }
   std::vector<std::string> GetOutputTensorNames() const { return Run("names", {"outputs"}).strings; }
   std::string GetFilename() const { return Run("method", {"GetFilename"}).result; }
   std::string GetName() const { return GetFilename(); }
   void SetFilename(std::string filename) { Run("rename", {filename}); }
   bool UseSession() const { return Run("method", {"UseSession"}).result == "True"; }

   long Handle() const { return fHandle; }

private:
   static std::string Flag(bool value) { return value ? "1" : "0"; }

   sofie_rdf_compat::Call Request(const char *op, std::vector<std::string> args) const
   {
      sofie_rdf_compat::Call call;
      call.op = op;
      call.handle = fHandle;
      call.args = std::move(args);
      return call;
   }
   sofie_rdf_compat::Call Run(const char *op, std::vector<std::string> args) const
   {
      return sofie_rdf_compat::Dispatch(Request(op, std::move(args)));
   }

   long fHandle = -1;
};

} // namespace SOFIE
} // namespace Experimental
} // namespace TMVA

#endif // SOFIE_RDF_COMPAT_TMVA_RMODEL_HXX
