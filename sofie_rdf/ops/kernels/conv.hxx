// requires: gemm
// Convolution and transposed convolution, NCHW layout, 1-D to 3-D.
//
// Every spatial geometry is given as three dims (the emitter pads 1-D and 2-D
// convolutions with leading size-1 dims: kernel 1, stride 1, dilation 1, pad
// 0), so one code path serves all ranks.  Arrays: `image` and `grid` are the
// spatial sizes of the image being read or written and of the kernel-position
// grid; `kernel`, `stride`, `dilation` have 3 entries; `pad` is the begin pad.
// Grid position o and kernel offset k touch image position o * stride + k *
// dilation - pad, skipped when outside the image.
// `act` is the activation applied to every output (identity when unfused).

// Optional pointers (bias, scratch) take the element type from the other arguments, so that the
// emitter may pass nullptr for them.
template <typename T>
using Opt = std::common_type_t<T>;

// Grid positions [lo, hi) along one dim whose image position o * stride + offset lies in [0, size).
inline void conv_valid_range(size_t grid, size_t size, size_t stride, std::ptrdiff_t offset, size_t &lo, size_t &hi)
{
   const std::ptrdiff_t s = static_cast<std::ptrdiff_t>(stride);
   const std::ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
   const std::ptrdiff_t end = static_cast<std::ptrdiff_t>(size) - offset; // o * s < end
   const std::ptrdiff_t last = end <= 0 ? 0 : (end - 1) / s + 1;
   lo = static_cast<size_t>(std::min<std::ptrdiff_t>(first, static_cast<std::ptrdiff_t>(grid)));
   hi = static_cast<size_t>(std::max<std::ptrdiff_t>(std::min<std::ptrdiff_t>(last, static_cast<std::ptrdiff_t>(grid)),
                                                     static_cast<std::ptrdiff_t>(lo)));
}

inline std::ptrdiff_t conv_offset(size_t k, size_t dilation, std::ptrdiff_t pad)
{
   return static_cast<std::ptrdiff_t>(k * dilation) - pad;
}

// Image element of grid column lo in a row (callers form it only when lo < hi: then it is inside the row).
template <typename P>
inline P *conv_row_start(P *row, size_t lo, std::ptrdiff_t stride, std::ptrdiff_t offset)
{
   return row + (static_cast<std::ptrdiff_t>(lo) * stride + offset);
}

// Visits, for one kernel offset (kd, kh, kw), every grid row (od, oh) whose image row is inside the
// image: f(grid row start, image row start, lo, hi, image column offset) with [lo, hi) the valid
// grid columns, and skip(grid row start) for rows entirely in the padding.
template <typename Row, typename Skip>
inline void conv_rows(const size_t *image, const size_t *grid, const size_t *stride, const size_t *dilation,
                      const std::ptrdiff_t *pad, size_t kd, size_t kh, size_t kw, Row row, Skip skip)
{
   const std::ptrdiff_t od_off = conv_offset(kd, dilation[0], pad[0]);
   const std::ptrdiff_t oh_off = conv_offset(kh, dilation[1], pad[1]);
   const std::ptrdiff_t ow_off = conv_offset(kw, dilation[2], pad[2]);
   size_t lo = 0, hi = 0;
   conv_valid_range(grid[2], image[2], stride[2], ow_off, lo, hi);
   for (size_t od = 0; od < grid[0]; ++od) {
      const std::ptrdiff_t id = static_cast<std::ptrdiff_t>(od * stride[0]) + od_off;
      const bool d_inside = id >= 0 && id < static_cast<std::ptrdiff_t>(image[0]);
      for (size_t oh = 0; oh < grid[1]; ++oh) {
         const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * stride[1]) + oh_off;
         const size_t g_row = (od * grid[1] + oh) * grid[2];
         if (!d_inside || ih < 0 || ih >= static_cast<std::ptrdiff_t>(image[1])) {
            skip(g_row);
            continue;
         }
         const size_t i_row = (static_cast<size_t>(id) * image[1] + static_cast<size_t>(ih)) * image[2];
         row(g_row, i_row, lo, hi, ow_off);
      }
   }
}

