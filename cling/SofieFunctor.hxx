// SofieFunctor: run a generated model per event in RDataFrame, one Session per slot.
//
//    #include "Higgs.hxx"
//    #include "SofieFunctor.hxx"
//    auto df2 = df.DefineSlot("dnn", sofie_rdf::SofieFunctor<7, TMVA_SOFIE_Higgs::Session>(df.GetNSlots()),
//                             {"m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"});
//
// The signature is that of ROOT's TMVA::Experimental::SofieFunctor: N input columns, the
// first output element returned as float.  Columns may be of any arithmetic type (float,
// double, int, bool, ...) and may be ROOT::RVec arrays, whose elements are appended in
// order: a sequence model takes its whole sequence from one RVec column.  The
// SofieFunctorAll variant returns every output element as ROOT::RVec<float>.
//
// Works with headers from sofie-rdf and from ROOT's SOFIE alike: the Session needs an
// infer(const float *) returning a vector (or a tuple of vectors); sessions whose infer
// takes leading size_t dims (batch, ...) are called with every dim equal to 1.
#ifndef SOFIE_RDF_SOFIEFUNCTOR_HXX
#define SOFIE_RDF_SOFIEFUNCTOR_HXX

#include <ROOT/RVec.hxx>

#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace sofie_rdf {
namespace detail {

// Input values of one event, converted to the model's element type.
template <typename T, typename V>
void Append(std::vector<T> &buffer, const V &value)
{
   buffer.push_back(static_cast<T>(value));
}

template <typename T, typename V>
void Append(std::vector<T> &buffer, const ROOT::RVec<V> &values)
{
   for (const auto &v : values)
      buffer.push_back(static_cast<T>(v));
}

// A growable buffer of T that, unlike std::vector<bool>, always has data().
template <typename T>
class Buffer {
public:
   void clear() { fSize = 0; }
   void push_back(T value)
   {
      if (fSize == fCapacity)
         grow(fCapacity ? 2 * fCapacity : 16);
      fData[fSize++] = value;
   }
   T *resize(std::size_t n)
   {
      if (n > fCapacity)
         grow(n);
      fSize = n;
      return fData.get();
   }
   T *data() { return fData.get(); }
   const T *data() const { return fData.get(); }
   std::size_t size() const { return fSize; }
   const T &operator[](std::size_t i) const { return fData[i]; }

private:
   void grow(std::size_t capacity)
   {
      std::unique_ptr<T[]> bigger(new T[capacity]());
      for (std::size_t i = 0; i < fSize; ++i)
         bigger[i] = fData[i];
      fData = std::move(bigger);
      fCapacity = capacity;
   }
   std::unique_ptr<T[]> fData;
   std::size_t fSize = 0, fCapacity = 0;
};

template <typename T, typename V>
void Append(Buffer<T> &buffer, const V &value)
{
   buffer.push_back(static_cast<T>(value));
}

template <typename T, typename V>
void Append(Buffer<T> &buffer, const ROOT::RVec<V> &values)
{
   for (const auto &v : values)
      buffer.push_back(static_cast<T>(v));
}

template <typename R>
struct IsTuple : std::false_type {};
template <typename... Ts>
struct IsTuple<std::tuple<Ts...>> : std::true_type {};

// Priority tags pick infer(x) when it exists, else infer(1, x), infer(1, 1, x), ...
template <std::size_t K>
struct Priority : Priority<K - 1> {};
template <>
struct Priority<0> {};

template <typename S>
auto Infer(S &s, const float *x, Priority<4>) -> decltype(s.infer(x))
{
   return s.infer(x);
}
template <typename S>
auto Infer(S &s, const float *x, Priority<3>) -> decltype(s.infer(std::size_t{1}, x))
{
   return s.infer(std::size_t{1}, x);
}
template <typename S>
auto Infer(S &s, const float *x, Priority<2>) -> decltype(s.infer(std::size_t{1}, std::size_t{1}, x))
{
   return s.infer(std::size_t{1}, std::size_t{1}, x);
}
template <typename S>
auto Infer(S &s, const float *x, Priority<1>)
   -> decltype(s.infer(std::size_t{1}, std::size_t{1}, std::size_t{1}, x))
{
   return s.infer(std::size_t{1}, std::size_t{1}, std::size_t{1}, x);
}

// Every output element of an infer result (a vector or a tuple of vectors), as floats.
template <typename R>
void Flatten(const R &result, ROOT::RVec<float> &out)
{
   if constexpr (IsTuple<R>::value) {
      std::apply([&out](const auto &...outputs) { (Flatten(outputs, out), ...); }, result);
   } else {
      for (const auto &v : result)
         out.push_back(static_cast<float>(v));
   }
}

template <typename R>
float FirstElement(const R &result)
{
   if constexpr (IsTuple<R>::value)
      return static_cast<float>(std::get<0>(result).at(0));
   else
      return static_cast<float>(result.at(0));
}

} // namespace detail

