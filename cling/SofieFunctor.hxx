// SofieFunctor: run a generated model per event in RDataFrame, one Session per slot.
//
//    #include "Higgs.hxx"
//    #include "SofieFunctor.hxx"
//    auto df2 = df.DefineSlot("dnn", sofie_rdf::SofieFunctor<7, TMVA_SOFIE_Higgs::Session>(df.GetNSlots()),
//                             {"m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"});
//
// The signature is that of ROOT's TMVA::Experimental::SofieFunctor: N float input columns,
// the first output element returned as float.  Other column types are named after the
// session type, SofieFunctor<2, S, double, ROOT::RVec<float>>: any arithmetic type (float,
// double, int, bool, ...) and ROOT::RVec arrays, whose elements are appended in order (a
// sequence model takes its whole sequence from one RVec column).  SofieFunctorFirst<N, S>
// (nslots, weights) without column types accepts any of them, for calls written in C++ or
// Define strings.  The SofieFunctorAll variant returns every output element as
// ROOT::RVec<float>.
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

// The functors come in two forms.  With column types (SofieFunctorFirst<N, S, float, double,
// ROOT::RVec<float>, ...>) operator() is an ordinary member function, which is what a typed
// DefineSlot needs to read the column types off.  Without them (SofieFunctorFirst<N, S>) it is
// a template accepting any column types, for calls spelled out in C++ and Define strings.
template <std::size_t N, typename Session_t, typename... Columns>
class SofieFunctorFirst : public SofieFunctorHelper<N, Session_t> {
public:
   using SofieFunctorHelper<N, Session_t>::SofieFunctorHelper;

   float operator()(unsigned int slot, const Columns &...columns)
   {
      return detail::FirstElement(this->Run(slot, columns...));
   }
};

template <std::size_t N, typename Session_t>
class SofieFunctorFirst<N, Session_t> : public SofieFunctorHelper<N, Session_t> {
public:
   using SofieFunctorHelper<N, Session_t>::SofieFunctorHelper;

   template <typename... Columns>
   float operator()(unsigned int slot, const Columns &...columns)
   {
      return detail::FirstElement(this->Run(slot, columns...));
   }
};

template <std::size_t N, typename Session_t, typename... Columns>
class SofieFunctorAllHelper : public SofieFunctorHelper<N, Session_t> {
public:
   using SofieFunctorHelper<N, Session_t>::SofieFunctorHelper;

   ROOT::RVec<float> operator()(unsigned int slot, const Columns &...columns)
   {
      ROOT::RVec<float> out;
      detail::Flatten(this->Run(slot, columns...), out);
      return out;
   }
};

template <std::size_t N, typename Session_t>
class SofieFunctorAllHelper<N, Session_t> : public SofieFunctorHelper<N, Session_t> {
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

namespace detail {
template <std::size_t>
using AlwaysFloat = float;

// Functor<N, S> with N float columns (ROOT's SofieFunctor signature), or with the given column types.
template <template <std::size_t, typename, typename...> class Functor, std::size_t N, typename Session_t,
          typename Indices, typename... Columns>
struct Typed {
   using type = Functor<N, Session_t, Columns...>;
};
template <template <std::size_t, typename, typename...> class Functor, std::size_t N, typename Session_t,
          std::size_t... I>
struct Typed<Functor, N, Session_t, std::index_sequence<I...>> {
   using type = Functor<N, Session_t, AlwaysFloat<I>...>;
};
} // namespace detail

// ROOT's signature: SofieFunctor<N, Session_t>(nslots, weights file) takes N float columns
// (any arithmetic column converts) and works in a typed DefineSlot.  Other column types, RVec
// arrays included, are named after the session: SofieFunctor<2, S, double, ROOT::RVec<float>>.
template <std::size_t N, typename Session_t, typename... Columns>
auto SofieFunctor(unsigned int nslots = 1, const std::string &weights = "")
{
   using F = typename detail::Typed<SofieFunctorFirst, N, Session_t, std::make_index_sequence<N>, Columns...>::type;
   return F(nslots, weights);
}

// All outputs, concatenated, as ROOT::RVec<float>; column types as for SofieFunctor.
template <std::size_t N, typename Session_t, typename... Columns>
auto SofieFunctorAll(unsigned int nslots = 1, const std::string &weights = "")
{
   using F =
      typename detail::Typed<SofieFunctorAllHelper, N, Session_t, std::make_index_sequence<N>, Columns...>::type;
   return F(nslots, weights);
}

} // namespace sofie_rdf

#endif // SOFIE_RDF_SOFIEFUNCTOR_HXX
