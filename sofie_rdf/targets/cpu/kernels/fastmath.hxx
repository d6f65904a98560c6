// exp, tanh, erf and the logistic function for float, written with arithmetic and
// bit operations only, so loops calling them vectorize without -ffast-math
// (std::exp is a library call the compiler will not vectorize unless allowed
// to ignore errno and IEEE corner cases).  e^x is reduced to 2^n * e^r with
// |r| <= ln(2) / 2 (Cody and Waite's two-part ln 2) and e^r is a polynomial:
// relative error within a few units in the last place over the whole range,
// infinities and NaN handled.  double keeps the standard library.

// Inlined whatever the size of the function calling them: in the infer() of a large model GCC's inliner
// runs out of budget, and a call per element keeps the loop from vectorizing (GELU ten times slower).
#ifndef SOFIE_RDF_INLINE
#define SOFIE_RDF_INLINE [[gnu::always_inline]] inline
#endif

// Each step below is written for F a float and I an int32_t, or F a vector of floats and I one of as many
// int32_t (GCC vector extensions: softmax.hxx calls them on vectors where GCC left a loop over the lanes
// scalar); scalar operands of vector arithmetic are broadcast.

// 2^n for an integer n in [-126, 127], as a float built from its exponent bits.
template <typename F = float, typename I = int32_t>
SOFIE_RDF_INLINE F pow2i(I n)
{
   const I bits = (n + 127) << 23; // n + 127 >= 1: no sign bit to shift
   F f;
   std::memcpy(&f, &bits, sizeof f);
   return f;
}

// e^x as p * 2^n for an x already clamped to the caller's range: n = round(x / ln 2) and p = e^r (in
// [0.7, 1.5]) on the remainder r = x - n ln 2.  ln 2 is split so that n times its first part is exact
// (it has 9 significant bits), with or without fused multiply-adds.  The polynomial is of degree 6, fitted to
// e^r on |r| <= ln(2) / 2 for least relative error (2e-9: below float's rounding); Cephes' degree-7
// polynomial is no more accurate in float and costs two more operations per element.
template <typename F = float, typename I = int32_t>
struct ExpParts {
   F p;
   I n;
};

// round(x / ln 2), as a float and as an integer, for |x| < 2^21.  Adding 1.5 * 2^23 rounds to an integer (a
// float that large has no fraction bits) and leaves it in the low bits of the sum's mantissa: one addition
// where std::nearbyint and a conversion are two instructions, and plain arithmetic, which vectorizes for
// any target (SSE2, Cling's, has no rounding instruction: nearbyint is a library call per element there).
// -ffast-math would fold (y + c) - c to y, so it keeps nearbyint (scalars only: vectors have no nearbyint).
#if defined(__FAST_MATH__) && !defined(SOFIE_EXP_NEARBYINT)
#define SOFIE_EXP_NEARBYINT 1
#endif
#ifndef SOFIE_EXP_NEARBYINT
#define SOFIE_EXP_NEARBYINT 0
#endif
template <typename F, typename I>
SOFIE_RDF_INLINE F exp_round(F x, I &n)
{
   if constexpr (SOFIE_EXP_NEARBYINT && std::is_same<F, float>::value) {
      const float rounded = std::nearbyint(x * 1.44269504088896341f);
      n = static_cast<int32_t>(rounded);
      return rounded;
   } else {
      static_assert(!(SOFIE_EXP_NEARBYINT && sizeof(F) > 0), "with -ffast-math, vectors keep the scalar functions");
      constexpr float kRound = 12582912.0f;      // 1.5 * 2^23
      constexpr int32_t kRoundBits = 0x4B400000; // its bit pattern
      const F shifted = x * 1.44269504088896341f + kRound;
      std::memcpy(&n, &shifted, sizeof n);
      n -= kRoundBits;
      return shifted - kRound;
   }
}

// a where c holds, else b, by bit masks: GCC if-converts no comparison it cannot prove quiet under trapping math
// (its default), and then keeps the loop around it scalar: the ?: and std::min/max of these functions left
// GELU's loop 5.4x as slow in a build without -march as in the native build.  Masks are arithmetic, which any
// loop vectorizes.
SOFIE_RDF_INLINE float select_bits(bool c, float a, float b)
{
   int32_t bits_a, bits_b;
   std::memcpy(&bits_a, &a, sizeof a);
   std::memcpy(&bits_b, &b, sizeof b);
   const int32_t mask = -static_cast<int32_t>(c), bits = (bits_a & mask) | (bits_b & ~mask);
   float f;
   std::memcpy(&f, &bits, sizeof f);
   return f;
}

// x clamped to [lo, hi]; NaN stays NaN.
SOFIE_RDF_INLINE float clamp_to(float x, float lo, float hi)
{
   const float above = select_bits(x < lo, lo, x);
   return select_bits(above > hi, hi, above);
}

