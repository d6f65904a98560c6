// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear: a quantized value q stands for
// (q - zero_point) * scale.
//
// The scale (and zero point) of element (o, a, i) of x, viewed as (outer, length, inner) around the quantized
// axis, is element o * outer_step + (a / block) * axis_step + i * inner_step: all steps 0 for one scale, axis_step
// 1 for one per index of the axis, (outer_step, axis_step, inner_step) = (blocks * inner, inner, 1) for blocks of
// `block` indices along it (emitters/quantized.py: scale_steps).
struct ScaleLayout {
   size_t outer, length, inner, block, outer_step, axis_step, inner_step;
};

// Heavy kernels stay out of infer() (kernels/gemm.hxx says why).
#ifndef SOFIE_RDF_KERNEL
#define SOFIE_RDF_KERNEL [[gnu::noinline]] inline
#endif
// Whether T is one of the small float types of narrow.hxx (quantized by rounding, not by integer steps).
template <typename T>
constexpr bool kMinifloat = !std::numeric_limits<T>::is_integer;

// v rounded half to even, plus the zero point, clamped to T's range (NaN to its lowest value, as onnxruntime's
// conversion gives).  R is float, or double where x / scale was computed in double.  v is clamped first, to
// bounds that are integers (the same as clamping the rounded value), and then rounded by adding and subtracting
// 1.5 x 2^23 (2^52 in double), exact below 2^22 in magnitude, which T's at most 16 bits ensure: std::nearbyint is
// a call no loop vectorizes around.
template <typename T, typename R>
inline T saturate_round(R v, int zero)
{
   static_assert(sizeof(T) <= 2, "the rounding by addition needs |v| < 2^22");
   constexpr R kRound = std::is_same_v<R, double> ? 6755399441055744.0 : 12582912.0f;
   const R lowest = static_cast<R>(static_cast<int>(std::numeric_limits<T>::lowest()) - zero);
   const R highest = static_cast<R>(static_cast<int>(std::numeric_limits<T>::max()) - zero);
   const R c = v >= lowest ? (v <= highest ? v : highest) : lowest;
   return T(static_cast<int>((c + kRound) - kRound) + zero);
}

// y = quantize(x / scale) with the division in P (QuantizeLinear's precision: the operands' common type unless
// the node names one); `saturate` only matters for the small float types.  `zero` may be null.
template <typename P, typename X, typename S, typename Y>
SOFIE_RDF_KERNEL void quantize_linear(const X *x, const S *scale, const Y *zero, Y *y, const ScaleLayout &l, bool saturate)
{
   using R = std::conditional_t<std::is_same_v<P, double>, double, float>;
   if constexpr (!kMinifloat<Y>)
      if (l.outer_step == 0 && l.axis_step == 0 && l.inner_step == 0) { // one scale: a loop the compiler vectorizes
         const P s = static_cast<P>(scale[0]);
         const int z = zero ? static_cast<int>(zero[0]) : 0;
         const size_t count = l.outer * l.length * l.inner; // a local: a byte store may alias `l`
         for (size_t e = 0; e < count; ++e)
            y[e] = saturate_round<Y>(static_cast<R>(static_cast<P>(static_cast<P>(x[e]) / s)), z);
         return;
      }
   size_t e = 0;
   for (size_t o = 0; o < l.outer; ++o)
      for (size_t a = 0; a < l.length; ++a) {
         const size_t base = o * l.outer_step + (a / l.block) * l.axis_step;
         for (size_t i = 0; i < l.inner; ++i, ++e) {
            const size_t k = base + i * l.inner_step;
            const R v = static_cast<R>(static_cast<P>(static_cast<P>(x[e]) / static_cast<P>(scale[k])));
            if constexpr (kMinifloat<Y>)  // FLOAT4E2M1 adds its zero point as a value, as the reference does
               y[e] = Y::from_bits(Y::encode(static_cast<float>(v) + (zero ? static_cast<float>(zero[k]) : 0.0f), saturate));
            else
               y[e] = saturate_round<Y>(v, zero ? static_cast<int>(zero[k]) : 0);
         }
      }
}

