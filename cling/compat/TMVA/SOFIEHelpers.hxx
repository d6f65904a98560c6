// TMVA/SOFIEHelpers.hxx for a ROOT without TMVA (the PyPI build), put on Cling's include path by
// `import sofie_rdf.compat`: C++ macros written for SOFIE, which include this header and call
//
//    TMVA::Experimental::SofieFunctor<N, TMVA_SOFIE_<Name>::Session>(nslots[, weights file])
//
// (or SofieFunctor<...> after `using namespace TMVA::Experimental;`), get sofie-rdf's functor, which has
// ROOT's signature: N input columns, one Session per slot, the model's first output value returned.
#ifndef SOFIE_RDF_COMPAT_TMVA_SOFIEHELPERS_HXX
#define SOFIE_RDF_COMPAT_TMVA_SOFIEHELPERS_HXX

#include "../../SofieFunctor.hxx"

namespace TMVA {
namespace Experimental {
using sofie_rdf::SofieFunctor;
namespace SOFIE {
} // namespace SOFIE
} // namespace Experimental
} // namespace TMVA

#endif // SOFIE_RDF_COMPAT_TMVA_SOFIEHELPERS_HXX
