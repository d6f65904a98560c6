// TMVA/RSofieReader.hxx for a ROOT without TMVA, declared by `import sofie_rdf.compat`: ROOT's
// TMVA::Experimental::RSofieReader, a model file read, generated, compiled and run in one object:
//
//    TMVA::Experimental::RSofieReader model("HiggsModel.keras");   // .onnx, .keras/.h5, .pt (with shapes)
//    std::vector<float> y = model.Compute({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7});
//    df.Define("DNN_Values", TMVA::Experimental::Compute<7, float>(model), {"m_jj", ...});
//
// As ROOT's does, it parses the file, generates the code, declares it to Cling and calls the Session's
// infer; here sofie-rdf parses and compiles (sofie_rdf/_compat/bridge.py, sr.compile: the JIT or a native
// library) and declares, per model, the three functions this class calls: make a Session, delete it, run
// it.  Events run without Python.  The batch size is the first dim of the first input shape (1 by
// default); shapes also fix the other open dims of each input.  Compute returns every output, concatenated,
// as floats.  One Session per reader, its calls serialised, as ROOT's are.
#ifndef SOFIE_RDF_COMPAT_TMVA_RSOFIEREADER_HXX
#define SOFIE_RDF_COMPAT_TMVA_RSOFIEREADER_HXX

#include "TMVA/SOFIEBridge.hxx"

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace sofie_rdf_compat {

// The functions sofie-rdf declares for one compiled model (sofie_rdf/_compat/bridge.py).
struct ReaderModel {
   void *(*make)() = nullptr;                                  // a new Session (reads the weights)
   void (*destroy)(void *) = nullptr;                          // deletes it
   std::vector<float> (*infer)(void *, const float *const *) = nullptr; // one event: input pointers in order
};

inline std::map<std::string, ReaderModel> &ReaderModels()
{
   static std::map<std::string, ReaderModel> models;
   return models;
}

inline void RegisterReaderModel(const std::string &key, void *(*make)(), void (*destroy)(void *),
                                std::vector<float> (*infer)(void *, const float *const *))
{
   ReaderModels()[key] = ReaderModel{make, destroy, infer};
}

// Every output of an infer result (a vector, or a tuple of vectors), appended as floats.
template <typename V>
void AppendOutputs(const V &result, std::vector<float> &out)
{
   for (const auto &v : result)
      out.push_back(static_cast<float>(v));
}

template <typename... Vs>
void AppendOutputs(const std::tuple<Vs...> &result, std::vector<float> &out)
{
   std::apply([&out](const auto &...outputs) { (AppendOutputs(outputs, out), ...); }, result);
}

} // namespace sofie_rdf_compat

namespace TMVA {
namespace Experimental {

class RSofieReader {
public:
   // An empty reader, for Load afterwards.
   RSofieReader() {}
   // verbose: 0 quiet, 1 the model's inputs and outputs, 2 the generated code too.
   RSofieReader(const std::string &path, std::vector<std::vector<std::size_t>> inputShapes = {}, int verbose = 0)
   {
      Load(path, std::move(inputShapes), verbose);
   }

   void Load(const std::string &path, std::vector<std::vector<std::size_t>> inputShapes = {}, int verbose = 0)
   {
      sofie_rdf_compat::Call call;
      call.op = "reader_load";
      call.args = {path, std::to_string(verbose)};
      call.shapes = std::move(inputShapes);
      const sofie_rdf_compat::Call answer = sofie_rdf_compat::Dispatch(call);
      fModel = sofie_rdf_compat::ReaderModels().at(answer.result);
      fInputSizes.assign(answer.numbers.begin(), answer.numbers.end());
      fSession = std::shared_ptr<void>(fModel.make(), fModel.destroy);
      fMutex = std::make_shared<std::mutex>();
      fInitialized = true;
   }

   // The outputs of one event (every output, concatenated); empty before Load, as ROOT's.
   std::vector<float> Compute(const std::vector<float> &x) { return DoCompute({&x}); }

   // Several inputs, one vector each, in the model's order.
   template <typename... T>
   std::vector<float> Compute(const T &...x)
   {
      return DoCompute({static_cast<const std::vector<float> *>(&x)...});
   }

   std::size_t GetNumberOfInputs() const { return fInputSizes.size(); }

private:
   std::vector<float> DoCompute(const std::vector<const std::vector<float> *> &inputs)
   {
      if (!fInitialized)
         return {};
      if (inputs.size() != fInputSizes.size())
         throw std::runtime_error("RSofieReader::Compute: the model takes " + std::to_string(fInputSizes.size()) +
                                  " input(s), " + std::to_string(inputs.size()) + " given");
      std::vector<const float *> pointers;
      for (std::size_t i = 0; i < inputs.size(); ++i) {
         if (inputs[i]->size() != fInputSizes[i])
            throw std::runtime_error("RSofieReader::Compute: input " + std::to_string(i) + " takes " +
                                     std::to_string(fInputSizes[i]) + " values, " +
                                     std::to_string(inputs[i]->size()) + " given");
         pointers.push_back(inputs[i]->data());
      }
      std::lock_guard<std::mutex> lock(*fMutex);
      return fModel.infer(fSession.get(), pointers.data());
   }

   bool fInitialized = false;
   sofie_rdf_compat::ReaderModel fModel;
   std::vector<std::size_t> fInputSizes;
   std::shared_ptr<void> fSession;
   std::shared_ptr<std::mutex> fMutex;
};

namespace Internal {
template <std::size_t I, typename T>
using AlwaysT = T;

template <typename T, typename F, std::size_t... I>
auto ComputeHelper(std::index_sequence<I...>, F *f)
{
   return [f](AlwaysT<I, T>... args) { return f->Compute(std::vector<float>{static_cast<float>(args)...}); };
}
} // namespace Internal

// A functor of N columns of type T returning the model's outputs as std::vector<float>, for Define:
// df.Define("y", Compute<7, float>(reader), {...}).  It refers to the reader, which must outlive it.
template <std::size_t N, typename T, typename F>
auto Compute(F &f)
{
   return Internal::ComputeHelper<T>(std::make_index_sequence<N>{}, &f);
}

} // namespace Experimental
} // namespace TMVA

#endif // SOFIE_RDF_COMPAT_TMVA_RSOFIEREADER_HXX
