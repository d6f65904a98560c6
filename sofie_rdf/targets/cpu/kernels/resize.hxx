// Resize and Upsample: every output element is a weighted sum of input
// elements, separable per axis.  The per-axis tables (source indices and
// weights of each output position) are computed when the code is generated,
// so one loop serves nearest, n-linear, cubic and antialiased filters.

struct resize_axis {
   size_t taps;          // source elements per output position; 0: the axis is copied as it is
   const size_t *index;  // [out * taps] source indices
   const double *weight; // [out * taps] weights
   const bool *outside;  // [out] positions that take the extrapolation value, or nullptr
};

template <typename T>
inline double resize_sample(const T *x, const resize_axis *ax, const std::ptrdiff_t *stride, const size_t *o,
                            size_t rank, double extrapolation)
{
   if (rank == 0)
      return static_cast<double>(*x);
   const size_t p = o[0];
   if (ax->taps == 0)
      return resize_sample(x + static_cast<std::ptrdiff_t>(p) * stride[0], ax + 1, stride + 1, o + 1, rank - 1,
                           extrapolation);
   if (ax->outside && ax->outside[p])
      return extrapolation;
   double acc = 0;
   for (size_t t = 0, k = p * ax->taps; t < ax->taps; ++t, ++k)
      acc += ax->weight[k] * resize_sample(x + static_cast<std::ptrdiff_t>(ax->index[k]) * stride[0], ax + 1,
                                           stride + 1, o + 1, rank - 1, extrapolation);
   return acc;
}

template <typename T>
inline T resize_cast(double v)
{
   if constexpr (std::is_integral_v<T>) {
      v = std::nearbyint(v);
      v = detail::min_of<double>(detail::max_of<double>(v, static_cast<double>(std::numeric_limits<T>::lowest())),
                           static_cast<double>(std::numeric_limits<T>::max()));
   }
   return static_cast<T>(v);
}

constexpr size_t resize_max_rank = 16;

template <typename T>
inline void resize(const T *x, T *y, const size_t *out_shape, const std::ptrdiff_t *stride, const resize_axis *ax,
                   size_t rank, double extrapolation)
{
   if (rank > resize_max_rank)
      throw std::invalid_argument("sofie-rdf: Resize supports at most 16 dimensions");
   size_t o[resize_max_rank] = {};
   size_t total = 1;
   for (size_t a = 0; a < rank; ++a)
      total *= out_shape[a];
   for (size_t i = 0; i < total; ++i) {
      y[i] = resize_cast<T>(resize_sample(x, ax, stride, o, rank, extrapolation));
      for (size_t a = rank; a-- > 0;) { // next output multi-index
         if (++o[a] < out_shape[a])
            break;
         o[a] = 0;
      }
   }
}

// ---- scales, sizes or roi read at run time -------------------------------------------------------------
// The tables are then built per call, by the same rules as ops/resize.py (the ONNX reference's, with
// coordinates in float32 in onnxruntime's order), and the loop above runs on them.  Float expressions are
// split into statements so that no compiler contracts them into a fused multiply-add.

enum class resize_mode { nearest, linear, cubic };
enum class resize_coord {
   half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, tf_crop_and_resize,
   tf_half_pixel_for_nn
};
enum class resize_nearest { round_prefer_floor, round_prefer_ceil, floor, ceil, simple };
enum class resize_policy { stretch, not_larger, not_smaller };

// What a node's attributes fix.
struct resize_filter {
   resize_mode mode;
   resize_coord coord;
   resize_nearest nearest;
   bool antialias;
   bool exclude_outside;
   double cubic_a;
};

