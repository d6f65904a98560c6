// 16-bit floating-point element types (ONNX FLOAT16 and BFLOAT16), for models that use them.
//
// Standard C++17 has no such types, so these are 16-bit bit patterns that convert to float
// implicitly (exactly: every value is a float) and from float by rounding to nearest even, as
// numpy / ml_dtypes and onnxruntime do.  Arithmetic is the float arithmetic of the converted
// values, so the templated kernels compute in float and round once, when they store a result.
// std::numeric_limits is specialized (kernels ask for infinity, lowest, NaN), which is why this
// section sits at namespace scope, outside the model's namespace, behind its own guard: several
// generated headers may be included together.
#ifndef SOFIE_RDF_HALF_TYPES
#define SOFIE_RDF_HALF_TYPES

namespace sofie_rdf {

namespace half_bits {

inline uint32_t of_float(float f)
{
   uint32_t u;
   std::memcpy(&u, &f, sizeof u);
   return u;
}

inline float to_float(uint32_t u)
{
   float f;
   std::memcpy(&f, &u, sizeof f);
   return f;
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
inline uint16_t binary16_of(float f)
{
   const uint32_t u = of_float(f);
   const uint32_t sign = (u >> 16) & 0x8000u;
   const uint32_t a = u & 0x7fffffffu;
   if (a > 0x7f800000u)                                          // NaN: keep it quiet, keep the top payload bits
      return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
   if (a >= 0x477ff000u)                                         // 65520 and above (and inf) round to inf
      return static_cast<uint16_t>(sign | 0x7c00u);
   if (a >= 0x38800000u) {                                       // normal: rebias, round the 13 dropped bits
      const uint32_t r = a - 0x38000000u;
      return static_cast<uint16_t>(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
   }
   const uint32_t shift = 126u - (a >> 23);                      // subnormal: units of 2^-24
   if (shift > 24u)
      return static_cast<uint16_t>(sign);
   const uint32_t m = (a & 0x7fffffu) | 0x800000u;
   const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
   return static_cast<uint16_t>(sign | (q + (rest > half || (rest == half && (q & 1u)))));
}

inline float float_of_binary16(uint16_t h)
{
   const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
   const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
   if (exponent == 0x1fu)
      return to_float(sign | 0x7f800000u | (mantissa << 13));
   if (exponent == 0) {
      const float v = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // mantissa * 2^-24, exact
      return sign ? -v : v;
   }
   return to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// bfloat16: the upper half of a float; rounding the lower half carries into the exponent as it should.
inline uint16_t bfloat16_of(float f)
{
   const uint32_t u = of_float(f);
   if ((u & 0x7fffffffu) > 0x7f800000u)
      return static_cast<uint16_t>((u >> 16) | 0x40u);
   return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float float_of_bfloat16(uint16_t b)
{
   return to_float(static_cast<uint32_t>(b) << 16);
}

// The two encodings, as the type parameter of Float16Storage (a class: cppyy instantiates
// std::vector and friends of it, which it cannot do for function-pointer parameters).
struct Binary16 {
   static uint16_t encode(float f) { return binary16_of(f); }
   static float decode(uint16_t b) { return float_of_binary16(b); }
};

struct BFloat16 {
   static uint16_t encode(float f) { return bfloat16_of(f); }
   static float decode(uint16_t b) { return float_of_bfloat16(b); }
};

} // namespace half_bits

// One 16-bit type: Encoding::encode/decode convert float <-> bits.  Construction from float is
// implicit so that kernels can store or return a float result as T, as they do for float and double
// (an explicit one rejects `return a * b;` in every T-returning lambda); the other arithmetic types
// convert explicitly (static_cast<T>(v), T(0)), through float.  The price: `c ? T : float` is
// ambiguous, so kernels cast such a branch to T.  No member is a template and both types are
// instantiated explicitly below: Cling rolls back the instantiations made by a header that fails to
// compile, which would break the types for every later header.
template <typename Encoding>
struct Float16Storage {
   uint16_t bits;

   Float16Storage() = default;
   Float16Storage(float v) : bits(Encoding::encode(v)) {}
   explicit Float16Storage(double v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(int v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(unsigned v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(long v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(unsigned long v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(long long v) : Float16Storage(static_cast<float>(v)) {}
   explicit Float16Storage(unsigned long long v) : Float16Storage(static_cast<float>(v)) {}
   static constexpr Float16Storage from_bits(uint16_t b) { return Float16Storage(b, nullptr); }

   operator float() const { return Encoding::decode(bits); }
   // Negation is exact, and keeping the type lets `c ? T(0) : -T(...)` have one type.
   constexpr Float16Storage operator-() const { return from_bits(static_cast<uint16_t>(bits ^ 0x8000u)); }

   Float16Storage &operator+=(float v) { return *this = Float16Storage(float(*this) + v); }
   Float16Storage &operator-=(float v) { return *this = Float16Storage(float(*this) - v); }
   Float16Storage &operator*=(float v) { return *this = Float16Storage(float(*this) * v); }
   Float16Storage &operator/=(float v) { return *this = Float16Storage(float(*this) / v); }

private:
   constexpr Float16Storage(uint16_t b, std::nullptr_t) : bits(b) {}
};

using float16_t = Float16Storage<half_bits::Binary16>;
using bfloat16_t = Float16Storage<half_bits::BFloat16>;
template struct Float16Storage<half_bits::Binary16>;
template struct Float16Storage<half_bits::BFloat16>;

// The limits of a 16-bit type from its bit patterns: Digits mantissa bits (with the implicit one),
// Exponent exponent bits.
template <typename T, int Digits, int Exponent>
struct Float16Limits {
   static constexpr bool is_specialized = true, is_signed = true, is_integer = false, is_exact = false;
   static constexpr bool has_infinity = true, has_quiet_NaN = true, has_signaling_NaN = true;
   static constexpr bool is_bounded = true, is_modulo = false, traps = false, tinyness_before = false;
   static constexpr std::float_denorm_style has_denorm = std::denorm_present;
   static constexpr bool has_denorm_loss = false;
   static constexpr std::float_round_style round_style = std::round_to_nearest;
   static constexpr bool is_iec559 = Exponent == 5;
   static constexpr int digits = Digits, radix = 2;
   static constexpr int digits10 = Digits == 11 ? 3 : 2, max_digits10 = Digits == 11 ? 5 : 4;
   static constexpr int max_exponent = 1 << (Exponent - 1), min_exponent = 3 - max_exponent;
   static constexpr int max_exponent10 = Exponent == 5 ? 4 : 38, min_exponent10 = Exponent == 5 ? -4 : -37;
   static constexpr uint16_t exponent_mask = ((1u << Exponent) - 1u) << (Digits - 1);
   static constexpr T min() noexcept { return T::from_bits(1u << (Digits - 1)); }
   static constexpr T lowest() noexcept { return T::from_bits(0x8000u | (exponent_mask - 1u)); }
   static constexpr T max() noexcept { return T::from_bits(exponent_mask - 1u); }
   static constexpr T epsilon() noexcept { return T::from_bits((max_exponent - Digits) << (Digits - 1)); }
   static constexpr T round_error() noexcept { return T::from_bits((max_exponent - 2) << (Digits - 1)); }
   static constexpr T infinity() noexcept { return T::from_bits(exponent_mask); }
   static constexpr T quiet_NaN() noexcept { return T::from_bits(exponent_mask | (1u << (Digits - 2))); }
   static constexpr T signaling_NaN() noexcept { return T::from_bits(exponent_mask | 1u); }
   static constexpr T denorm_min() noexcept { return T::from_bits(1u); }
};

template struct Float16Limits<float16_t, 11, 5>;
template struct Float16Limits<bfloat16_t, 8, 8>;

} // namespace sofie_rdf

namespace std {
template <>
class numeric_limits<sofie_rdf::float16_t> : public sofie_rdf::Float16Limits<sofie_rdf::float16_t, 11, 5> {
};
template <>
class numeric_limits<sofie_rdf::bfloat16_t> : public sofie_rdf::Float16Limits<sofie_rdf::bfloat16_t, 8, 8> {
};
} // namespace std

#endif // SOFIE_RDF_HALF_TYPES
