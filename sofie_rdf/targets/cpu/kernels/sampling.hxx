// Spatial resampling: GridSample, AffineGrid, Col2Im and MaxUnpool.

enum class GridMode { linear, nearest, cubic };
enum class GridPadding { zeros, border, reflection };

// Fold x back into [lo, hi] at the borders, as many times as it takes.
inline double grid_reflect(double x, double lo, double hi)
{
   const double range = hi - lo;
   if (range <= 0)
      return lo;
   if (x < lo) {
      const double n = std::trunc((lo - x) / range), r = (lo - x) - n * range;
      return std::fmod(n, 2.0) == 0 ? lo + r : hi - r;
   }
   if (x > hi) {
      const double n = std::trunc((x - hi) / range), r = (x - hi) - n * range;
      return std::fmod(n, 2.0) == 0 ? hi - r : lo + r;
   }
   return x;
}

// The pixels one output sample reads along one axis: up to 4 (index, weight) taps, index -1 reading zero.
struct GridTaps {
   int64_t index[4];
   double weight[4];
   size_t count;
};

// Index of pixel i along an axis of `size` pixels under the padding mode (-1: a zero outside).
inline int64_t grid_pixel(int64_t i, size_t size, GridPadding padding, double lo, double hi)
{
   const int64_t last = static_cast<int64_t>(size) - 1;
   if (padding == GridPadding::zeros)
      return i >= 0 && i <= last ? i : -1;
   if (padding == GridPadding::reflection)
      i = static_cast<int64_t>(grid_reflect(static_cast<double>(i), lo, hi));
   return detail::min_of(detail::max_of(i, int64_t(0)), last);
}

// Keys' cubic convolution weights (A = -0.75) of the 4 pixels around a point at fraction t past the second.
inline void grid_cubic_weights(double t, double *w)
{
   const double a = -0.75;
   auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };
   auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };
   w[0] = far(t + 1);
   w[1] = near(t);
   w[2] = near(1 - t);
   w[3] = far(2 - t);
}

// Taps along one axis for the normalized coordinate g in [-1, 1] (onnx reference semantics: the coordinate is
// rounded (nearest), then brought inside by the padding mode, then its neighbours are read under that mode).
inline GridTaps grid_taps(double g, size_t size, GridMode mode, GridPadding padding, bool align_corners)
{
   const double s = static_cast<double>(size);
   const double lo = align_corners ? 0.0 : -0.5, hi = align_corners ? s - 1 : s - 0.5;
   double x = align_corners ? (g + 1) / 2 * (s - 1) : ((g + 1) * s - 1) / 2;
   GridTaps taps{{-1, -1, -1, -1}, {0, 0, 0, 0}, mode == GridMode::nearest ? 1u : mode == GridMode::linear ? 2u : 4u};
   if (detail::is_nan(x))
      return taps;
   if (mode == GridMode::nearest)
      x = std::nearbyint(x);
   if (x < lo || x > hi) {
      if (padding == GridPadding::border)
         x = detail::min_of(detail::max_of(x, 0.0), s - 1);
      else if (padding == GridPadding::reflection)
         x = grid_reflect(x, lo, hi);
      else
         x = detail::min_of(detail::max_of(x, lo - 4), hi + 4);  // every tap is outside: keep the integer conversion defined
   }
   if (mode == GridMode::nearest) {
      taps.index[0] = grid_pixel(static_cast<int64_t>(x), size, padding, lo, hi);
      taps.weight[0] = 1;
      return taps;
   }
   const double x0 = std::floor(x), t = x - x0;
   const int64_t first = static_cast<int64_t>(x0) - (mode == GridMode::cubic ? 1 : 0);
   if (mode == GridMode::linear) {
      taps.weight[0] = 1 - t;
      taps.weight[1] = t;
   } else {
      grid_cubic_weights(t, taps.weight);
   }
   for (size_t k = 0; k < taps.count; ++k)
      taps.index[k] = grid_pixel(first + static_cast<int64_t>(k), size, padding, lo, hi);
   return taps;
}

