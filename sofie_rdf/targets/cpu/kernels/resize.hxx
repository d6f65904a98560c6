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
      v = std::min<double>(std::max<double>(v, static_cast<double>(std::numeric_limits<T>::lowest())),
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
