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

inline vfloat vsplat(float x) { return vfloat{} + x; }

// The greater of a and b lane by lane: a when greater, else b (so NaN in a never wins).
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

inline float hmax(vfloat v)
{
   float m = v[0];
   for (size_t l = 1; l < kVFloatLanes; ++l)
      m = v[l] > m ? v[l] : m;
   return m;
}

inline float hsum(vfloat v)
{
   float s = 0.0f;
   for (size_t l = 0; l < kVFloatLanes; ++l)
      s += v[l];
   return s;
}