// Output shape, per-axis scales and the roi box ([starts, ends] over all rank axes) from the scales or the
// sizes given for `axes` (exactly one of n_scales, n_sizes is non-zero) and the roi (n_roi 0: the unit box).
template <typename R>
inline void resize_params(const size_t *in_shape, size_t rank, const size_t *axes, size_t n_axes,
                          const float *scales, size_t n_scales, const int64_t *sizes, size_t n_sizes, const R *roi,
                          size_t n_roi, resize_policy policy, size_t *out_shape, double *scale, double *box,
                          const char *where)
{
   for (size_t a = 0; a < rank; ++a) {
      out_shape[a] = in_shape[a];
      scale[a] = 1.0;
      box[a] = 0.0;
      box[a + rank] = 1.0;
   }
   if ((n_scales == 0) == (n_sizes == 0))
      value_error(where, "exactly one of scales and sizes must be given, got " + std::to_string(n_scales) +
                            " scales and " + std::to_string(n_sizes) + " sizes");
   const size_t given = n_scales ? n_scales : n_sizes;
   if (given != n_axes)
      value_error(where, std::string(n_scales ? "scales" : "sizes") + " has " + std::to_string(given) +
                            " values for " + std::to_string(n_axes) + " axes");
   if (n_roi) {
      if (n_roi != 2 * n_axes)
         value_error(where, "roi has " + std::to_string(n_roi) + " values for " + std::to_string(n_axes) + " axes");
      for (size_t k = 0; k < n_axes; ++k) {
         box[axes[k]] = static_cast<double>(static_cast<float>(roi[k]));
         box[axes[k] + rank] = static_cast<double>(static_cast<float>(roi[k + n_axes]));
      }
   }
   for (size_t k = 0; k < n_axes; ++k) {
      const size_t a = axes[k];
      const float d = static_cast<float>(in_shape[a]);
      if (n_scales) {
         if (!(scales[k] > 0))
            value_error(where, "scales[" + std::to_string(k) + "] is " + std::to_string(scales[k]) +
                                  ", a scale must be positive");
         const bool kept = scales[k] == 1.0f && box[a] == 0.0 && box[a + rank] == 1.0;
         const float length = scales[k] * d;
         scale[a] = scales[k];
         out_shape[a] = kept ? in_shape[a] : static_cast<size_t>(length);
      } else {
         if (sizes[k] < 0)
            value_error(where, "sizes[" + std::to_string(k) + "] is " + std::to_string(sizes[k]) +
                                  ", a size must not be negative");
         out_shape[a] = static_cast<size_t>(sizes[k]);
         scale[a] = static_cast<float>(sizes[k]) / d;
      }
   }
   if (n_sizes && policy != resize_policy::stretch) { // one scale for all axes, the smallest or the largest
      double s = scale[axes[0]];
      for (size_t k = 1; k < n_axes; ++k)
         s = policy == resize_policy::not_larger ? detail::min_of(s, scale[axes[k]]) : detail::max_of(s, scale[axes[k]]);
      for (size_t k = 0; k < n_axes; ++k) {
         const size_t a = axes[k];
         const float length = static_cast<float>(s) * static_cast<float>(in_shape[a]);
         scale[a] = s;
         out_shape[a] = static_cast<size_t>(std::floor(length + 0.5f));
      }
   }
}

// Input coordinate of output position y (as in ops/resize.py source_coordinates); outside: it extrapolates.
inline double resize_coordinate(resize_coord mode, size_t y, size_t out, size_t in, double scale, double start,
                                double end, bool &outside)
{
   const float f = static_cast<float>(y), s = static_cast<float>(scale);
   const float length_in = static_cast<float>(in), length_out = static_cast<float>(out);
   outside = false;
   float x = 0;
   switch (mode) {
   case resize_coord::align_corners: {
      const float span = f * (length_in - 1.0f);
      x = out == 1 ? 0.0f : span / (length_out - 1.0f);
      break;
   }
   case resize_coord::asymmetric: x = f / s; break;
   case resize_coord::tf_crop_and_resize: {
      const float lo = static_cast<float>(start), hi = static_cast<float>(end);
      if (out == 1) {
         x = static_cast<float>(0.5 * (static_cast<double>(lo) + static_cast<double>(hi)) * static_cast<double>(in - 1));
      } else {
         const float first = lo * (length_in - 1.0f);
         const float span = f * (hi - lo) * (length_in - 1.0f);
         const float step = span / (length_out - 1.0f);
         x = first + step;
      }
      outside = x < 0.0f || x > length_in - 1.0f;
      break;
   }
   case resize_coord::pytorch_half_pixel: x = out == 1 ? 0.0f : (f + 0.5f) / s - 0.5f; break;
   case resize_coord::half_pixel: x = (f + 0.5f) / s - 0.5f; break;
   case resize_coord::tf_half_pixel_for_nn: x = (f + 0.5f) / s; break;
   case resize_coord::half_pixel_symmetric: {
      const float stretched = s * length_in;
      const float adjustment = length_out / stretched;
      const float offset = length_in / 2.0f * (1.0f - adjustment);
      const double step = (static_cast<double>(y) + 0.5) / static_cast<double>(s);
      x = static_cast<float>(static_cast<double>(offset) + step - 0.5);
      break;
   }
   }
   return static_cast<double>(x);
}