// col[(c, kd, kh, kw), grid position] = image value read by that kernel tap (0 in the padding).
template <typename T>
inline void im2col(const T *x, size_t channels, const size_t *image, const size_t *grid, const size_t *kernel,
                   const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad, T *col)
{
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const std::ptrdiff_t sw = static_cast<std::ptrdiff_t>(stride[2]);
   for (size_t c = 0; c < channels; ++c)
      for (size_t kd = 0; kd < kernel[0]; ++kd)
         for (size_t kh = 0; kh < kernel[1]; ++kh)
            for (size_t kw = 0; kw < kernel[2]; ++kw, col += grid_size) {
               const T *xc = x + c * image_size;
               T *out = col;
               conv_rows(
                  image, grid, stride, dilation, pad, kd, kh, kw,
                  [&](size_t g_row, size_t i_row, size_t lo, size_t hi, std::ptrdiff_t off) {
                     T *o = out + g_row;
                     const T *in = xc + i_row;
                     std::fill(o, o + lo, T(0));
                     if (sw == 1 && lo < hi) {
                        const T *src = conv_row_start(in, lo, sw, off);
                        std::copy(src, src + (hi - lo), o + lo);
                     } else {
                        for (size_t ow = lo; ow < hi; ++ow)
                           o[ow] = in[static_cast<std::ptrdiff_t>(ow) * sw + off];
                     }
                     std::fill(o + hi, o + grid[2], T(0));
                  },
                  [&](size_t g_row) { std::fill(out + g_row, out + g_row + grid[2], T(0)); });
            }
}

// The adjoint of im2col: every col entry is added to the image position its kernel tap touches.
template <typename T>
inline void col2im(const T *col, size_t channels, const size_t *image, const size_t *grid, const size_t *kernel,
                   const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad, T *y)
{
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const std::ptrdiff_t sw = static_cast<std::ptrdiff_t>(stride[2]);
   for (size_t c = 0; c < channels; ++c)
      for (size_t kd = 0; kd < kernel[0]; ++kd)
         for (size_t kh = 0; kh < kernel[1]; ++kh)
            for (size_t kw = 0; kw < kernel[2]; ++kw, col += grid_size) {
               T *yc = y + c * image_size;
               const T *in = col;
               conv_rows(
                  image, grid, stride, dilation, pad, kd, kh, kw,
                  [&](size_t g_row, size_t i_row, size_t lo, size_t hi, std::ptrdiff_t off) {
                     const T *g = in + g_row;
                     T *o = yc + i_row;
                     if (sw == 1 && lo < hi) {
                        T *dst = conv_row_start(o, lo, sw, off);
                        for (size_t j = 0; j < hi - lo; ++j)
                           dst[j] += g[lo + j];
                     } else {
                        for (size_t ow = lo; ow < hi; ++ow)
                           o[static_cast<std::ptrdiff_t>(ow) * sw + off] += g[ow];
                     }
                  },
                  [](size_t) {});
            }
}

// Every channel of y starts as its bias (or 0).
template <typename T>
inline void conv_fill_bias(T *y, const T *bias, size_t channels, size_t size)
{
   for (size_t m = 0; m < channels; ++m)
      std::fill(y + m * size, y + (m + 1) * size, bias ? bias[m] : T(0));
}

template <typename T, typename F>
inline void conv_activate(T *y, size_t n, F act)
{
   for (size_t i = 0; i < n; ++i)
      y[i] = act(y[i]);
}

// Convolution as one product per image and group: Y_g (M/group x OS) = W_g (M/group x C/group*K) * col.
// col (C/group*K x OS) is the im2col matrix, or nullptr for a 1x1 convolution with stride 1 and no
// pad, whose input already is that matrix.
template <typename T, typename F>
inline void conv_gemm(const T *x, const T *w, const Opt<T> *bias, T *y, Opt<T> *col, size_t batch, size_t channels,
                      size_t features, size_t group, const size_t *image, const size_t *grid, const size_t *kernel,
                      const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad, F act)
{
   const size_t cg = channels / group, mg = features / group;
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const size_t depth = cg * kernel[0] * kernel[1] * kernel[2];
   for (size_t n = 0; n < batch; ++n) {
      T *yn = y + n * features * grid_size;
      conv_fill_bias(yn, bias, features, grid_size);
      for (size_t g = 0; g < group; ++g) {
         const T *xg = x + (n * channels + g * cg) * image_size;
         if (col)
            im2col(xg, cg, image, grid, kernel, stride, dilation, pad, col);
         gemm(false, false, mg, grid_size, depth, T(1), w + g * mg * depth, col ? col : xg, bias ? T(1) : T(0),
              yn + g * mg * grid_size);
      }
   }
   conv_activate(y, batch * features * grid_size, act);
}