// x is (batch, channels, *dims) with 1 to 3 spatial dims, grid (batch, points, rank) holding (x, y[, z]) in
// [-1, 1], y (batch, channels, points): each sample is the tensor product of the per-axis taps.
template <typename T, typename G>
inline void grid_sample(const T *x, const G *grid, T *y, size_t batch, size_t channels, const size_t *dims,
                        size_t rank, size_t points, GridMode mode, GridPadding padding, bool align_corners)
{
   size_t strides[3] = {1, 1, 1}, plane = 1;
   for (size_t d = rank; d-- > 0;) {
      strides[d] = plane;
      plane *= dims[d];
   }
   for (size_t n = 0; n < batch; ++n) {
      for (size_t p = 0; p < points; ++p) {
         const G *g = grid + (n * points + p) * rank;
         GridTaps taps[3];
         size_t combos = 1;
         for (size_t d = 0; d < rank; ++d) {
            taps[d] = grid_taps(static_cast<double>(g[rank - 1 - d]), dims[d], mode, padding, align_corners);
            combos *= taps[d].count;
         }
         for (size_t c = 0; c < channels; ++c) {
            const T *xc = x + (n * channels + c) * plane;
            double sum = 0;
            for (size_t combo = 0; combo < combos; ++combo) {
               double w = 1;
               size_t offset = 0, rest = combo;
               bool inside = true;
               for (size_t d = rank; d-- > 0; rest /= taps[d].count) {
                  const size_t k = rest % taps[d].count;
                  inside = inside && taps[d].index[k] >= 0;
                  offset += static_cast<size_t>(detail::max_of(taps[d].index[k], int64_t(0))) * strides[d];
                  w *= taps[d].weight[k];
               }
               if (inside)
                  sum += w * static_cast<double>(xc[offset]);
            }
            y[(n * channels + c) * points + p] = static_cast<T>(sum);
         }
      }
   }
}

// Sampling grid of an affine map: theta is (batch, rank, rank + 1), grid (batch, *dims, rank) holds
// theta * (x, y[, z], 1) over the [-1, 1] base grid (pixel corners or centres, by align_corners).
template <typename T>
inline void affine_grid(const T *theta, T *grid, size_t batch, const size_t *dims, size_t rank, bool align_corners)
{
   size_t points = 1;
   for (size_t d = 0; d < rank; ++d)
      points *= dims[d];
   for (size_t n = 0; n < batch; ++n) {
      const T *th = theta + n * rank * (rank + 1);
      for (size_t p = 0; p < points; ++p) {
         double base[4] = {0, 0, 0, 1};
         for (size_t d = rank, rest = p; d-- > 0; rest /= dims[d]) {
            const double i = static_cast<double>(rest % dims[d]), s = static_cast<double>(dims[d]);
            base[rank - 1 - d] = align_corners ? (s > 1 ? -1 + 2 * i / (s - 1) : -1.0) : (2 * i + 1) / s - 1;
         }
         base[rank] = 1;
         for (size_t k = 0; k < rank; ++k) {
            double v = 0;
            for (size_t j = 0; j <= rank; ++j)
               v += static_cast<double>(th[k * (rank + 1) + j]) * base[j];
            grid[(n * points + p) * rank + k] = static_cast<T>(v);
         }
      }
   }
}