// y = (x - zero) * scale, computed in float (the difference exactly, in 64 bits); the small float types have no
// zero point (the spec wants it 0).
template <typename X, typename S, typename Y>
SOFIE_RDF_KERNEL void dequantize_linear(const X *x, const S *scale, const X *zero, Y *y, const ScaleLayout &l)
{
   size_t e = 0;
   for (size_t o = 0; o < l.outer; ++o)
      for (size_t a = 0; a < l.length; ++a) {
         const size_t base = o * l.outer_step + (a / l.block) * l.axis_step;
         for (size_t i = 0; i < l.inner; ++i, ++e) {
            const size_t k = base + i * l.inner_step;
            float d;
            if constexpr (kMinifloat<X>)
               d = static_cast<float>(x[e]);
            else
               d = static_cast<float>(static_cast<int64_t>(x[e]) - (zero ? static_cast<int64_t>(zero[k]) : 0));
            y[e] = static_cast<Y>(d * static_cast<float>(scale[k]));
         }
      }
}

// The scale and zero point that map [lo, hi] (stretched to hold 0) onto 0 ... 255, as DynamicQuantizeLinear
// defines them (onnxruntime's GetQuantizationParameter gives 1, not 1 / 255, for an all-zero range, which
// quantizes to zeros either way).
inline void dynamic_quantization(float lo, float hi, float &scale, uint8_t &zero)
{
   lo = lo < 0.0f ? lo : 0.0f;
   hi = hi > 0.0f ? hi : 0.0f;
   scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
   const float initial = 0.0f - lo / scale;
   zero = static_cast<uint8_t>(std::nearbyint(initial < 0.0f ? 0.0f : (initial > 255.0f ? 255.0f : initial)));
}

// The least and greatest of n values into lo and hi (which start where the caller says), in vectors of running
// minima and maxima (simd.hxx), two a turn: a single running pair is a reduction, which no compiler vectorizes
// without -ffast-math, and that loop took most of a 64 x 512 DynamicQuantizeLinear's time (3x this one's, Zen 3).
// The lanes give the same result: every lane starts at the caller's value, each skips NaNs, and a -0 never
// replaces a +0 (both orders compare false).  lo and hi are read and written once: they may alias x.
inline void extend_range(const float *x, size_t n, float &lo, float &hi)
{
   constexpr size_t kStep = 2 * kVFloatLanes;
   vfloat lo0 = vsplat(lo), lo1 = lo0, hi0 = vsplat(hi), hi1 = hi0;
   size_t i = 0;
   for (; i + kStep <= n; i += kStep) {
      const vfloat a = vload(x + i), b = vload(x + i + kVFloatLanes);
      lo0 = a < lo0 ? a : lo0;
      lo1 = b < lo1 ? b : lo1;
      hi0 = vmax(a, hi0);
      hi1 = vmax(b, hi1);
   }
   float l = lo, h = hi;
   for (; i < n; ++i) {
      l = x[i] < l ? x[i] : l;
      h = x[i] > h ? x[i] : h;
   }
   for (size_t k = 0; k < kVFloatLanes; ++k) {
      l = lo0[k] < l ? lo0[k] : l;
      l = lo1[k] < l ? lo1[k] : l;
      h = hi0[k] > h ? hi0[k] : h;
      h = hi1[k] > h ? hi1[k] : h;
   }
   lo = l;
   hi = h;
}

// x quantized to uint8 with a scale and zero point.
inline void quantize_uint8(const float *x, size_t n, float scale, uint8_t zero, uint8_t *y)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = saturate_round<uint8_t>(x[i] / scale, zero);
}

// DynamicQuantizeLinear: x's range, stretched to hold 0, mapped onto 0 ... 255 (scale and zero point written
// to `scale` and `zero`), and x quantized with them.
SOFIE_RDF_KERNEL void dynamic_quantize_linear(const float *x, size_t n, uint8_t *y, float *scale, uint8_t *zero)
{
   float lo = 0.0f, hi = 0.0f;
   extend_range(x, n, lo, hi);
   dynamic_quantization(lo, hi, *scale, *zero);
   quantize_uint8(x, n, *scale, *zero, y);
}
