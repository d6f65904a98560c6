// TMVA/RModelParser_ONNX.hxx for a ROOT without TMVA, declared by `import sofie_rdf.compat`: SOFIE's
// C++ parsers over sofie-rdf's front ends (sofie_rdf/_compat/parsers.py), as SOFIE's macros call them:
//
//    TMVA::Experimental::SOFIE::RModelParser_ONNX parser;
//    TMVA::Experimental::SOFIE::RModel model = parser.Parse("Linear_16.onnx", true);
//    auto keras = TMVA::Experimental::SOFIE::PyKeras::Parse("model.keras");
//    auto torch = TMVA::Experimental::SOFIE::PyTorch::Parse("model.pt", {{2, 32}});
//
// A model sofie-rdf cannot read throws std::runtime_error with sofie-rdf's message (every unsupported
// operator named at once).
#ifndef SOFIE_RDF_COMPAT_TMVA_RMODELPARSER_ONNX_HXX
#define SOFIE_RDF_COMPAT_TMVA_RMODELPARSER_ONNX_HXX

#include "TMVA/RModel.hxx"

#include <cstddef>
#include <string>
#include <vector>

namespace TMVA {
namespace Experimental {
namespace SOFIE {

namespace Internal {
inline RModel ParseWith(const char *op, std::vector<std::string> args,
                        std::vector<std::vector<std::size_t>> shapes = {})
{
   sofie_rdf_compat::Call call;
   call.op = op;
   call.args = std::move(args);
   call.shapes = std::move(shapes);
   return RModel(sofie_rdf_compat::Dispatch(call).result_handle);
}
} // namespace Internal

class RModelParser_ONNX {
public:
   RModel Parse(std::string filename, bool verbose = false)
   {
      return Internal::ParseWith("parse_onnx", {filename, verbose ? "1" : "0"});
   }
   // Whether sofie-rdf supports every operator of the file (the unsupported ones are printed).
   bool CheckModel(std::string filename, bool verbose = false)
   {
      sofie_rdf_compat::Call call;
      call.op = "check_onnx";
      call.args = {filename, verbose ? "1" : "0"};
      return sofie_rdf_compat::Dispatch(call).numbers.at(0) != 0;
   }
   bool IsRegisteredOperator(const std::string &name)
   {
      sofie_rdf_compat::Call call;
      call.op = "is_registered";
      call.args = {name};
      return sofie_rdf_compat::Dispatch(call).numbers.at(0) != 0;
   }
};

namespace PyKeras {
// The batch dim fixed to batch_size where the model leaves it open (0 or less keeps it symbolic).
inline RModel Parse(std::string filename, int batch_size = 1)
{
   return Internal::ParseWith("parse_keras", {filename, std::to_string(batch_size)});
}
} // namespace PyKeras

namespace PyTorch {
inline RModel Parse(std::string filename, std::vector<std::vector<std::size_t>> inputShapes,
                    std::vector<ETensorType> dtype)
{
   std::vector<std::string> args{filename};
   for (auto t : dtype)
      args.push_back(std::to_string(static_cast<int>(t)));
   return Internal::ParseWith("parse_torch", args, std::move(inputShapes));
}
inline RModel Parse(std::string filename, std::vector<std::vector<std::size_t>> inputShapes)
{
   return Parse(std::move(filename), std::move(inputShapes), {});
}
} // namespace PyTorch

} // namespace SOFIE
} // namespace Experimental
} // namespace TMVA

#endif // SOFIE_RDF_COMPAT_TMVA_RMODELPARSER_ONNX_HXX
