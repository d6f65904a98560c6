// Session support: the arena holding intermediate tensors and the reader of
// SOFIE-style text weight files ("<name> <count>" then the values), or of their
// binary twin (a first line "sofie-rdf binary weights 1", then per tensor
// "<name> <count> <bytes>" and the values' bytes in this machine's byte order).

// std::min and std::max as the kernels call them per element: ROOT's Cling (-O1 unless ROOT was started with
// more) inlines only what is always_inline, and the library's own stayed a call per element that also kept the
// loops around them scalar.  The same results as std's, NaN included (the first argument when unordered).
template <typename T>
[[gnu::always_inline]] constexpr T min_of(const T a, const T b) { return b < a ? b : a; }
template <typename T>
[[gnu::always_inline]] constexpr T max_of(const T a, const T b) { return a < b ? b : a; }
// std::isnan likewise: under Cling a call per element (TopK's comparisons spent more on it than on comparing).
template <typename T>
[[gnu::always_inline]] constexpr bool is_nan(const T x) { return x != x; }
// A stride given as a constant of its type (std::integral_constant, so that the loop reading with it vectorizes) or
// at run time, as a number: integral_constant's own conversion stayed a call under Cling, three per value of a
// broadcast Where (a tenth of a published particle transformer's time) and one per byte of an int8 convolution's
// packing.
template <typename S>
[[gnu::always_inline]] constexpr S stride_value(const S s) { return s; }
template <typename T, T V>
[[gnu::always_inline]] constexpr T stride_value(std::integral_constant<T, V>) { return V; }

// std::copy, std::copy_n, std::fill and std::fill_n as the kernels call them (same arguments, same results):
// under Cling each of std's stayed a chain of library calls per use, compiled for no vector instructions (a
// Gather of 8-float rows, ParticleNet's neighbours, spent more in them than in copying).  A copy between arrays
// of one type is one memmove, as std's is wherever its calls are inlined; between types, a converting loop.
template <typename T, typename U>
[[gnu::always_inline]] inline T *copy_n(const U *from, size_t n, T *to)
{
   if constexpr (std::is_same_v<T, U> && std::is_trivially_copyable_v<T>) {
      if (n > 0)
         std::memmove(to, from, n * sizeof(T));
   } else {
      for (size_t i = 0; i < n; ++i)
         to[i] = static_cast<T>(from[i]);
   }
   return to + n;
}
template <typename T, typename U>
[[gnu::always_inline]] inline T *copy(const U *first, const U *last, T *to)
{
   return copy_n(first, static_cast<size_t>(last - first), to);
}
template <typename T, typename V>
[[gnu::always_inline]] inline T *fill_n(T *to, size_t n, const V &value)
{
   const T v = static_cast<T>(value);
   for (size_t i = 0; i < n; ++i)
      to[i] = v;
   return to + n;
}
template <typename T, typename V>
[[gnu::always_inline]] inline void fill(T *first, T *last, const V &value)
{
   fill_n(first, static_cast<size_t>(last - first), value);
}

// Before a register tile's loop over its terms: under Cling, eight terms per iteration.  ROOT runs Cling with
// -optimize-regalloc=0, whose allocator keeps nothing in a register from one basic block to the next: every
// accumulator is stored and loaded again at each turn of the loop, and a turn of one term spent more time on
// that than on its multiply-adds.
#if defined(__CLING__)
#define SOFIE_RDF_TERMS_LOOP _Pragma("clang loop unroll_count(8)")
#else
#define SOFIE_RDF_TERMS_LOOP
#endif

// Memory for intermediate tensors of one element type.  reserve() grows it
// only when a call needs more than any call before, so inference allocates
// nothing once the largest input sizes have been seen.  It starts on a cache
// line (kArenaAlignment bytes), and the planner puts every tensor on a multiple
// of 64 bytes from there: a large allocation from malloc starts 16 bytes past
// a page, and every AVX-512 load from such a tensor then straddles two lines.
constexpr size_t kArenaAlignment = 64;

// Weights start on a cache line too: the constructor reads them into vectors of this allocator.  From malloc,
// a large one starts 16 bytes past a page and a smaller one wherever the heap has room: the packed recurrence
// weights of DeepJet's 150-wide LSTM (365 kB), read whole at every step, took 1.6x the time in one process
// and not in another as every AVX-512 load of them straddled two lines or none did.
template <typename T>
struct CacheLineAllocator {
   using value_type = T;
   CacheLineAllocator() = default;
   template <typename U>
   CacheLineAllocator(const CacheLineAllocator<U> &) {}
   T *allocate(size_t n) { return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t(kArenaAlignment))); }
   void deallocate(T *p, size_t) { ::operator delete(p, std::align_val_t(kArenaAlignment)); }
   friend bool operator==(const CacheLineAllocator &, const CacheLineAllocator &) { return true; }
   friend bool operator!=(const CacheLineAllocator &, const CacheLineAllocator &) { return false; }
};

template <typename T>
using WeightVector = std::vector<T, CacheLineAllocator<T>>;

