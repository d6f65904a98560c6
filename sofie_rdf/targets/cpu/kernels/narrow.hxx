// Element types narrower than a byte's worth of standard C++: the 4- and 2-bit integers (ONNX INT4, UINT4,
// INT2, UINT2) and the 8- and 4-bit floats (FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ,
// FLOAT4E2M1), for quantized models.
//
// Each element takes one byte holding its bits in the low end, as ml_dtypes (numpy's view of these types)
// stores them, so that a Python Session passes numpy buffers as they are.  The integers convert to int; the
// floats convert to float exactly (every value is a float) and from float by rounding to nearest even, the
// conversion saturating as ONNX's Cast (saturate=1) does: beyond the largest finite value to that value.
// QuantizeLinear's saturate=0 calls encode(v, false).  Like kernels/half.hxx this sits at namespace scope
// behind its own guard, no member is a template, and the types are instantiated explicitly: Cling rolls back
// the instantiations a failing header made, which would break the types for every later header.
#ifndef SOFIE_RDF_NARROW_TYPES
#define SOFIE_RDF_NARROW_TYPES

namespace sofie_rdf {

// A two's complement (Signed) or unsigned integer of Bits bits.  Conversion from a wider integer keeps its
// low bits (as a cast to int8_t does); quantizing kernels clamp first.
template <int Bits, bool Signed>
struct NarrowInt {
   static constexpr unsigned kMask = (1u << Bits) - 1u;
   static constexpr int kMin = Signed ? -(1 << (Bits - 1)) : 0;
   static constexpr int kMax = Signed ? (1 << (Bits - 1)) - 1 : (1 << Bits) - 1;
   uint8_t bits;

   NarrowInt() = default;
   explicit constexpr NarrowInt(int v) : bits(static_cast<uint8_t>(static_cast<unsigned>(v) & kMask)) {}
   explicit constexpr NarrowInt(unsigned v) : bits(static_cast<uint8_t>(v & kMask)) {}
   explicit constexpr NarrowInt(long v) : NarrowInt(static_cast<int>(v & 0xff)) {}
   explicit constexpr NarrowInt(unsigned long v) : NarrowInt(static_cast<unsigned>(v & 0xff)) {}
   explicit constexpr NarrowInt(long long v) : NarrowInt(static_cast<int>(v & 0xff)) {}
   explicit constexpr NarrowInt(unsigned long long v) : NarrowInt(static_cast<unsigned>(v & 0xff)) {}
   explicit NarrowInt(float v) : NarrowInt(static_cast<long long>(v)) {}
   explicit NarrowInt(double v) : NarrowInt(static_cast<long long>(v)) {}

   constexpr operator int() const
   {
      const int sign = Signed ? static_cast<int>(bits & (1u << (Bits - 1))) : 0;
      return static_cast<int>(bits) - 2 * sign;
   }
};

using int4_t = NarrowInt<4, true>;
using uint4_t = NarrowInt<4, false>;
using int2_t = NarrowInt<2, true>;
using uint2_t = NarrowInt<2, false>;
template struct NarrowInt<4, true>;
template struct NarrowInt<4, false>;
template struct NarrowInt<2, true>;
template struct NarrowInt<2, false>;

// What a small float's top exponent and its sign bit encode.
enum class Specials {
   kIeee,         // infinities and NaNs where the exponent is all ones (E5M2)
   kNaNOnly,      // no infinity; NaN is S.1111.111, the rest of the top exponent finite (E4M3FN)
   kUnsignedZero, // no infinity, no negative zero: NaN is the bit pattern of -0 (the FNUZ types)
   kNone,         // every pattern finite, NaN converts to -0 as ml_dtypes does (FLOAT4E2M1)
};

// A float of 1 sign, Exponent exponent and Mantissa mantissa bits, exponent bias Bias.
template <int Exponent, int Mantissa, int Bias, Specials Kind>
struct Minifloat {
   static constexpr unsigned kSign = 1u << (Exponent + Mantissa);
   static constexpr unsigned kExponentOnes = (1u << Exponent) - 1u;
   static constexpr unsigned kMantissaOnes = (1u << Mantissa) - 1u;
   static constexpr int kMinExponent = 1 - Bias;  // of the smallest normal value
   static constexpr int kMantissaBits = Mantissa;
   // The largest finite value's bits (sign clear) and the NaN pattern.
   static constexpr unsigned kMaxBits = Kind == Specials::kIeee ? ((kExponentOnes - 1u) << Mantissa) | kMantissaOnes
                                        : Kind == Specials::kNaNOnly ? (kExponentOnes << Mantissa) | (kMantissaOnes - 1u)
                                                                     : (kExponentOnes << Mantissa) | kMantissaOnes;
   static constexpr unsigned kNaNBits = Kind == Specials::kIeee      ? (kExponentOnes << Mantissa) | (1u << (Mantissa - 1))
                                        : Kind == Specials::kNaNOnly ? (kExponentOnes << Mantissa) | kMantissaOnes
                                                                     : kSign;
   uint8_t bits;

