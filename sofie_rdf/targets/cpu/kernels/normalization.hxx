// Normalization: BatchNormalization (inference), InstanceNormalization,
// GroupNormalization and LayerNormalization.
//
// Statistics are computed in two passes (mean first, then the mean of the
// squared deviations) and accumulated in double: the one-pass E[x^2] - E[x]^2
// form loses every significant digit when the mean is large against the
// spread, and float sums over large spatial extents drift.

using norm_acc_t = double;

// Mean and (biased) variance of n contiguous values, two-pass.
template <typename T>
inline void norm_moments(const T *x, size_t n, norm_acc_t &mean, norm_acc_t &var)
{
   norm_acc_t sum = 0;
   for (size_t i = 0; i < n; ++i)
      sum += static_cast<norm_acc_t>(x[i]);
   mean = n ? sum / static_cast<norm_acc_t>(n) : 0;
   norm_acc_t sq = 0;
   for (size_t i = 0; i < n; ++i) {
      const norm_acc_t d = static_cast<norm_acc_t>(x[i]) - mean;
      sq += d * d;
   }
   var = n ? sq / static_cast<norm_acc_t>(n) : 0;
}

// y = x * a + b over n contiguous values (a, b already fold the statistics and the affine part).
template <typename T>
inline void norm_affine(const T *x, T *y, size_t n, norm_acc_t a, norm_acc_t b)
{
   const T ta = static_cast<T>(a), tb = static_cast<T>(b);
   for (size_t i = 0; i < n; ++i)
      y[i] = x[i] * ta + tb;
}

// BatchNormalization in inference form on an (batch, channels, spatial) view:
// y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c].
// One value per (sample, channel) (spatial 1: a dense layer's BatchNorm1d, or one PyTorch's exporter wraps in
// Unsqueeze and Squeeze, which the fold into the Gemm does not see through) goes row by row, each sample's
// channels a contiguous vector loop with the channels' a and b from a table: channel by channel it was a strided
// scalar loop over the samples, 9x a dense layer's time on an L1 trigger MLP of hls4ml's.
constexpr size_t kBatchNormChannels = 256; // channels per table (on the stack)

template <typename T, typename S, typename M>
inline void batch_norm(const T *x, const S *scale, const S *bias, const M *mean, const M *var, T *y, size_t batch,
                       size_t channels, size_t spatial, norm_acc_t epsilon)
{
   const auto coefficients = [&](size_t c, norm_acc_t &a, norm_acc_t &b) {
      a = static_cast<norm_acc_t>(scale[c]) / std::sqrt(static_cast<norm_acc_t>(var[c]) + epsilon);
      b = static_cast<norm_acc_t>(bias[c]) - static_cast<norm_acc_t>(mean[c]) * a;
   };
   if (spatial == 1) {
      T ta[kBatchNormChannels], tb[kBatchNormChannels];
      for (size_t c0 = 0; c0 < channels; c0 += kBatchNormChannels) {
         const size_t count = detail::min_of(kBatchNormChannels, channels - c0);
         for (size_t c = 0; c < count; ++c) {
            norm_acc_t a, b;
            coefficients(c0 + c, a, b);
            ta[c] = static_cast<T>(a), tb[c] = static_cast<T>(b);
         }
         for (size_t n = 0; n < batch; ++n) {
            const T *xr = x + n * channels + c0;
            T *yr = y + n * channels + c0;
            for (size_t c = 0; c < count; ++c) // as norm_affine computes it
               yr[c] = xr[c] * ta[c] + tb[c];
         }
      }
      return;
   }
   for (size_t c = 0; c < channels; ++c) {
      norm_acc_t a, b;
      coefficients(c, a, b);
      for (size_t n = 0; n < batch; ++n) {
         const size_t offset = (n * channels + c) * spatial;
         norm_affine(x + offset, y + offset, spatial, a, b);
      }
   }
}

// Group (and instance) normalization on an (batch, channels, spatial) view:
// statistics over each block of channels / groups consecutive channels, then a
// per-channel affine map whose parameters are scale[c / channels_per_param]
// (1 for per-channel parameters, channels / groups for per-group ones).
template <typename T>
inline void group_norm(const T *x, const T *scale, const T *bias, T *y, size_t batch, size_t channels, size_t groups,
                       size_t spatial, size_t channels_per_param, norm_acc_t epsilon)
{
   const size_t per_group = channels / groups;
   for (size_t n = 0; n < batch; ++n) {
      for (size_t g = 0; g < groups; ++g) {
         const size_t first = n * channels + g * per_group;
         norm_acc_t mean = 0, var = 0;
         norm_moments(x + first * spatial, per_group * spatial, mean, var);
         const norm_acc_t inv_std = 1 / std::sqrt(var + epsilon);
         for (size_t k = 0; k < per_group; ++k) {
            const size_t c = g * per_group + k;
            const norm_acc_t a = static_cast<norm_acc_t>(scale[c / channels_per_param]) * inv_std;
            const norm_acc_t b = static_cast<norm_acc_t>(bias[c / channels_per_param]) - mean * a;
            norm_affine(x + (first + k) * spatial, y + (first + k) * spatial, spatial, a, b);
         }
      }
   }
}