// The input position a nearest-mode coordinate rounds to, before clamping.
inline double resize_round(double x, resize_nearest mode, double scale)
{
   const double sign = static_cast<double>((x > 0) - (x < 0));
   switch (mode) {
   case resize_nearest::round_prefer_floor:
      return x - std::floor(x) == 0.5 ? std::floor(x) : sign * std::floor(std::fabs(x) + 0.5);
   case resize_nearest::round_prefer_ceil: return sign * std::floor(std::fabs(x) + 0.5);
   case resize_nearest::floor: return std::floor(x);
   case resize_nearest::simple: return scale >= 1 ? std::trunc(x) : std::ceil(x);
   case resize_nearest::ceil: break;
   }
   return std::ceil(x);
}

inline double resize_cubic(double x, double a)
{
   x = std::fabs(x);
   if (x <= 1)
      return (a + 2) * std::pow(x, 3) - (a + 3) * std::pow(x, 2) + 1;
   if (x < 2)
      return a * std::pow(x, 3) - 5 * a * std::pow(x, 2) + 8 * a * x - 4 * a;
   return 0.0;
}

// First tap of the antialiased filter (its support widens as the scale shrinks); taps = 2 - 2 * first.
inline int64_t resize_first_tap(const resize_filter &f, double scale)
{
   const double reach = f.mode == resize_mode::linear ? 1.0 : 2.0;
   return static_cast<int64_t>(std::floor(-reach / detail::min_of(scale, 1.0))) + 1;
}

inline size_t resize_taps(const resize_filter &f, double scale)
{
   if (f.mode == resize_mode::nearest)
      return 1;
   if (f.antialias)
      return static_cast<size_t>(2 - 2 * resize_first_tap(f, scale));
   return f.mode == resize_mode::linear ? 2 : 4;
}

// Filter weights at fractional position ratio (as in ops/resize.py _linear_coeffs and _cubic_coeffs).
inline void resize_coeffs(const resize_filter &f, double ratio, double scale, size_t taps, double *w)
{
   if (!f.antialias) {
      if (f.mode == resize_mode::linear) {
         w[0] = 1 - ratio;
         w[1] = ratio;
      } else {
         w[0] = resize_cubic(ratio + 1, f.cubic_a);
         w[1] = resize_cubic(ratio, f.cubic_a);
         w[2] = resize_cubic(1 - ratio, f.cubic_a);
         w[3] = resize_cubic(2 - ratio, f.cubic_a);
      }
      return;
   }
   const double s = detail::min_of(scale, 1.0);
   const int64_t first = resize_first_tap(f, scale);
   double total = 0;
   for (size_t t = 0; t < taps; ++t) {
      const double arg = (static_cast<double>(first + static_cast<int64_t>(t)) - ratio) * s;
      w[t] = f.mode == resize_mode::linear ? detail::min_of(detail::max_of(1 - std::fabs(arg), 0.0), 1.0)
                                           : resize_cubic(arg, f.cubic_a);
      total += w[t];
   }
   for (size_t t = 0; t < taps; ++t)
      w[t] /= total;
}