// Col2Im: x is (batch, channels * prod(block), blocks), y (batch, channels, *image); every column value is added
// at image position block_pos * stride - pad_begin + kernel_pos * dilation when that lies inside the image.
template <typename T>
inline void col2im(const T *x, T *y, size_t batch, size_t channels, size_t rank, const size_t *image,
                   const size_t *block, const size_t *counts, const size_t *strides, const size_t *dilations,
                   const size_t *pads_begin)
{
   size_t pixels = 1, taps = 1, blocks = 1;
   for (size_t d = 0; d < rank; ++d) {
      pixels *= image[d];
      taps *= block[d];
      blocks *= counts[d];
   }
   detail::fill_n(y, batch * channels * pixels, T(0));
   for (size_t nc = 0; nc < batch * channels; ++nc) {
      for (size_t k = 0; k < taps; ++k) {
         const T *col = x + (nc * taps + k) * blocks;
         for (size_t b = 0; b < blocks; ++b) {
            size_t offset = 0, scale = 1;
            bool inside = true;
            for (size_t d = rank, rk = k, rb = b; d-- > 0; rk /= block[d], rb /= counts[d], scale *= image[d]) {
               const int64_t pos = static_cast<int64_t>((rb % counts[d]) * strides[d] + (rk % block[d]) * dilations[d]) -
                                   static_cast<int64_t>(pads_begin[d]);
               inside = inside && pos >= 0 && pos < static_cast<int64_t>(image[d]);
               offset += (inside ? static_cast<size_t>(pos) : 0) * scale;
            }
            if (inside)
               y[nc * pixels + offset] += col[b];
         }
      }
   }
}

// AffineGrid's size (N, C, *dims) read at run time: N must be theta's batch, the rank dims not negative.
template <typename I>
inline void affine_grid_size(const I *size, size_t rank, size_t batch, size_t *dims, const char *where)
{
   if (size[0] != static_cast<I>(batch))
      value_error(where, "size[0] = " + std::to_string(size[0]) + " must be theta's batch " + std::to_string(batch));
   for (size_t d = 0; d < rank; ++d) {
      if (size[2 + d] < 0)
         value_error(where, "size[" + std::to_string(2 + d) + "] is " + std::to_string(size[2 + d]) +
                               ", a size must not be negative");
      dims[d] = static_cast<size_t>(size[2 + d]);
   }
}

// Col2Im's image_shape and block_shape read at run time (rank entries each): checked, with the blocks per axis
// and the channels of an input (batch, columns, length); pads holds 2 * rank entries.
template <typename I>
inline void col2im_shape(const I *image_in, const I *block_in, size_t rank, size_t columns, size_t length,
                         const size_t *strides, const size_t *dilations, const size_t *pads, size_t *image,
                         size_t *block, size_t *counts, size_t &channels, const char *where)
{
   size_t taps = 1, blocks = 1;
   for (size_t d = 0; d < rank; ++d) {
      if (image_in[d] < 1 || block_in[d] < 1)
         value_error(where, "image_shape[" + std::to_string(d) + "] = " + std::to_string(image_in[d]) +
                               " and block_shape[" + std::to_string(d) + "] = " + std::to_string(block_in[d]) +
                               " must be positive");
      image[d] = static_cast<size_t>(image_in[d]);
      block[d] = static_cast<size_t>(block_in[d]);
      const int64_t room = static_cast<int64_t>(image[d] + pads[d] + pads[d + rank]) -
                           static_cast<int64_t>(dilations[d] * (block[d] - 1)) - 1;
      if (room < 0)
         value_error(where, "image_shape[" + std::to_string(d) + "] = " + std::to_string(image[d]) +
                               " holds no block of " + std::to_string(block[d]));
      counts[d] = static_cast<size_t>(room) / strides[d] + 1;
      taps *= block[d];
      blocks *= counts[d];
   }
   if (blocks != length)
      value_error(where, "input length " + std::to_string(length) + " must equal the number of blocks (" +
                            std::to_string(blocks) + ")");
   if (columns % taps)
      value_error(where, "input dim 1 (" + std::to_string(columns) + ") is not a multiple of the block size " +
                            std::to_string(taps));
   channels = columns / taps;
}

// MaxUnpool: y (size out) is zero but for y[indices[i]] = x[i]; indices are flat over the whole output.
template <typename T>
inline void max_unpool(const T *x, const int64_t *indices, T *y, size_t count, size_t out)
{
   detail::fill_n(y, out, T(0));
   for (size_t i = 0; i < count; ++i) {
      if (indices[i] < 0 || static_cast<uint64_t>(indices[i]) >= out)
         throw std::out_of_range("sofie-rdf: MaxUnpool index " + std::to_string(indices[i]) + " is outside [0, " +
                                 std::to_string(out) + ")");
      y[indices[i]] = x[i];
   }
}
