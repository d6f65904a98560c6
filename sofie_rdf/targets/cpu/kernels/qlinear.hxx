// onnxruntime's element-wise quantized operators (com.microsoft QLinear*): functions of one 8-bit value through a
// table of its 256 results, the integer mean of each channel, and the parts of a concatenation requantized.

// table[byte] = saturate(round(f((q - x_zero) x_scale) / y_scale) + y_zero) for every q of the 8-bit type T, as
// onnxruntime's QlinearBuildLookupTable computes it (the division in float).
template <typename T, typename F>
inline void qlinear_table(float x_scale, int32_t x_zero, float y_scale, int32_t y_zero, F f, T *table)
{
   for (unsigned byte = 0; byte < 256; ++byte) {
      const uint8_t bits = static_cast<uint8_t>(byte);
      T q;
      std::memcpy(&q, &bits, 1);
      const float x = static_cast<float>(static_cast<int32_t>(q) - x_zero) * x_scale;
      table[byte] = saturate_round<T>(f(x) / y_scale, y_zero);
   }
}

// y[i] = table[x[i]]: QLinearSigmoid, QLinearLeakyRelu.
template <typename T>
SOFIE_RDF_KERNEL void qlinear_lookup(const T *x, size_t n, const T *table, T *y)
{
   for (size_t i = 0; i < n; ++i) {
      uint8_t bits;
      std::memcpy(&bits, x + i, 1);
      y[i] = table[bits];
   }
}

// QLinearGlobalAveragePool over x seen as (outer, image, inner): y[o][i] = saturate(round((sum_p x[o][p][i] -
// x_zero image) * x_scale / (y_scale image)) + y_zero), the sum in int32 (NCHW: inner 1; NHWC: inner = C).
template <typename T>
SOFIE_RDF_KERNEL void qlinear_global_average_pool(const T *x, size_t outer, size_t image, size_t inner, float x_scale,
                                                  int32_t x_zero, float y_scale, int32_t y_zero, T *y)
{
   const float multiplier = x_scale / (y_scale * static_cast<float>(image));
   for (size_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < inner; ++i) {
         int32_t sum = 0;
         for (size_t p = 0; p < image; ++p)
            sum += static_cast<int32_t>(x[(o * image + p) * inner + i]);
         const float v = static_cast<float>(sum - x_zero * static_cast<int32_t>(image)) * multiplier;
         y[o * inner + i] = saturate_round<T>(v, y_zero);
      }
}

// One input of QLinearConcat: x seen as (outer, part) written at column `offset` of y seen as (outer, total),
// each value through `table` (null: copied, the input's scale and zero point being the output's).
template <typename T>
SOFIE_RDF_KERNEL void qlinear_concat_part(const T *x, size_t outer, size_t part, size_t total, size_t offset,
                                          const T *table, T *y)
{
   for (size_t o = 0; o < outer; ++o) {
      T *row = y + o * total + offset;
      if (table)
         qlinear_lookup(x + o * part, part, table, row);
      else
         detail::copy_n(x + o * part, part, row);
   }
}