// One Session per slot and a reusable input buffer each (no allocation once it has grown).
template <std::size_t N, typename Session_t>
class SofieFunctorHelper {
public:
   explicit SofieFunctorHelper(unsigned int nslots = 1, const std::string &weights = "")
   {
      const unsigned int n = nslots > 0 ? nslots : 1;
      for (unsigned int i = 0; i < n; ++i) {
         if (weights.empty())
            fSessions.emplace_back(std::make_shared<Session_t>());
         else
            fSessions.emplace_back(std::make_shared<Session_t>(weights));
      }
      fInputs.resize(n);
   }

protected:
   template <typename... Columns>
   auto Run(unsigned int slot, const Columns &...columns)
   {
      static_assert(sizeof...(Columns) == N, "SofieFunctor<N, ...>: N must be the number of input columns");
      std::vector<float> &input = fInputs.at(slot);
      input.clear();
      (detail::Append(input, columns), ...);
      return detail::Infer(*fSessions[slot], input.data(), detail::Priority<4>{});
   }

private:
   std::vector<std::shared_ptr<Session_t>> fSessions; // shared: RDataFrame copies the functor
   std::vector<std::vector<float>> fInputs;
};

template <std::size_t N, typename Session_t>
class SofieFunctorFirst : public SofieFunctorHelper<N, Session_t> {
public:
   using SofieFunctorHelper<N, Session_t>::SofieFunctorHelper;

   template <typename... Columns>
   float operator()(unsigned int slot, const Columns &...columns)
   {
      return detail::FirstElement(this->Run(slot, columns...));
   }
};

template <std::size_t N, typename Session_t>
class SofieFunctorAllHelper : public SofieFunctorHelper<N, Session_t> {
public:
   using SofieFunctorHelper<N, Session_t>::SofieFunctorHelper;

   template <typename... Columns>
   ROOT::RVec<float> operator()(unsigned int slot, const Columns &...columns)
   {
      ROOT::RVec<float> out;
      detail::Flatten(this->Run(slot, columns...), out);
      return out;
   }
};

// ROOT's signature: SofieFunctor<N, Session_t>(nslots, weights file).
template <std::size_t N, typename Session_t>
SofieFunctorFirst<N, Session_t> SofieFunctor(unsigned int nslots = 1, const std::string &weights = "")
{
   return SofieFunctorFirst<N, Session_t>(nslots, weights);
}

// All outputs, concatenated, as ROOT::RVec<float>.
template <std::size_t N, typename Session_t>
SofieFunctorAllHelper<N, Session_t> SofieFunctorAll(unsigned int nslots = 1, const std::string &weights = "")
{
   return SofieFunctorAllHelper<N, Session_t>(nslots, weights);
}

} // namespace sofie_rdf

#endif // SOFIE_RDF_SOFIEFUNCTOR_HXX