   Minifloat() = default;
   Minifloat(float v) : bits(encode(v, true)) {}
   explicit Minifloat(double v) : Minifloat(static_cast<float>(v)) {}
   explicit Minifloat(int v) : Minifloat(static_cast<float>(v)) {}
   explicit Minifloat(long v) : Minifloat(static_cast<float>(v)) {}
   explicit Minifloat(long long v) : Minifloat(static_cast<float>(v)) {}
   static constexpr Minifloat from_bits(uint8_t b) { return Minifloat(b, nullptr); }

   operator float() const { return decode(bits); }

   static float decode(uint8_t b)
   {
      const unsigned exponent = (b >> Mantissa) & kExponentOnes, mantissa = b & kMantissaOnes;
      const bool negative = (b & kSign) != 0;
      if ((Kind == Specials::kIeee && exponent == kExponentOnes) ||
          (Kind == Specials::kNaNOnly && (b & ~kSign) == kNaNBits) || (Kind == Specials::kUnsignedZero && b == kSign)) {
         const float special = Kind == Specials::kIeee && mantissa == 0 ? HUGE_VALF : std::nanf("");
         return negative ? -special : special;
      }
      const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), kMinExponent - Mantissa)
                                            : std::ldexp(static_cast<float>(mantissa | (1u << Mantissa)),
                                                         static_cast<int>(exponent) - Bias - Mantissa);
      return negative ? -magnitude : magnitude;
   }

   // v rounded to nearest even; beyond the largest finite value, that value when `saturate` or where the type
   // has neither infinity nor NaN, else infinity (E5M2) or NaN.
   static uint8_t encode(float v, bool saturate)
   {
      const unsigned sign = std::signbit(v) ? kSign : 0u;
      if (std::isnan(v))
         return static_cast<uint8_t>(Kind == Specials::kUnsignedZero || Kind == Specials::kNone ? kNaNBits : sign | kNaNBits);
      const float rounded = round_to_precision(std::fabs(v));
      if (rounded > decode(static_cast<uint8_t>(kMaxBits))) {
         if (saturate || Kind == Specials::kNone)
            return static_cast<uint8_t>(sign | kMaxBits);
         if (Kind == Specials::kIeee)
            return static_cast<uint8_t>(sign | (kExponentOnes << Mantissa));
         return static_cast<uint8_t>(Kind == Specials::kUnsignedZero ? kNaNBits : sign | kNaNBits);
      }
      if (rounded == 0.0f)
         return static_cast<uint8_t>(Kind == Specials::kUnsignedZero ? 0u : sign);
      int exponent;
      std::frexp(rounded, &exponent);
      const int lead = exponent - 1;  // rounded = 1.m * 2^lead
      if (lead < kMinExponent)        // subnormal: a multiple of the smallest step
         return static_cast<uint8_t>(sign | static_cast<unsigned>(std::ldexp(rounded, Mantissa - kMinExponent)));
      const unsigned mantissa = static_cast<unsigned>(std::ldexp(rounded, Mantissa - lead)) & kMantissaOnes;
      return static_cast<uint8_t>(sign | (static_cast<unsigned>(lead + Bias) << Mantissa) | mantissa);
   }

private:
   constexpr Minifloat(uint8_t b, std::nullptr_t) : bits(b) {}

   // |v| with Mantissa bits after its leading one (fewer below the normal range), ties to even; exponents
   // above the type's range are kept, for encode to tell overflow.
   static float round_to_precision(float a)
   {
      if (std::isinf(a))
         return a;
      int exponent;
      std::frexp(a, &exponent);
      const int step = (exponent - 1 > kMinExponent ? exponent - 1 : kMinExponent) - Mantissa;
      return std::ldexp(std::nearbyint(std::ldexp(a, -step)), step);
   }
};

