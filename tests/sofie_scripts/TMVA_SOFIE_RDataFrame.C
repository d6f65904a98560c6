/// TMVA_SOFIE_RDataFrame.C as a SOFIE user has it: the generated header and ROOT's SofieFunctor from
/// TMVA/SOFIEHelpers.hxx, one Session per slot of a multi-threaded RDataFrame (DefineSlot).  Unchanged but for
/// the input file and the scores written with Snapshot for tests/test_sofie_compat.py to compare.

using namespace TMVA::Experimental;

R__ADD_INCLUDE_PATH($PWD)
#include "higgs_model.hxx"
#include "TMVA/SOFIEHelpers.hxx"

using namespace TMVA::Experimental;

void TMVA_SOFIE_RDataFrame(const char *inputFile, int nthreads = 2)
{
   ROOT::EnableImplicitMT(nthreads);

   ROOT::RDataFrame df1("sig_tree", inputFile);
   int nslots = df1.GetNSlots();
   std::cout << "Running using " << nslots << " threads" << std::endl;
   auto h1 = df1.DefineSlot("DNN_Value", SofieFunctor<7, TMVA_SOFIE_higgs_model::Session>(nslots),
                            {"m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"});
   h1.Snapshot("scores", "scores.root", {"DNN_Value", "m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"});
   auto h = h1.Histo1D({"h_sig", "", 100, 0, 1}, "DNN_Value");
   std::cout << "Number of signal entries " << h->GetEntries() << std::endl;
}