// The table of one resized axis: out positions, taps sources each (ops/resize.py axis_table).
inline void resize_fill(const resize_filter &f, size_t out, size_t in, double scale, double start, double end,
                        size_t taps, size_t *index, double *weight, bool *outside)
{
   const int64_t last = static_cast<int64_t>(in) - 1;
   for (size_t p = 0; p < out; ++p) {
      bool away = false;
      const double x = resize_coordinate(f.coord, p, out, in, scale, start, end, away);
      if (outside)
         outside[p] = away;
      size_t *ix = index + p * taps;
      double *w = weight + p * taps;
      if (f.mode == resize_mode::nearest) {
         const double r = detail::min_of(detail::max_of(resize_round(x, f.nearest, scale), 0.0), static_cast<double>(last));
         ix[0] = static_cast<size_t>(r);
         w[0] = 1.0;
         continue;
      }
      const double base = std::floor(x);
      resize_coeffs(f, x == base ? 1.0 : x - base, scale, taps, w);
      const int64_t n = static_cast<int64_t>(taps), pad = (n + 1) / 2;
      const double padded = x + static_cast<double>(pad);
      const double floor_padded = std::floor(padded);
      const double frac = padded - floor_padded;
      int64_t first = static_cast<int64_t>(floor_padded);
      if (n % 2 == 0)
         first += frac == 0 ? -(n / 2) : -(n / 2) + 1;
      else
         first += frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1;
      double total = 0;
      for (int64_t t = 0; t < n; ++t) {
         const int64_t i = first + t - pad;
         if (f.exclude_outside && (i < 0 || i > last))
            w[t] = 0.0;
         total += w[t];
         ix[t] = static_cast<size_t>(detail::min_of(detail::max_of<int64_t>(i, 0), last));
      }
      if (f.exclude_outside && total != 0)
         for (int64_t t = 0; t < n; ++t)
            w[t] /= total;
   }
}

// Scratch that grows to the largest tables seen on this thread: no allocation once warm, none shared.
template <typename T>
inline T *resize_scratch(size_t n)
{
   thread_local std::unique_ptr<T[]> data;
   thread_local size_t size = 0;
   if (n > size) {
      data.reset(new T[n]);
      size = n;
   }
   return data.get();
}

// Resize with the out_shape, scales and roi box resize_params computed: tables built now, then resize().
template <typename T>
inline void resize_at_run_time(const T *x, T *y, const size_t *in_shape, const size_t *out_shape,
                               const double *scale, const double *box, size_t rank, const resize_filter &f,
                               double extrapolation, const char *where)
{
   if (rank > resize_max_rank)
      value_error(where, "Resize supports at most 16 dimensions");
   size_t taps[resize_max_rank] = {}, entries = 0, extrapolated = 0;
   const bool crop = f.coord == resize_coord::tf_crop_and_resize;
   for (size_t a = 0; a < rank; ++a) {
      if (out_shape[a] == in_shape[a] && scale[a] == 1.0 && box[a] == 0.0 && box[a + rank] == 1.0)
         continue; // copied as it is
      if (in_shape[a] == 0 && out_shape[a] != 0)
         value_error(where, "axis " + std::to_string(a) + " is empty and cannot be resized to " +
                               std::to_string(out_shape[a]));
      taps[a] = resize_taps(f, scale[a]);
      entries += out_shape[a] * taps[a];
      extrapolated += crop ? out_shape[a] : 0;
   }
   size_t *index = resize_scratch<size_t>(entries);
   double *weight = resize_scratch<double>(entries);
   bool *outside = resize_scratch<bool>(extrapolated);
   resize_axis axes[resize_max_rank] = {};
   std::ptrdiff_t stride[resize_max_rank] = {};
   std::ptrdiff_t acc = 1;
   for (size_t a = rank; a-- > 0;) {
      stride[a] = acc;
      acc *= static_cast<std::ptrdiff_t>(in_shape[a]);
   }
   for (size_t a = 0; a < rank; ++a) {
      if (taps[a] == 0)
         continue;
      bool *away = crop ? outside : nullptr;
      resize_fill(f, out_shape[a], in_shape[a], scale[a], box[a], box[a + rank], taps[a], index, weight, away);
      axes[a] = {taps[a], index, weight, away};
      index += out_shape[a] * taps[a];
      weight += out_shape[a] * taps[a];
      outside += crop ? out_shape[a] : 0;
   }
   resize(x, y, out_shape, stride, axes, rank, extrapolation);
}