using float8_e4m3fn_t = Minifloat<4, 3, 7, Specials::kNaNOnly>;
using float8_e4m3fnuz_t = Minifloat<4, 3, 8, Specials::kUnsignedZero>;
using float8_e5m2_t = Minifloat<5, 2, 15, Specials::kIeee>;
using float8_e5m2fnuz_t = Minifloat<5, 2, 16, Specials::kUnsignedZero>;
using float4_e2m1_t = Minifloat<2, 1, 1, Specials::kNone>;
template struct Minifloat<4, 3, 7, Specials::kNaNOnly>;
template struct Minifloat<4, 3, 8, Specials::kUnsignedZero>;
template struct Minifloat<5, 2, 15, Specials::kIeee>;
template struct Minifloat<5, 2, 16, Specials::kUnsignedZero>;
template struct Minifloat<2, 1, 1, Specials::kNone>;

// The limits kernels ask of an element type (the range a quantizing kernel clamps to, what max pooling starts
// from, whether the weights reader parses a signed integer).
template <typename T, int Bits, bool Signed>
struct NarrowIntLimits {
   static constexpr bool is_specialized = true, is_signed = Signed, is_integer = true, is_exact = true;
   static constexpr bool has_infinity = false, has_quiet_NaN = false;
   static constexpr int digits = Signed ? Bits - 1 : Bits;
   static constexpr T min() noexcept { return T(T::kMin); }
   static constexpr T lowest() noexcept { return T(T::kMin); }
   static constexpr T max() noexcept { return T(T::kMax); }
};

template <typename T, Specials Kind>
struct MinifloatLimits {
   static constexpr bool is_specialized = true, is_signed = true, is_integer = false, is_exact = false;
   static constexpr bool has_infinity = Kind == Specials::kIeee, has_quiet_NaN = Kind != Specials::kNone;
   static constexpr T lowest() noexcept { return T::from_bits(static_cast<uint8_t>(T::kSign | T::kMaxBits)); }
   static constexpr T max() noexcept { return T::from_bits(static_cast<uint8_t>(T::kMaxBits)); }
   // The largest finite value where the type has no infinity (what max pooling starts from is then its lowest).
   static constexpr T infinity() noexcept
   {
      return T::from_bits(static_cast<uint8_t>(has_infinity ? T::kExponentOnes << T::kMantissaBits : T::kMaxBits));
   }
   static constexpr T quiet_NaN() noexcept { return T::from_bits(static_cast<uint8_t>(T::kNaNBits)); }
};

} // namespace sofie_rdf

namespace std {
template <>
class numeric_limits<sofie_rdf::int4_t> : public sofie_rdf::NarrowIntLimits<sofie_rdf::int4_t, 4, true> {
};
template <>
class numeric_limits<sofie_rdf::uint4_t> : public sofie_rdf::NarrowIntLimits<sofie_rdf::uint4_t, 4, false> {
};
template <>
class numeric_limits<sofie_rdf::int2_t> : public sofie_rdf::NarrowIntLimits<sofie_rdf::int2_t, 2, true> {
};
template <>
class numeric_limits<sofie_rdf::uint2_t> : public sofie_rdf::NarrowIntLimits<sofie_rdf::uint2_t, 2, false> {
};
template <>
class numeric_limits<sofie_rdf::float8_e4m3fn_t> : public sofie_rdf::MinifloatLimits<sofie_rdf::float8_e4m3fn_t, sofie_rdf::Specials::kNaNOnly> {
};
template <>
class numeric_limits<sofie_rdf::float8_e4m3fnuz_t> : public sofie_rdf::MinifloatLimits<sofie_rdf::float8_e4m3fnuz_t, sofie_rdf::Specials::kUnsignedZero> {
};
template <>
class numeric_limits<sofie_rdf::float8_e5m2_t> : public sofie_rdf::MinifloatLimits<sofie_rdf::float8_e5m2_t, sofie_rdf::Specials::kIeee> {
};
template <>
class numeric_limits<sofie_rdf::float8_e5m2fnuz_t> : public sofie_rdf::MinifloatLimits<sofie_rdf::float8_e5m2fnuz_t, sofie_rdf::Specials::kUnsignedZero> {
};
template <>
class numeric_limits<sofie_rdf::float4_e2m1_t> : public sofie_rdf::MinifloatLimits<sofie_rdf::float4_e2m1_t, sofie_rdf::Specials::kNone> {
};
} // namespace std

#endif // SOFIE_RDF_NARROW_TYPES