// Direct convolution for depthwise-like layers (one input channel per group, few outputs each), where
// im2col would copy as much data as the product reads.  The innermost loop runs over the valid
// output columns of one row.
template <typename T, typename F>
inline void conv_direct(const T *x, const T *w, const Opt<T> *bias, T *y, size_t batch, size_t channels,
                        size_t features, size_t group, const size_t *image, const size_t *grid, const size_t *kernel,
                        const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad, F act)
{
   const size_t cg = channels / group, mg = features / group;
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const size_t taps = kernel[0] * kernel[1] * kernel[2];
   const std::ptrdiff_t sw = static_cast<std::ptrdiff_t>(stride[2]);
   for (size_t n = 0; n < batch; ++n)
      for (size_t m = 0; m < features; ++m) {
         T *ym = y + (n * features + m) * grid_size;
         std::fill(ym, ym + grid_size, bias ? bias[m] : T(0));
         const size_t g = m / mg;
         for (size_t c = 0; c < cg; ++c) {
            const T *xc = x + (n * channels + g * cg + c) * image_size;
            const T *wc = w + (m * cg + c) * taps;
            for (size_t kd = 0; kd < kernel[0]; ++kd)
               for (size_t kh = 0; kh < kernel[1]; ++kh)
                  for (size_t kw = 0; kw < kernel[2]; ++kw) {
                     const T wv = wc[(kd * kernel[1] + kh) * kernel[2] + kw];
                     conv_rows(
                        image, grid, stride, dilation, pad, kd, kh, kw,
                        [&](size_t g_row, size_t i_row, size_t lo, size_t hi, std::ptrdiff_t off) {
                           T *o = ym + g_row;
                           const T *in = xc + i_row;
                           if (sw == 1 && lo < hi) { // contiguous: vectorised
                              const T *src = conv_row_start(in, lo, sw, off);
                              for (size_t j = 0; j < hi - lo; ++j)
                                 o[lo + j] += wv * src[j];
                           } else {
                              for (size_t ow = lo; ow < hi; ++ow)
                                 o[ow] += wv * in[static_cast<std::ptrdiff_t>(ow) * sw + off];
                           }
                        },
                        [](size_t) {});
                  }
         }
      }
   conv_activate(y, batch * features * grid_size, act);
}

// Transposed convolution: per image and group, col (M/group*K x IS) = W_g^T * X_g with W_g the
// (C/group x M/group*K) slice of the (C, M/group, k...) weights, then col2im scatters col into Y.
// `image` is the output's spatial shape, `grid` the input's.
template <typename T, typename F>
inline void conv_transpose_gemm(const T *x, const T *w, const Opt<T> *bias, T *y, Opt<T> *col, size_t batch, size_t channels,
                                size_t features, size_t group, const size_t *image, const size_t *grid,
                                const size_t *kernel, const size_t *stride, const size_t *dilation,
                                const std::ptrdiff_t *pad, F act)
{
   const size_t cg = channels / group, mg = features / group;
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const size_t rows = mg * kernel[0] * kernel[1] * kernel[2];
   for (size_t n = 0; n < batch; ++n) {
      T *yn = y + n * features * image_size;
      conv_fill_bias(yn, bias, features, image_size);
      for (size_t g = 0; g < group; ++g) {
         gemm(true, false, rows, grid_size, cg, T(1), w + g * cg * rows, x + (n * channels + g * cg) * grid_size,
              T(0), col);
         col2im(col, mg, image, grid, kernel, stride, dilation, pad, yn + g * mg * image_size);
      }
   }
   conv_activate(y, batch * features * image_size, act);
}
