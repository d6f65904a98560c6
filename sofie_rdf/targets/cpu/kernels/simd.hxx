// Float vectors as wide as the instruction set the compiler targets: one AVX-512, AVX or SSE register
// (GCC and Clang vector extensions, which Cling compiles too).  For the loops the auto-vectorizer leaves
// scalar: reductions it may not reorder (a maximum, a sum) and selects it does not if-convert.
#if defined(__AVX512F__)
#define SOFIE_SIMD_BYTES 64
#elif defined(__AVX__)
#define SOFIE_SIMD_BYTES 32
#else
#define SOFIE_SIMD_BYTES 16
#endif
typedef float vfloat __attribute__((vector_size(SOFIE_SIMD_BYTES)));
constexpr size_t kVFloatLanes = sizeof(vfloat) / sizeof(float);

inline vfloat vload(const float *p)
{
   vfloat v;
   std::memcpy(&v, p, sizeof v);
   return v;
}

inline void vstore(float *p, vfloat v) { std::memcpy(p, &v, sizeof v); }

// x in every lane.  x - (+0) is x for every x (where 0 + x turns -0 into +0), so the compiler drops the
// subtraction and emits one broadcast; 0 + x cost a load, an add and the broadcast.
inline vfloat vsplat(float x) { return x - vfloat{}; }

// The greater of a and b lane by lane: a when greater, else b (so NaN in a never wins).
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

// The lanes of v combined pairwise, half the lanes a step: log2(lanes) dependent steps where a running
// total over the lanes takes one per lane (16 with AVX-512, as long as the work on a short row such as an
// attention row of 128 values).  The order of the sum differs from a running total's by rounding only.
template <typename Combine>
inline float lanes_tree(vfloat v, Combine combine)
{
   float t[kVFloatLanes];
   std::memcpy(t, &v, sizeof t);
   for (size_t width = kVFloatLanes / 2; width > 0; width /= 2)
      for (size_t l = 0; l < width; ++l)
         t[l] = combine(t[l], t[l + width]);
   return t[0];
}

inline float hmax(vfloat v)
{
   return lanes_tree(v, [](float a, float b) { return b > a ? b : a; });
}

inline float hsum(vfloat v)
{
   return lanes_tree(v, [](float a, float b) { return a + b; });
}