// A copy has buffers of its own, as large as the original's, and none of its contents (scratch between calls):
// Sessions copy as SOFIE's do (std::vector<Session>, by-value captures), each copy for one thread.
template <typename T>
class Arena {
public:
   Arena() = default;
   Arena(const Arena &other) { reserve(other.fSize); }
   Arena &operator=(const Arena &other)
   {
      if (this != &other)
         reserve(other.fSize);
      return *this;
   }
   Arena(Arena &&) noexcept = default;
   Arena &operator=(Arena &&) noexcept = default;
   ~Arena() = default;

   T *reserve(size_t n)
   {
      if (n > fSize) {
         const size_t slack = (kArenaAlignment + sizeof(T) - 1) / sizeof(T);
         fData.reset(new T[n + slack]());
         void *start = fData.get();
         size_t space = (n + slack) * sizeof(T);
         fStart = static_cast<T *>(std::align(kArenaAlignment, n * sizeof(T), start, space));
         fSize = n;
      }
      return fStart;
   }

private:
   std::unique_ptr<T[]> fData;
   T *fStart = nullptr;
   size_t fSize = 0;
};

template <typename T>
inline T parse_number(const std::string &token, bool &ok)
{
   const char *begin = token.c_str();
   char *end = nullptr;
   T value{};
   if constexpr (std::is_same_v<T, double> || std::is_same_v<T, long double>)
      value = static_cast<T>(std::strtod(begin, &end));
   else if constexpr (!std::numeric_limits<T>::is_integer)  // float, and the 16-bit floats whose values are floats
      value = static_cast<T>(std::strtof(begin, &end));
   else if constexpr (std::numeric_limits<T>::is_signed)  // the narrow integers too (kernels/narrow.hxx)
      value = static_cast<T>(std::strtoll(begin, &end, 10));
   else
      value = static_cast<T>(std::strtoull(begin, &end, 10));
   ok = end != begin && *end == '\0';
   return value;
}

class WeightReader {
public:
   explicit WeightReader(const std::string &filename) : fIn(filename, std::ios::binary), fFile(filename)
   {
      if (!fIn)
         throw std::runtime_error("sofie-rdf: cannot open weights file '" + filename + "'");
      std::string first;
      std::getline(fIn, first);
      fBinary = first == "sofie-rdf binary weights 1";
      if (!fBinary) {
         fIn.clear();
         fIn.seekg(0);
      }
   }

   // `name` is a C string on purpose: a std::string temporary in the caller's
   // frame (the Session constructor) made Cling's optimised code abort with
   // "free(): invalid pointer" while unwinding a read error after the first tensor.
   template <typename T>
   void read(const char *name_chars, T *dst, size_t n)
   {
      const std::string name(name_chars);
      std::string tag;
      if (!(fIn >> tag))
         fail("is truncated before tensor '" + name + "'");
      if (tag != name)
         fail("holds tensor '" + tag + "' where '" + name + "' was expected (a weights file of another model?)");
      const size_t count = size_field(name, "count of values");
      if (count != n)
         fail("gives " + std::to_string(count) + " values for tensor '" + name + "', the model needs " +
              std::to_string(n));
      if (fBinary) {
         const size_t bytes = size_field(name, "byte count");
         if (fIn.get() != '\n')
            fail("is truncated before the values of tensor '" + name + "'");
         if (bytes != n * sizeof(T))
            fail("stores tensor '" + name + "' in " + std::to_string(bytes) + " bytes, the model reads " +
                 std::to_string(n * sizeof(T)));
         if (!fIn.read(reinterpret_cast<char *>(dst), static_cast<std::streamsize>(bytes)))
            fail("is truncated inside tensor '" + name + "'");
         return;
      }
      std::string token;
      for (size_t i = 0; i < n; ++i) {
         bool ok = false;
         if (!(fIn >> token))
            fail("is truncated inside tensor '" + name + "'");
         dst[i] = parse_number<T>(token, ok);
         if (!ok)
            fail("has the invalid value '" + token + "' in tensor '" + name + "'");
      }
   }

private:
   // The next token as a count, parsed by strtoull like the values.  The stream's own extraction of integers
   // (`fIn >> count`) read the "16" of a correct file as 0 in every native library g++ 13.3 built on an Ubuntu
   // 24.04 machine (a small program built there with the same flags read it right; the cause is not known),
   // and every model with weights then failed to load.
   size_t size_field(const std::string &name, const char *what)
   {
      std::string token;
      bool ok = false;
      if (!(fIn >> token))
         fail("is truncated before the values of tensor '" + name + "'");
      const size_t value = parse_number<size_t>(token, ok);
      if (!ok)
         fail("has the invalid " + std::string(what) + " '" + token + "' for tensor '" + name + "'");
      return value;
   }

   [[noreturn]] void fail(const std::string &what) const
   {
      throw std::runtime_error("sofie-rdf: weights file '" + fFile + "' " + what);
   }

   std::ifstream fIn;
   std::string fFile;
   bool fBinary = false;
};