template <typename F = float, typename I = int32_t>
SOFIE_RDF_INLINE ExpParts<F, I> exp_parts(F x)
{
   I ni;
   const F n = exp_round(x, ni);
   F r = x - n * 0.693359375f;
   r = r - n * -2.12194440e-4f;
   F p = r * 1.3843640918e-3f + 8.3741573617e-3f;
   p = p * r + 4.1668001562e-2f;
   p = p * r + 1.6666431725e-1f;
   p = p * r + 4.9999994040e-1f;
   p = p * r + 1.0f;
   return {p * r + 1.0f, ni};
}

SOFIE_RDF_INLINE float fast_exp(float x)
{
   const auto e = exp_parts(clamp_to(x, -104.0f, 89.0f));
   const int32_t half = e.n / 2; // 2^n in two factors: n reaches -150 and 128
   const float y = e.p * pow2i(half) * pow2i(e.n - half);
   return select_bits(x != x, x, y); // NaN stays NaN
}

// e^t for t <= 0, with one scaling: t is clamped where 2^n reaches 2^-127, which pow2i gives as 0, so
// results below about 1e-38 (the normal range) flush to 0.  NaN stays NaN (every step propagates it).
SOFIE_RDF_INLINE float fast_exp_nonpositive(float t)
{
   const auto e = exp_parts(select_bits(t < -88.0f, -88.0f, t)); // n = round(t / ln 2) >= -127
   return e.p * pow2i(e.n);
}

// tanh from e = e^-2|x| <= 1 (fast_exp_nonpositive: one scaling, no overflow to guard): (1 - e) / (1 + e),
// which does not cancel for |x| >= 0.625 (e <= 0.29); below that an odd polynomial.  Through fast_exp of +2|x|
// (two scalings, clamps at both ends) GELU's tanh form took 1.5x as long.  __builtin_fabsf and
// __builtin_copysignf, not std::abs and std::copysign: ROOT's Cling inlines only what is always_inline, and
// std's wrappers stayed a call per element (GELU's erf form 22x slower than g++'s build).
// tanh(x) for |x| < 0.625, where 1 - e cancels: an odd polynomial (F a float or a vector of floats).
template <typename F>
SOFIE_RDF_INLINE F tanh_small(F x)
{
   const F s = x * x;
   return ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) * s -
           3.33332819422e-1f) * s * x + x;
}

SOFIE_RDF_INLINE float fast_tanh(float x)
{
   const float a = __builtin_fabsf(x);
   const float e = fast_exp_nonpositive(-2.0f * a);
   const float big = (1.0f - e) / (1.0f + e);
   const float y = select_bits(a < 0.625f, tanh_small(x), __builtin_copysignf(big, x));
   return select_bits(x != x, x, y);
}

// 1 / (1 + e^-x) from e = e^-|x| <= 1, which cannot overflow: 1 / (1 + e) for x >= 0, e / (1 + e) below.
// Half the instructions of fast_exp's two-factor scaling, and one division; the largest output-bound
// epilogues (a 64 x 40500 Gemm + Sigmoid) spend a sixth of their time here.
SOFIE_RDF_INLINE float fast_sigmoid(float x)
{
   const float e = fast_exp_nonpositive(-__builtin_fabsf(x));
   return select_bits(x >= 0.0f, 1.0f, e) / (1.0f + e);
}

// erf(x) = x P(x^2) / Q(x^2), a rational function of degrees 5 and 5 in x^2 fitted on |x| <= 4 for least
// relative error (3.5e-7 in float arithmetic: a few units in the last place).  From |x| = 3.93 on, erf(x)
// rounds to +-1 in float and is given exactly, so GELU's x (1 + erf(x / sqrt 2)) / 2 is exactly 0 for
// large negative x.  Eleven multiply-adds and one division, no branch: loops vectorize, where std::erf is
// a library call per element, thirty times slower.  GELU as exported (x/sqrt 2 -> Erf -> ...) runs here.
SOFIE_RDF_INLINE float fast_erf(float x)
{
   const float c = clamp_to(x, -4.0f, 4.0f);
   const float s = c * c;
   const float p =
      ((((1.986798679e-6f * s + 2.845670970e-4f) * s + 3.883343423e-3f) * s + 5.310174450e-2f) * s +
       1.935448945e-1f) * s + 1.128379107f;
   const float q =
      ((((3.742040644e-5f * s + 1.185573405e-3f) * s + 1.520724781e-2f) * s + 1.153499484e-1f) * s +
       5.048572421e-1f) * s + 1.0f;
   const float y = select_bits(__builtin_fabsf(x) >= 3.93f, __builtin_copysignf(1.0f, x), c * p / q);
   return select_bits(x != x, x, y);
}

inline double fast_exp(double x) { return std::exp(x); }
inline double fast_exp_nonpositive(double t) { return std::exp(t); }
inline double fast_erf(double x) { return std::erf(x); }
inline double fast_tanh(double x) { return std::tanh(x); }
inline double fast_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