// Mean and variance of one LayerNormalization row, in double (the generic case: norm_moments).
template <typename T>
inline void layer_norm_moments(const T *x, size_t n, norm_acc_t &mean, norm_acc_t &var)
{
   norm_moments(x, n, mean, var);
}

// float rows (stash_type float, as the spec computes them): vector lanes of float partial sums, in two
// passes; the second sums the deviations d from the first pass's mean as well as d^2, which corrects the
// mean's rounding (var = E[d^2] - E[d]^2 with E[d] tiny: the corrected two-pass algorithm).
template <>
inline void layer_norm_moments<float>(const float *x, size_t n, norm_acc_t &mean, norm_acc_t &var)
{
   constexpr size_t L = kVFloatLanes;
   const size_t full = n - n % L;
   vfloat acc = vsplat(0.0f);
   for (size_t i = 0; i < full; i += L)
      acc += vload(x + i);
   float sum = hsum(acc);
   for (size_t i = full; i < n; ++i)
      sum += x[i];
   const float first = n ? sum / static_cast<float>(n) : 0.0f;
   vfloat dev = vsplat(0.0f), sq = dev;
   for (size_t i = 0; i < full; i += L) {
      const vfloat d = vload(x + i) - first;
      dev += d;
      sq += d * d;
   }
   float dsum = hsum(dev), dsq = hsum(sq);
   for (size_t i = full; i < n; ++i) {
      const float d = x[i] - first;
      dsum += d;
      dsq += d * d;
   }
   const norm_acc_t shift = n ? static_cast<norm_acc_t>(dsum) / static_cast<norm_acc_t>(n) : 0;
   mean = first + shift;
   var = n ? detail::max_of<norm_acc_t>(static_cast<norm_acc_t>(dsq) / static_cast<norm_acc_t>(n) - shift * shift, 0) : 0;
}

// y = (x - mean) * inv_std * scale + bias over one row whose parameters are as long as it (no broadcast).
template <typename T>
inline void layer_norm_row(const T *x, T *y, const T *scale, const T *bias, size_t n, norm_acc_t mean,
                           norm_acc_t inv_std)
{
   const T m = static_cast<T>(mean), s = static_cast<T>(inv_std);
   if (bias)
      for (size_t j = 0; j < n; ++j)
         y[j] = (x[j] - m) * s * scale[j] + bias[j];
   else
      for (size_t j = 0; j < n; ++j)
         y[j] = (x[j] - m) * s * scale[j];
}

// LayerNormalization on an (outer, n) view: each row is normalised and
// multiplied by scale[j % scale_size] (+ bias[j % bias_size] when given), the
// parameters being broadcast over leading dims of the normalised shape.
// mean_out / inv_std_out (one value per row, type U) are written when not null.
template <typename T, typename U>
inline void layer_norm(const T *x, const T *scale, size_t scale_size, const T *bias, size_t bias_size, T *y,
                       U *mean_out, U *inv_std_out, size_t outer, size_t n, norm_acc_t epsilon)
{
   const bool whole = scale_size == n && (!bias || bias_size == n);
   for (size_t o = 0; o < outer; ++o) {
      const T *xr = x + o * n;
      T *yr = y + o * n;
      norm_acc_t mean = 0, var = 0;
      layer_norm_moments(xr, n, mean, var);
      const norm_acc_t inv_std = 1 / std::sqrt(var + epsilon);
      if (whole) {
         layer_norm_row(xr, yr, scale, bias, n, mean, inv_std);
      } else {
         for (size_t j = 0; j < n; ++j) {
            const norm_acc_t v = (static_cast<norm_acc_t>(xr[j]) - mean) * inv_std;
            const T scaled = static_cast<T>(v) * scale[j % scale_size];
            yr[j] = bias ? static_cast<T>(scaled + bias[j % bias_size]) : scaled;
         }
      }
      if (mean_out)
         mean_out[o] = static_cast<U>(mean);
      if (inv_std_out)
         inv_std_out[o] = static_cast<U>(inv_std);
   }
}
