// CausalConvWithState (stateful causal depthwise 1-D convolution) and DeformConv (2-D convolution whose
// kernel taps are moved by learned offsets and read by bilinear interpolation).

// Value at position t of the causal sequence [past (k - 1 values, zeros when absent), x (length values)].
template <typename T>
inline T causal_value(const T *x, const T *past, size_t t, size_t k)
{
   if (t + 1 < k)
      return past ? past[t] : T(0);
   return x[t + 1 - k];
}

// y[b, c, t] = act(bias[c] + sum_j w[c, j] * seq[t + j]) (act: identity or SiLU); present[b, c, :] = the last k - 1 values of seq.
template <typename T>
inline void causal_conv_with_state(const T *x, const T *w, const Opt<T> *bias, const Opt<T> *past, T *y, T *present, size_t batch,
                                   size_t channels, size_t length, size_t k, bool silu)
{
   using Acc = decltype(T(0) * T(0)); // float for the 16-bit float types: rounded once, when stored
   const size_t state = k - 1;
   for (size_t bc = 0; bc < batch * channels; ++bc) {
      const size_t c = bc % channels;
      const T *xs = x + bc * length;
      const T *ps = past ? past + bc * state : nullptr;
      for (size_t t = 0; t < length; ++t) {
         Acc acc = bias ? Acc(bias[c]) : Acc(0);
         for (size_t j = 0; j < k; ++j)
            acc += w[c * k + j] * causal_value(xs, ps, t + j, k);
         y[bc * length + t] = static_cast<T>(silu ? acc / (Acc(1) + std::exp(-acc)) : acc);
      }
      for (size_t j = 0; j < state; ++j)
         present[bc * state + j] = causal_value(xs, ps, length + j, k);
   }
}

// Bilinear read of an (h x w) image at (py, px); corners outside the image count as 0.
template <typename T>
inline T deform_sample(const T *image, size_t h, size_t w, T py, T px)
{
   if (!(py > T(-1) && py < T(h) && px > T(-1) && px < T(w)))
      return T(0);
   const T fy = std::floor(py), fx = std::floor(px);
   const std::ptrdiff_t y0 = static_cast<std::ptrdiff_t>(fy), x0 = static_cast<std::ptrdiff_t>(fx);
   const T ly = py - fy, lx = px - fx;
   T value = T(0);
   for (std::ptrdiff_t dy = 0; dy < 2; ++dy)
      for (std::ptrdiff_t dx = 0; dx < 2; ++dx) {
         const std::ptrdiff_t yy = y0 + dy, xx = x0 + dx;
         if (yy < 0 || xx < 0 || yy >= static_cast<std::ptrdiff_t>(h) || xx >= static_cast<std::ptrdiff_t>(w))
            continue;
         const T weight = (dy ? ly : T(1) - ly) * (dx ? lx : T(1) - lx);
         value += weight * image[static_cast<size_t>(yy) * w + static_cast<size_t>(xx)];
      }
   return value;
}

// Geometry arrays as Conv's (kernels/conv.hxx): three entries each, the first 1 (0 for pad) for these 2-D
// convolutions; entries 1 and 2 are height and width.
struct DeformGeometry {
   const size_t *image, *grid, *kernel, *stride, *dilation;
   const std::ptrdiff_t *pad;
};

// col[(c, ky, kx), (oy, ox)] = mask * X[c] read at the tap's offset position, for the channels [c0, c0 + count)
// of one image; offsets (and mask) have offset_group groups of kernel taps, each serving channels / offset_group.
template <typename T>
inline void deform_im2col(const T *x, const T *offset, const T *mask, size_t channels, size_t c0, size_t count,
                          size_t offset_group, const DeformGeometry &g, T *col)
{
   const size_t taps = g.kernel[1] * g.kernel[2], grid = g.grid[1] * g.grid[2];
   const size_t per_group = channels / offset_group;
   for (size_t c = c0; c < c0 + count; ++c) {
      const size_t og = c / per_group;
      const T *xc = x + c * g.image[1] * g.image[2];
      for (size_t tap = 0; tap < taps; ++tap, col += grid) {
         const T *off = offset + (og * taps + tap) * 2 * grid;
         const T *m = mask ? mask + (og * taps + tap) * grid : nullptr;
         const std::ptrdiff_t ty = static_cast<std::ptrdiff_t>((tap / g.kernel[2]) * g.dilation[1]) - g.pad[1];
         const std::ptrdiff_t tx = static_cast<std::ptrdiff_t>((tap % g.kernel[2]) * g.dilation[2]) - g.pad[2];
         for (size_t p = 0; p < grid; ++p) {
            const T py = T(static_cast<std::ptrdiff_t>((p / g.grid[2]) * g.stride[1]) + ty) + off[p];
            const T px = T(static_cast<std::ptrdiff_t>((p % g.grid[2]) * g.stride[2]) + tx) + off[grid + p];
            const T v = deform_sample(xc, g.image[1], g.image[2], py, px);
            col[p] = m ? v * m[p] : v;
         }
      }
   }
}

// Y_g (M/group x OS) = W_g (M/group x C/group*K) * col_g per image and group, plus the bias.
template <typename T>
inline void deform_conv(const T *x, const T *w, const T *offset, const Opt<T> *bias, const Opt<T> *mask, T *y, T *col,
                        size_t batch, size_t channels, size_t features, size_t group, size_t offset_group,
                        const size_t *image, const size_t *grid, const size_t *kernel, const size_t *stride,
                        const size_t *dilation, const std::ptrdiff_t *pad)
{
   const DeformGeometry g{image, grid, kernel, stride, dilation, pad};
   const size_t cg = channels / group, mg = features / group;
   const size_t image_size = image[1] * image[2], grid_size = grid[1] * grid[2], taps = kernel[1] * kernel[2];
   for (size_t n = 0; n < batch; ++n) {
      const T *on = offset + n * offset_group * taps * 2 * grid_size;
      const T *mn = mask ? mask + n * offset_group * taps * grid_size : nullptr;
      T *yn = y + n * features * grid_size;
      conv_fill_bias(yn, bias, features, grid_size);
      for (size_t gi = 0; gi < group; ++gi) {
         deform_im2col(x + n * channels * image_size, on, mn, channels, gi * cg, cg, offset_group, g, col);
         gemm(false, false, mg, grid_size, cg * taps, T(1), w + gi * mg * cg * taps, col, T(1), yn + gi * mg * grid_size);
      }
   }
}
