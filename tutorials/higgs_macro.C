// higgs_macro.C: the Higgs classifier in a plain ROOT C++ macro, through the generated header.
//
// Needs, before it is run (tutorials/cpp_macro.py does all three):
//   * the header and weights: `sofie-rdf emit data/higgs_model.onnx -o DIR`, and DIR on the include path;
//   * sofie-rdf's cling/ folder on the include path (SofieFunctor.hxx);
//   * the BLAS the header calls, loaded (gSystem->Load of libscipy_openblas.so).
// Then: root -l -b -q 'higgs_macro.C("data/higgs_sample.root", "DIR/higgs_model.dat")'
#include "higgs_model.hxx"   // namespace TMVA_SOFIE_higgs_model { struct Session; }
#include "SofieFunctor.hxx"  // sofie_rdf::SofieFunctor<N, Session_t>(nslots, weights), ROOT's signature

#include <ROOT/RDataFrame.hxx>
#include <TROOT.h>

#include <cstdio>

int higgs_macro(const char *sample, const char *weights)
{
   ROOT::EnableImplicitMT();   // all cores: one Session per slot
   int status = 0;
   for (const char *tree : {"sig_tree", "bkg_tree"}) {
      ROOT::RDataFrame df(tree, sample);
      // 7 input columns, in the model's order; the functor returns the first output (the score) as float.
      auto scored = df.DefineSlot("score",
                                  sofie_rdf::SofieFunctor<7, TMVA_SOFIE_higgs_model::Session>(df.GetNSlots(), weights),
                                  {"m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"});
      auto mean = scored.Mean<float>("score");
      auto passed = scored.Filter([](float s) { return s > 0.5f; }, {"score"}).Count();
      auto total = scored.Count();
      std::printf("%s: mean score %.3f, %llu of %llu events above 0.5\n", tree, *mean,
                  static_cast<unsigned long long>(*passed), static_cast<unsigned long long>(*total));
      if (*total == 0)
         status = 1;
   }
   return status;
}
