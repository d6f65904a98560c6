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
   lo = static_cast<size_t>(detail::min_of<std::ptrdiff_t>(first, static_cast<std::ptrdiff_t>(grid)));
   hi = static_cast<size_t>(detail::max_of<std::ptrdiff_t>(detail::min_of<std::ptrdiff_t>(last, static_cast<std::ptrdiff_t>(grid)),
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
                     detail::fill(o, o + lo, T(0));
                     if (sw == 1 && lo < hi) {
                        const T *src = conv_row_start(in, lo, sw, off);
                        detail::copy(src, src + (hi - lo), o + lo);
                     } else if (sw == 2) { // the common stride, with a constant step the loop vectorizes
                        for (size_t ow = lo; ow < hi; ++ow)
                           o[ow] = in[static_cast<std::ptrdiff_t>(ow) * 2 + off];
                     } else {
                        for (size_t ow = lo; ow < hi; ++ow)
                           o[ow] = in[static_cast<std::ptrdiff_t>(ow) * sw + off];
                     }
                     detail::fill(o + hi, o + grid[2], T(0));
                  },
                  [&](size_t g_row) { detail::fill(out + g_row, out + g_row + grid[2], T(0)); });
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

// Columns of the uncropped output row that col2im_phased's scratch holds per phase: position u = ow + pad
// (u = i * stride + k * dilation) lives at phase u % stride, column u / stride.
inline size_t col2im_phase_columns(size_t image, size_t grid, size_t kernel, size_t stride, size_t dilation,
                                   std::ptrdiff_t pad)
{
   const size_t full = detail::max_of((grid - 1) * stride + (kernel - 1) * dilation + 1, image + static_cast<size_t>(pad));
   return (full + stride - 1) / stride;
}

// col2im for a strided last dim, where col2im's adds would be `stride` apart.  Per channel, the taps are
// added into a scratch z that holds every output row split by phase (u % stride) so that the adds of one
// tap and grid row are contiguous (grid column i goes to column i + k * dilation / stride of phase
// k * dilation % stride): vectorized.  Then each output row gathers its columns from the phases.
// z holds image[0] * image[1] * stride * col2im_phase_columns(...) values.
template <typename T>
inline void col2im_phased(const T *col, size_t channels, const size_t *image, const size_t *grid, const size_t *kernel,
                          const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad, T *y, T *z)
{
   const size_t image_size = image[0] * image[1] * image[2], grid_size = grid[0] * grid[1] * grid[2];
   const size_t rows = image[0] * image[1], sw = stride[2];
   const size_t columns = col2im_phase_columns(image[2], grid[2], kernel[2], sw, dilation[2], pad[2]);
   const size_t z_row = sw * columns;
   // conv_rows over the first two dims only: rows of the image and the grid, one column each
   const size_t row_image[3] = {image[0], image[1], 1}, row_grid[3] = {grid[0], grid[1], 1};
   const size_t row_stride[3] = {stride[0], stride[1], 1}, row_dilation[3] = {dilation[0], dilation[1], 1};
   const std::ptrdiff_t pw = pad[2];
   for (size_t c = 0; c < channels; ++c) {
      detail::fill(z, z + rows * z_row, T(0));
      for (size_t kd = 0; kd < kernel[0]; ++kd)
         for (size_t kh = 0; kh < kernel[1]; ++kh)
            for (size_t kw = 0; kw < kernel[2]; ++kw, col += grid_size) {
               const size_t tap = kw * dilation[2], start = (tap % sw) * columns + tap / sw;
               const T *in = col;
               conv_rows(
                  row_image, row_grid, row_stride, row_dilation, pad, kd, kh, 0,
                  [&](size_t g_row, size_t i_row, size_t, size_t, std::ptrdiff_t) {
                     const T *g = in + g_row * grid[2];
                     T *o = z + i_row * z_row + start;
                     for (size_t i = 0; i < grid[2]; ++i)
                        o[i] += g[i];
                  },
                  [](size_t) {});
            }
      T *yc = y + c * image_size;
      for (size_t r = 0; r < rows; ++r)
         for (size_t phase = 0; phase < sw; ++phase) { // output columns ow = q * sw + phase - pad
            const T *zp = z + r * z_row + phase * columns;
            T *o = yc + r * image[2];
            const std::ptrdiff_t first = pw - static_cast<std::ptrdiff_t>(phase); // q * sw >= first
            size_t q = first > 0 ? (static_cast<size_t>(first) + sw - 1) / sw : 0;
            for (size_t ow = q * sw + phase - static_cast<size_t>(pw); ow < image[2]; ow += sw, ++q)
               o[ow] += zp[q];
         }
   }
}

// Every channel of y starts as its bias (or 0).
template <typename T>
inline void conv_fill_bias(T *y, const T *bias, size_t channels, size_t size)
{
   for (size_t m = 0; m < channels; ++m)
      detail::fill(y + m * size, y + (m + 1) * size, bias ? bias[m] : T(0));
}

// The activation over one image's outputs, right after they are written: still in cache then, where a pass
// over the whole batch at the end reads and writes it from memory (ParticleNet's kernel-1 layers at batch 64:
// 13 MB, a quarter of the layer's time).
template <typename T, typename F>
inline void conv_activate(T *y, size_t n, F act)
{
   if constexpr (!std::is_same_v<F, Identity>)
      for (size_t i = 0; i < n; ++i)
         y[i] = act(y[i]);
}

// Convolution as one product per image and group: Y_g (M/group x OS) = W_g (M/group x C/group*K) * col.
// col (C/group*K x OS) is the im2col matrix, or nullptr for a 1x1 convolution with stride 1 and no
// pad, whose input already is that matrix.
template <typename T, typename F>
SOFIE_RDF_KERNEL void conv_gemm(const T *x, const T *w, const Opt<T> *bias, T *y, Opt<T> *col, size_t batch, size_t channels,
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
      conv_activate(yn, features * grid_size, act);
   }
}

// Direct convolution for depthwise-like layers (one input channel per group, few outputs each), where
// im2col would copy as much data as the product reads.  The innermost loop runs over the valid
// output columns of one row.
template <typename T, typename F>
SOFIE_RDF_KERNEL void conv_direct(const T *x, const T *w, const Opt<T> *bias, T *y, size_t batch, size_t channels,
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
         detail::fill(ym, ym + grid_size, bias ? bias[m] : T(0));
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
         conv_activate(ym, grid_size, act);
      }
}

// Transposed convolution: per image and group, col (M/group*K x IS) = W_g^T * X_g with W_g the
// (C/group x M/group*K) slice of the (C, M/group, k...) weights, then col2im scatters col into Y
// (col2im_phased with its scratch z when the last dim is strided, z null otherwise).
// `image` is the output's spatial shape, `grid` the input's.
template <typename T, typename F>
SOFIE_RDF_KERNEL void conv_transpose_gemm(const T *x, const T *w, const Opt<T> *bias, T *y, Opt<T> *col, Opt<T> *z, size_t batch,
                                size_t channels, size_t features, size_t group, const size_t *image, const size_t *grid,
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
         if (z)
            col2im_phased(col, mg, image, grid, kernel, stride, dilation, pad, yn + g * mg * image_size, z);
         else
            col2im(col, mg, image, grid, kernel, stride, dilation, pad, yn + g * mg * image_size);
      }
      conv_activate(yn, features * image_size, act);
   }
}

// ---- convolution as shifted products ------------------------------------------
//
// With stride 1, output position o reads input position o + k * dilation - pad in every dim.  In a
// zero-padded copy of one image whose dims are P = grid + (kernel - 1) * dilation, the flattened output
// position p = (od * P1 + oh) * P2 + ow reads the padded input at p + t(c, kd, kh, kw), an offset that is
// the same for every output position.  The convolution then is, per (input channel, kernel tap) step, a
// contiguous input vector times one weight per output channel: no im2col copy, and a register tile of
// outputs (a few channels x a few vectors of positions) that stays in registers over the steps.
// With stride s, the padded image is split by phase (space to depth): padded position s * i + r goes to
// position i of phase plane r, and tap k (padded offset k * dilation = s * q + r) reads phase plane r at
// offset q, the same for every output position again.  Each plane then has P = grid + (kernel - 1) *
// dilation / s positions per dim.
// Positions whose oh or ow lie in the padding are computed and dropped (a few percent for large images).
// Many steps are taken in passes of kConvChunkSteps, so that the input rows a pass reads stay in the L1
// cache from one tile to the next; partial sums between passes go to scratch.
//
// The weights are stored in panels (emitters/conv.py, pack_panels): output channels in blocks of
// kConvPanelRows, each block K x rows with K = channels * kd * kh * kw in (c, kd, kh, kw) order, the
// block's rows side by side.  The last block holds the remaining rows.
// Scratch (sized by emitters/conv.py, shifted_workspace): the padded image (channels x phases planes), kConvTileSlack
// floats that the last tile reads past it, then kConvPanelRows rows of partial sums (when there are several
// passes); and the table of step offsets.

constexpr size_t kConvPanelRows = 6; // output channels per register tile (6 x 2 vectors, as BLIS's AVX2 kernel)

// Vectors of positions per register tile of `rows` output channels: accumulators, the input vectors and one
// broadcast weight fit the register file (16 AVX registers: 6 x 2 and 4 x 3 vectors are 12 accumulators;
// AVX-512's 32 take twice the vectors, each twice as wide: 6 channels x 4 vectors of 16 positions is 24
// accumulators, 4 inputs and a weight).
#if SOFIE_RDF_AVX512
constexpr size_t conv_tile_vectors(size_t rows)
{
   return rows >= 4 ? 4 : rows == 3 ? 6 : rows == 2 ? 8 : 12;
}
#else
constexpr size_t conv_tile_vectors(size_t rows)
{
   return rows >= 5 ? 2 : rows >= 3 ? 3 : rows == 2 ? 4 : 6;
}
#endif
// Floats read past the last position by the widest tile, and a multiple of every tile width.  emitters/conv.py
// sizes the scratch for the largest values of any instruction set (SHIFTED_SLACK, SHIFTED_PARTIAL_ALIGN).
constexpr size_t kConvTileSlack = conv_tile_vectors(1) * kSimdLanes;
constexpr size_t kConvPartialAlign = 2 * kConvTileSlack; // 96 or 384 floats
constexpr size_t kConvChunkSteps = 512;           // (channel, tap) steps summed per pass: their input stays in cache

// Geometry of one shifted convolution, derived once per call from the emitted arrays.
struct ConvShifted {
   size_t padded[3], stride[3], dilation[3], kernel[3], grid[3];
   size_t plane, phases, grid_size, positions;

   ConvShifted(const size_t *grid_, const size_t *kernel_, const size_t *stride_, const size_t *dilation_)
   {
      phases = 1;
      for (size_t i = 0; i < 3; ++i) {
         padded[i] = grid_[i] + (kernel_[i] - 1) * dilation_[i] / stride_[i];
         stride[i] = stride_[i];
         dilation[i] = dilation_[i];
         kernel[i] = kernel_[i];
         grid[i] = grid_[i];
         phases *= stride_[i];
      }
      plane = padded[0] * padded[1] * padded[2];
      grid_size = grid[0] * grid[1] * grid[2];
      positions = ((grid[0] - 1) * padded[1] + grid[1] - 1) * padded[2] + grid[2]; // up to the last output
   }
   // Row stride of the partial sums between passes: positions rounded up to whole tiles.
   size_t partial_stride() const
   {
      return (positions + kConvPartialAlign - 1) / kConvPartialAlign * kConvPartialAlign;
   }
};

// Where a register tile's vectors lie, as offsets from its input (xp) and its output (out, start): side by
// side, a run of flattened positions ...
struct ContiguousSpots {
   size_t in(size_t j) const { return j * kSimdLanes; }
   size_t out(size_t j) const { return j * kSimdLanes; }
};

// ... or each at its own offsets (conv_shifted_direct: vectors of output rows, apart in the padded input).
template <size_t Vectors>
struct TableSpots {
   size_t in_at[Vectors], out_at[Vectors];
   size_t in(size_t j) const { return in_at[j]; }
   size_t out(size_t j) const { return out_at[j]; }
};

// conv_shifted_tile's loop over TableSpots in inline assembly, under Cling (kernels/gemm.hxx: SOFIE_RDF_TILE_ASM,
// SOFIE_RDF_TILE_ASM512, whose macros these use).
#if SOFIE_RDF_TILE_ASM512
// acc[i][j] += w[k * Rows + i] * xp[table[k] + in_at[j] .. + lanes] over k < steps: conv_shifted_tile's loop for
// conv_shifted_direct, whose vectors are output rows apart in the padded input (TableSpots), each read through a
// pointer of its own.  V: whole vectors, or AVX-512VL's halves (float8 in ymm registers, rows of 8, 12 or 24
// pixels): one assembly text for both, its register names and sizes (SOFIE_RDF_ASM_VR, _VB) defined for the half
// around the second copy.  Declared into ROOT on a Xeon (AVX-512), a calorimeter CNN's 3-D layers (1 -> 8 and
// 8 -> 16 channels on 24^3 and 12^3 voxels) spent half their time in this loop's C++ form, every sum stored and
// reloaded at each turn of the loop by ROOT's register allocator.
template <size_t Rows, size_t Vectors, typename V>
constexpr bool kSpotsAsm = kTileAsm512<Rows, Vectors> && Vectors <= 4 &&
                           (std::is_same_v<V, simd_float> || std::is_same_v<V, float8>);

#define SOFIE_RDF_ASM512_SPOTS_LOOP                                                                                   \
   __asm__ volatile(SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 1) /**/                                              \
                    "1:\n\t"                                                                                          \
                    "mov (%[t]), %[at]\n\t"                                                                            \
                    "vmovups (%[p0],%[at],4), " SOFIE_RDF_ASM_VR "26\n\t"                                              \
                    ".if %c[vecs] > 1\n\t" "vmovups (%[p1],%[at],4), " SOFIE_RDF_ASM_VR "27\n\t" ".endif\n\t"        \
                    ".if %c[vecs] > 2\n\t" "vmovups (%[p2],%[at],4), " SOFIE_RDF_ASM_VR "28\n\t" ".endif\n\t"        \
                    ".if %c[vecs] > 3\n\t" "vmovups (%[p3],%[at],4), " SOFIE_RDF_ASM_VR "29\n\t" ".endif\n\t"        \
                    SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_SHIFTED_ROW, 0) /**/                                         \
                    "add %[wb], %[w]\n\t"                                                                              \
                    "add $8, %[t]\n\t"                                                                                 \
                    "dec %[n]\n\t"                                                                                     \
                    "jnz 1b\n\t" /**/                                                                                  \
                    SOFIE_RDF_ASM512_ALL(SOFIE_RDF_ASM512_MOVES, 0)                                                    \
                    : [w] "+r"(w), [t] "+r"(table), [at] "=&r"(at), [n] "+r"(steps)                                    \
                    : [acc] "r"(acc), [p0] "r"(p[0]), [p1] "r"(p[1]), [p2] "r"(p[2]), [p3] "r"(p[3]),                  \
                      [wb] "i"(Rows * sizeof(float)), [rows] "i"(Rows), [vecs] "i"(Vectors)                            \
                    : SOFIE_RDF_ASM512_CLOBBERS)

template <size_t Rows, size_t Vectors, typename V>
inline void tile_asm_spots(V *acc, size_t steps, const float *xp, const std::int64_t *table, const size_t *in_at,
                           const float *w)
{
   static_assert(kSpotsAsm<Rows, Vectors, V>, "a shape with registers for its accumulators");
   const float *p[4];
   for (size_t j = 0; j < 4; ++j)
      p[j] = xp + in_at[j < Vectors ? j : 0];
   std::int64_t at;
   if constexpr (sizeof(V) == 64) {
      SOFIE_RDF_ASM512_SPOTS_LOOP;
   } else {
#undef SOFIE_RDF_ASM_VR
#undef SOFIE_RDF_ASM_VB
#define SOFIE_RDF_ASM_VR "%%ymm"
#define SOFIE_RDF_ASM_VB "32"
      SOFIE_RDF_ASM512_SPOTS_LOOP;
#undef SOFIE_RDF_ASM_VR
#undef SOFIE_RDF_ASM_VB
#define SOFIE_RDF_ASM_VR "%%zmm"
#define SOFIE_RDF_ASM_VB "64"
   }
}
#undef SOFIE_RDF_ASM512_SPOTS_LOOP
#elif SOFIE_RDF_TILE_ASM
// acc[i][j] (Rows x 2) += w[k * Rows + i] * xp[table[k] + in_at[j] .. + 8] over k < steps: conv_shifted_tile's
// loop for conv_shifted_direct (its vectors apart, TableSpots), as AVX-512's (above).
template <size_t Rows, size_t Vectors, typename V>
constexpr bool kSpotsAsm = kShiftedAsm<Rows, Vectors> && std::is_same_v<V, simd_float>;

template <size_t Rows, size_t Vectors, typename V>
inline void tile_asm_spots(V *acc, size_t steps, const float *xp, const std::int64_t *table, const size_t *in_at,
                           const float *w)
{
   static_assert(kSpotsAsm<Rows, Vectors, V>, "12 accumulators");
   simd_float x[12], in0, in1, bc, start[2 * Rows];
   for (size_t i = 0; i < 2 * Rows; ++i)
      start[i] = acc[i];
   const float *p0 = xp + in_at[0], *p1 = xp + in_at[1];
   std::int64_t at;
   __asm__(SOFIE_RDF_ASM_LOADS //
           "1:\n\t"
           "mov (%[t]), %[at]\n\t"
           "vmovups (%[p0],%[at],4), %[i0]\n\t"
           "vmovups (%[p1],%[at],4), %[i1]\n\t"       //
           SOFIE_RDF_ASM_SHIFTED_ROWS //
           "add %[wb], %[w]\n\t"
           "add $8, %[t]\n\t"
           "dec %[n]\n\t"
           "jnz 1b"
           : SOFIE_RDF_ASM_OUTPUTS, [w] "+r"(w), [t] "+r"(table), [at] "=&r"(at), [n] "+r"(steps)
           : [acc] "r"(start), [p0] "r"(p0), [p1] "r"(p1), [wb] "i"(Rows * sizeof(float)), [rows] "i"(Rows)
           : "cc", "memory");
   for (size_t i = 0; i < 2 * Rows; ++i)
      acc[i] = x[i];
}
#endif

// One register tile: Rows output channels x Vectors vectors of positions (at `spots` from xp), summed over
// `steps` (channel, tap) steps, plus `start` (rows start_stride apart), or the bias when start is null;
// written to out (rows out_stride apart, the vectors at `spots`) through act (act_vector: in registers, where
// conv_shifted_direct applied it to y in a second pass; the identity where the caller applies it).  Not inlined: compiled on its own, the
// accumulators stay in registers, where inlined into the loops around it GCC spills some of them.  `spots`
// goes by reference: a table passed by value is copied onto the stack per call, and loading the copy in
// whole vectors waits on the stores just made (a third of conv_shifted_direct's time).
// offsets[k] is a table (conv_shifted: a step is a channel and a tap) or StridedSteps (conv_pointwise).
template <size_t Rows, size_t Vectors, typename Steps, typename Spots = ContiguousSpots, typename F = Identity,
          typename V = simd_float>
[[gnu::noinline]] void conv_shifted_tile(Steps offsets, size_t steps, const float *xp,
                                         const float *panel, const float *bias, const float *start,
                                         size_t start_stride, float *out, size_t out_stride,
                                         const Spots &spots = Spots{}, F act = F{})
{
#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
   constexpr bool table = std::is_same_v<Steps, const std::int64_t *>;
   constexpr bool asm_steps = (table || std::is_same_v<Steps, StridedSteps>) &&
                              std::is_same_v<Spots, ContiguousSpots> && std::is_same_v<V, simd_float> &&
                              kShiftedAsm<Rows, Vectors>;
#endif
#if SOFIE_RDF_TILE_ASM512
   // Under Cling, the identity's tiles in assembly from their first values to their stores (tile_asm_out).
   if constexpr (asm_steps && std::is_same_v<F, Identity>) {
      if (steps) {
         const float *b = bias && !start ? bias : kTileZeros;
         if constexpr (table)
            tile_asm_out<Rows, Vectors, true>(steps, xp, 0, offsets, panel, b, start, std::ptrdiff_t(start_stride), out,
                                              std::ptrdiff_t(out_stride));
         else
            tile_asm_out<Rows, Vectors, false>(steps, xp, offsets.stride, nullptr, panel, b, start,
                                               std::ptrdiff_t(start_stride), out, std::ptrdiff_t(out_stride));
         return;
      }
   }
#endif
   // Start and end without a branch per sum: under Cling (ROOT's register allocator) each branch stored and reloaded
   // every value live across it, and the tiles of Winograd's products spent as long in these loops as in their sums.
   V acc[Rows][Vectors];
   const float zeros[Rows] = {}, *first = bias && !start ? bias : zeros;
#pragma GCC unroll 16
   for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j)
         acc[i][j] = first[i] - V{}; // x - (+0) is x: a broadcast
   const float *w = panel;
#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
   if constexpr (asm_steps) {
      if constexpr (table) {
         if (steps)
            tile_asm_shifted<Rows, Vectors, true>(&acc[0][0], steps, xp, 0, offsets, w);
      } else {
         if (steps)
            tile_asm_shifted<Rows, Vectors, false>(&acc[0][0], steps, xp, offsets.stride, nullptr, w);
      }
      steps = 0;
   }
   if constexpr (table && std::is_same_v<Spots, TableSpots<Vectors>> && kSpotsAsm<Rows, Vectors, V>) {
      if (steps)
         tile_asm_spots<Rows, Vectors>(&acc[0][0], steps, xp, offsets, spots.in_at, w);
      steps = 0;
   }
#endif
   SOFIE_RDF_TERMS_LOOP
   for (size_t k = 0; k < steps; ++k, w += Rows) {
      const float *src = xp + offsets[k];
      V in[Vectors];
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         std::memcpy(&in[j], src + spots.in(j), sizeof(V));
         SOFIE_KEEP_IN_REGISTER(in[j]);
      }
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i)
         fma_row<Vectors, false, V>(acc[i], in, w + i);
   }
   if (start) { // added at the end: sums of a pass are rounded apart from the long running total
#pragma GCC unroll 16
      for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
         for (size_t j = 0; j < Vectors; ++j) {
            V before;
            std::memcpy(&before, start + i * start_stride + spots.out(j), sizeof before);
            acc[i][j] += before;
         }
   }
#pragma GCC unroll 16
   for (size_t i = 0; i < Rows; ++i)
#pragma GCC unroll 16
      for (size_t j = 0; j < Vectors; ++j) {
         act_vector(acc[i][j], act);
         std::memcpy(out + i * out_stride + spots.out(j), &acc[i][j], sizeof(V));
      }
}

// Copies the valid positions of a tile (rows x width floats for flattened positions [p, p + width)) into
// y (channel stride grid_size), applying act.
template <typename F>
inline void conv_shifted_store(const ConvShifted &s, const float *tile, size_t rows, size_t width, size_t p, float *y,
                               F act)
{
   size_t ow = p % s.padded[2], oh = p / s.padded[2] % s.padded[1], od = p / s.padded[2] / s.padded[1];
   for (size_t j = 0; j < width;) {
      const size_t run = detail::min_of(width - j, s.padded[2] - ow);
      if (od < s.grid[0] && oh < s.grid[1] && ow < s.grid[2]) {
         const size_t valid = detail::min_of(run, s.grid[2] - ow), out = (od * s.grid[1] + oh) * s.grid[2] + ow;
         for (size_t i = 0; i < rows; ++i)
            act_copy(tile + i * width + j, y + i * s.grid_size + out, valid, act);
      }
      j += run;
      ow += run;
      if (ow == s.padded[2]) {
         ow = 0;
         if (++oh == s.padded[1]) {
            oh = 0;
            ++od;
         }
      }
   }
}

// Every position for the block of `rows` <= Rows output channels whose panel starts at `panel`, in tiles
// as wide as that many rows allow.
template <size_t Rows, typename F>
inline void conv_shifted_block(size_t rows, const ConvShifted &s, const std::int64_t *offsets, size_t steps,
                               const float *xp, float *partial, const float *panel, const float *bias, float *y, F act)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         conv_shifted_block<Rows - 1>(rows, s, offsets, steps, xp, partial, panel, bias, y, act);
         return;
      }
   }
   constexpr size_t Vectors = conv_tile_vectors(Rows), width = Vectors * kSimdLanes;
   alignas(sizeof(simd_float)) float tile[Rows * width];
   const size_t stride = s.partial_stride();
   for (size_t k = 0; k < steps; k += kConvChunkSteps) {
      const size_t count = detail::min_of(kConvChunkSteps, steps - k);
      const bool last = k + count == steps;
      for (size_t p = 0; p < s.positions; p += width) {
         const float *start = k ? partial + p : nullptr;
         if (!last) {
            conv_shifted_tile<Rows, Vectors>(offsets + k, count, xp + p, panel + k * Rows, bias, start, stride,
                                             partial + p, stride);
            continue;
         }
         conv_shifted_tile<Rows, Vectors>(offsets + k, count, xp + p, panel + k * Rows, bias, start, stride, tile,
                                          width);
         conv_shifted_store(s, tile, Rows, width, p, y, act);
      }
   }
}

// The vectors of `lanes` floats of the grid's rows in order (rows of at least `lanes` positions): each one's offset
// in the padded input and in y, counted along (no divisions).  A row that is not whole vectors ends in a vector
// that overlaps the one before it (the row's last `lanes` positions): its overlap is computed twice and stored
// twice with the same values.
struct ConvGridVectors {
   const ConvShifted &s;
   size_t lanes, count, column = 0, oh = 0, od = 0;

   ConvGridVectors(const ConvShifted &s_, size_t lanes_)
      : s(s_), lanes(lanes_), count(s_.grid[0] * s_.grid[1] * ((s_.grid[2] + lanes_ - 1) / lanes_)) {}
   size_t in() const { return (od * s.padded[1] + oh) * s.padded[2] + column; }
   size_t out() const { return (od * s.grid[1] + oh) * s.grid[2] + column; }
   void next()
   {
      if (column + lanes < s.grid[2]) {
         column = detail::min_of(column + lanes, s.grid[2] - lanes);
         return;
      }
      column = 0;
      if (++oh < s.grid[1])
         return;
      oh = 0;
      ++od;
   }
};

// Half a vector on AVX-512, for conv_shifted_direct; elsewhere the vector itself.
using conv_half_vector = std::conditional_t<kSimdLanes == 16, float8, simd_float>;
constexpr size_t kConvHalfLanes = sizeof(conv_half_vector) / sizeof(float);
// A half vector's lanes cost this many of a whole one's: two on Intel's AVX-512, whose multiply-adds of 8 floats take
// as long as those of 16 (kAvx512InHalves).
constexpr size_t kConvHalfCost = kConvHalfLanes < kSimdLanes && !kAvx512InHalves ? 2 : 1;

// Lanes that vectors of `lanes` floats compute to cover `width` positions: a row of conv_shifted_direct (its last
// vector overlapping the one before where the row is not whole vectors), or conv_pointwise's tiles.
constexpr size_t conv_covering_lanes(size_t width, size_t lanes)
{
   return (width + lanes - 1) / lanes * lanes;
}

// The vector width (floats) conv_shifted_direct takes for grid rows of `width` positions (`padded` in the padded input)
// summed over `steps` (channel, tap) steps, 0 where conv_shifted_block serves them instead.  Direct computes the lanes
// of conv_covering_lanes; block computes the row's padded positions, then copies the valid ones out row by row.  That
// copy costs the tiles' time times about 0.05 + (2 + 50 / steps) / width, fitted on Zen 4 (AVX-512), 3 x 3, 1 -> 16 and
// 8 -> 8 channels on rows of 10 to 100 pixels: direct is taken where it computes at most that much more.  It took 0.49x
// to 0.83x block's time for 1 -> 16 channels, 0.83x to 0.96x for 8 -> 8 on rows of 12, 14, 20, 28 and 60 pixels; on
// rows of 10, 18, 25 and 33 pixels (15% to 30% of direct's lanes wasted) it took 1.03x to 1.07x, and block keeps those.
// The emitter mirrors this (emitters/conv.py: direct_lanes).  Half vectors are taken where they waste fewer lanes
// counted at their cost (kConvHalfCost): on Intel's AVX-512 (Emerald Rapids Xeon) rows of 20, 24, 33, 40 and 50 pixels
// went from half vectors to whole ones or block, 0.62x to 0.84x the time (12 -> 20 channels on 20 pixels, 12 -> 24 and
// 8 -> 24 on 24, 1 and 4 -> 16 on 24, 3 -> 24 on 33, 8 -> 8 on 50, 6 -> 6 on 40 with 5 x 5); rows of 8 and 12 keep half
// vectors, the only ones that fit (1.0x).  On Intel whole vectors also run twice as fast as on Zen 4 against the copy,
// so the copy's share counts kConvHalfCost times: 1 -> 16 and 1 -> 10 channels on 20 x 50 pixels (9 steps) go direct
// again, 0.72x block's time, 4 -> 16 on 24 0.90x, 2 -> 8 on 20 0.80x (12 -> 24 on 24, 108 steps, 1.02x).
constexpr size_t conv_direct_lanes(size_t width, size_t padded, size_t steps)
{
   if (width < kConvHalfLanes)
      return 0;
   const bool whole = width >= kSimdLanes && conv_covering_lanes(width, kSimdLanes)
                                               <= conv_covering_lanes(width, kConvHalfLanes) * kConvHalfCost;
   const size_t lanes = whole ? kSimdLanes : kConvHalfLanes, used = conv_covering_lanes(width, lanes);
   // used <= padded * (1 + c * (0.05 + (2 + 50 / steps) / width)), in integers, c = kConvHalfCost
   constexpr size_t c = kConvHalfCost;
   return used * steps * width * 20 <= padded * (steps * (20 * width + c * (width + 40)) + c * 1000) ? lanes : 0;
}

// conv_shifted_block straight into y, where one pass sums every step (conv_direct_lanes says where): a tile is
// the next Vectors vectors of the grid's rows (ConvGridVectors), read from their places in the padded input and
// stored at theirs in y, activated.  The tile of padded positions went through L1 and out
// in runs of a row, ending in scalar loops; with few steps that was most of the time (1 channel to 16,
// 3x3 on 32 x 32 pixels: 5.4 us, FLOPs / peak 1.7 us).  The last tile repeats the last vector (same values
// to the same place) where the grid ends inside it.  V: the vectors, simd_float, or on AVX-512 half of one
// (float8, in AVX-512VL's 32 registers) where those waste fewer lanes (rows of 8 or 24 pixels, or 50: 7 of 8
// floats, against 4 of 16).  On whole-vector rows, against conv_shifted_block's tiles over the padded rows: 0.62x
// the time for 4 -> 8 channels on 8 x 8 x 8 voxels, 0.73x for 1 -> 8 on 24^3, 0.64x to 0.85x for 2-D rows of 24
// to 72 pixels (Zen 4); on other rows see conv_direct_lanes.
template <size_t Rows, typename V, typename F>
inline void conv_shifted_direct(size_t rows, const ConvShifted &s, const std::int64_t *offsets, size_t steps,
                                const float *xp, const float *panel, const float *bias, float *y, F act)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         conv_shifted_direct<Rows - 1, V>(rows, s, offsets, steps, xp, panel, bias, y, act);
         return;
      }
   }
   constexpr size_t Vectors = conv_tile_vectors(Rows);
   ConvGridVectors grid(s, sizeof(V) / sizeof(float));
   for (size_t q = 0; q < grid.count; q += Vectors) {
      TableSpots<Vectors> at;
      // n >= 1, which GCC cannot see at -O3 (-Warray-bounds on n - 1): `last` says it
      const size_t n = detail::min_of(Vectors, grid.count - q), last = detail::max_of<size_t>(n, 1) - 1;
      for (size_t j = 0; j < Vectors; ++j) {
         at.in_at[j] = j < n ? grid.in() : at.in_at[last];
         at.out_at[j] = j < n ? grid.out() : at.out_at[last];
         if (j < n)
            grid.next();
      }
      conv_shifted_tile<Rows, Vectors, const std::int64_t *, TableSpots<Vectors>, F, V>(
         offsets, steps, xp, panel, bias, nullptr, 0, y, s.grid_size, at, act);
   }
}

// Output channels in the block of panel rows starting at m (of `features`): Rows, but with split_tail, where 1 or
// 2 would remain, the last Rows + 1 or Rows + 2 go in two blocks of about half (8 = 4 + 4, 13 = 6 + 4 + 3).  With 16
// vector registers (AVX2) tiles of 1 or 2 rows read 4 to 6 input vectors for every 1 or 2 weights, and 4 rows take
// 3 vectors (12 sums, as 6 x 2): 8 -> 8 channels 0.95x the time, 1 -> 8 on 24^3 voxels 0.91x, 1 -> 20 on 32 x 32
// pixels 0.93x.  AVX-512's 2 x 8 tiles ran as fast as 4 x 4 (emitters/conv.py: panel_blocks, which packs the
// weights in these blocks, and the emitter's choice of split_tail).
template <size_t Rows>
constexpr size_t conv_panel_block(size_t m, size_t features, bool split_tail)
{
   const size_t left = features - m;
   return !split_tail || left <= Rows || left > Rows + 2 ? detail::min_of(Rows, left) : (left + 1) / 2;
}

// All output channels of one padded image, in blocks of Rows (conv_panel_block).
template <size_t Rows, typename F>
inline void conv_shifted_image(const ConvShifted &s, const std::int64_t *offsets, size_t steps, const float *xp,
                               float *partial, const float *w, const float *bias, float *y, size_t features,
                               bool split_tail, F act)
{
   const bool one_pass = steps <= kConvChunkSteps;
   for (size_t m = 0, rows; m < features; m += rows) {
      rows = conv_panel_block<Rows>(m, features, split_tail);
      const float *panel = w + m * steps, *b = bias ? bias + m : nullptr;
      float *ym = y + m * s.grid_size;
      const size_t lanes = one_pass ? conv_direct_lanes(s.grid[2], s.padded[2], steps) : 0;
      if (lanes == kSimdLanes)
         conv_shifted_direct<Rows, simd_float>(rows, s, offsets, steps, xp, panel, b, ym, act);
      else if (lanes == kConvHalfLanes)
         conv_shifted_direct<Rows, conv_half_vector>(rows, s, offsets, steps, xp, panel, b, ym, act);
      else
         conv_shifted_block<Rows>(rows, s, offsets, steps, xp, partial, panel, b, ym, act);
   }
}

// The offset in the padded input of every (channel, tap) step, in the weights' order; returns their count.
// Channel c's offsets are channel 0's plus c * phases * plane, so the taps' offsets (divisions by the stride)
// are found once, not once per channel.
inline size_t conv_shifted_offsets(const ConvShifted &s, size_t channels, std::int64_t *offsets)
{
   const size_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2];
   if (channels == 0) // the table has no room for channel 0's taps
      return 0;
   size_t k = 0;
   for (size_t kd = 0; kd < s.kernel[0]; ++kd)
      for (size_t kh = 0; kh < s.kernel[1]; ++kh)
         for (size_t kw = 0; kw < s.kernel[2]; ++kw) {
            const size_t tap[3] = {kd * s.dilation[0], kh * s.dilation[1], kw * s.dilation[2]};
            size_t phase = 0, at = 0;
            for (size_t i = 0; i < 3; ++i) {
               phase = phase * s.stride[i] + tap[i] % s.stride[i];
               at = at * s.padded[i] + tap[i] / s.stride[i];
            }
            offsets[k++] = static_cast<std::int64_t>(phase * s.plane + at);
         }
   const std::int64_t channel = static_cast<std::int64_t>(s.phases * s.plane);
   for (size_t c = 1; c < channels; ++c)
      for (size_t t = 0; t < taps; ++t)
         offsets[c * taps + t] = offsets[t] + static_cast<std::int64_t>(c) * channel;
   return channels * taps;
}

// Image columns [first, first + sw * n) step sw of one phase of the last dim, for conv_shifted_pad: column
// first + sw * j goes to position at + j of the phase's row (and the same for the rows of a phase of dim 1).
struct ConvPhaseColumns {
   size_t first, at, n;

   ConvPhaseColumns(size_t r, size_t sw, size_t width, size_t pad, size_t padded)
   {
      first = (r + sw - pad % sw) % sw;
      at = (first + pad) / sw;
      n = first < width && at < padded ? detail::min_of((width - first + sw - 1) / sw, padded - at) : 0;
      if (n == 0)
         at = padded; // the whole row is padding
   }
};

// dst[k] = 0 for k in [from, to): the few padding columns of a row, stored one by one (a loop GCC would make a
// call to memset, whose start-up costs more).
inline void zero_columns(float *dst, size_t from, size_t to)
{
   for (size_t k = from; k < to; ++k) {
      float zero = 0.0f;
      SOFIE_KEEP_IN_REGISTER(zero);
      dst[k] = zero;
   }
}

// dst[k] = 0 for k < n, in whole vectors as far as they go: rows and planes of padding.
inline void zero_floats(float *dst, size_t n)
{
   size_t k = 0;
   for (; k + kVFloatLanes <= n; k += kVFloatLanes) {
      vfloat zero = {};
      SOFIE_KEEP_IN_REGISTER(zero);
      std::memcpy(dst + k, &zero, sizeof zero);
   }
   zero_columns(dst, k, n);
}

// dst[j] = src[2 * j] for j < n: apart from other stores, so that GCC vectorizes it without alias checks.
inline void copy_even(const float *__restrict src, float *__restrict dst, size_t n)
{
   for (size_t j = 0; j < n; ++j)
      dst[j] = src[2 * j];
}

// The padding columns of `count` rows of one phase plane (`width` floats each), before the rows' values go in.
inline void zero_margin_columns(float *rows, size_t count, const ConvPhaseColumns &cols, size_t width)
{
   for (size_t r = 0; r < count; ++r, rows += width) {
      zero_columns(rows, 0, cols.at);
      zero_columns(rows, cols.at + cols.n, width);
   }
}

// Visits the padded image (split by phase) in runs of rows: for each channel, row qd and phase rd of dim 0 and
// phase rh of dim 1, f(src, dst, count): `count` image rows from src (stride[1] * image[2] apart) that go to
// rows of the phase planes of the last dim from dst (the plane of its phase 0; rows padded[2] apart).  Rows all
// padding are zeroed here, whole blocks of rows at a time.  Per run, not per row: with a call per row, a stride-2
// layer's copy (8 channels of 32^3 voxels) spent more on each row's bookkeeping than on its values.
template <typename F>
inline void conv_shifted_runs(const float *x, size_t channels, const size_t *image, const std::ptrdiff_t *pad,
                              const ConvShifted &s, float *xp, F f)
{
   const size_t sd = s.stride[0], sh = s.stride[1], sw = s.stride[2], row = s.padded[2];
   const size_t block = s.padded[1] * row; // floats of one qd in a phase plane
   const std::ptrdiff_t depth = std::ptrdiff_t(image[0]);
   for (size_t c = 0; c < channels; ++c)
      for (size_t qd = 0; qd < s.padded[0]; ++qd)
         for (size_t rd = 0; rd < sd; ++rd) {
            const std::ptrdiff_t d = std::ptrdiff_t(qd * sd + rd) - pad[0];
            float *planes = xp + (c * sd + rd) * sh * sw * s.plane + qd * block; // phase (rh, rw) at (rh sw + rw) planes
            if (d < 0 || d >= depth) {
               for (size_t r = 0; r < sh * sw; ++r)
                  zero_floats(planes + r * s.plane, block);
               continue;
            }
            const float *image_plane = x + (c * image[0] + size_t(d)) * image[1] * image[2];
            for (size_t rh = 0; rh < sh; ++rh) { // the image rows of phase rh: rows [at, at + n) of its planes
               const ConvPhaseColumns rows(rh, sh, image[1], size_t(pad[1]), s.padded[1]);
               float *dst = planes + rh * sw * s.plane;
               for (size_t rw = 0; rw < sw; ++rw) {
                  zero_floats(dst + rw * s.plane, rows.at * row);
                  zero_floats(dst + rw * s.plane + (rows.at + rows.n) * row, (s.padded[1] - rows.at - rows.n) * row);
               }
               if (rows.n)
                  f(image_plane + rows.first * image[2], dst + rows.at * row, rows.n);
            }
         }
}

// Copies one image into the scratch xp, zero-padded and split by phase, and clears the slack after it that the
// last tile reads.  Every position is written (padding too): clearing the whole scratch first cost a third as
// much as the copy.  Padded positions past what any output reads are dropped.
inline void conv_shifted_pad(const float *x, size_t channels, const size_t *image, const std::ptrdiff_t *pad,
                             const ConvShifted &s, float *xp)
{
   const size_t sw = s.stride[2], pw = size_t(pad[2]), width = s.padded[2], step = s.stride[1] * image[2];
   zero_columns(xp + channels * s.phases * s.plane, 0, kConvTileSlack);
   if (sw == 2) { // the common stride: even and odd image columns, one phase each, in one pass over a row
      const ConvPhaseColumns even(pw % 2, 2, image[2], pw, width), odd(1 - pw % 2, 2, image[2], pw, width);
      const size_t both = detail::min_of(even.n, odd.n), to_even = pw % 2 * s.plane, to_odd = (1 - pw % 2) * s.plane;
      const size_t vectors = both - both % kVFloatLanes; // vfloat: the widest vector the compiler targets
      conv_shifted_runs(x, channels, image, pad, s, xp, [=](const float *src, float *dst, size_t count) {
         zero_margin_columns(dst + to_even, count, even, width);
         zero_margin_columns(dst + to_odd, count, odd, width);
         float *e = dst + to_even + even.at, *o = dst + to_odd + odd.at;
         for (size_t r = 0; r < count; ++r, src += step, e += width, o += width) {
            for (size_t v = 0; v < vectors; v += kVFloatLanes) { // whole vectors inline, the rest as split_phases
               vfloat out[2];
               ColumnPhases<2, vfloat>::split(src + 2 * v, out);
               vstore_as(e + v, out[0]);
               vstore_as(o + v, out[1]);
            }
            if (vectors < both) {
               float *const phases[2] = {e + vectors, o + vectors};
               split_phases<2>(src + 2 * vectors, phases, both - vectors);
            }
            copy_even(src + 2 * both, e + both, even.n - both);
         }
      });
      return;
   }
   conv_shifted_runs(x, channels, image, pad, s, xp, [=](const float *src, float *dst, size_t count) {
      for (size_t r = 0; r < sw; ++r) { // the image columns of phase r: w + pad = sw * i + r
         const ConvPhaseColumns cols(r, sw, image[2], pw, width);
         float *rows = dst + r * s.plane;
         zero_margin_columns(rows, count, cols, width);
         for (size_t i = 0; i < count; ++i) {
            const float *line = src + i * step;
            float *to = rows + i * width + cols.at;
            if (sw == 1) // act_copy: a row of a few dozen floats, which std::copy would hand to memmove
               act_copy(line, to, cols.n, Identity{});
            else
               for (size_t j = 0; j < cols.n; ++j)
                  to[j] = line[cols.first + sw * j];
         }
      }
   });
}

// Ungrouped float convolution (see above) with panel-packed weights (in conv_panel_block's blocks); xp is the
// float scratch, offsets room for channels * kd * kh * kw steps.
template <typename F>
SOFIE_RDF_KERNEL void conv_shifted(const float *x, const float *w, const float *bias, float *y, float *xp,
                         std::int64_t *offsets, size_t batch, size_t channels, size_t features, const size_t *image,
                         const size_t *grid, const size_t *kernel, const size_t *stride, const size_t *dilation,
                         const std::ptrdiff_t *pad, bool split_tail, F act)
{
   const ConvShifted s(grid, kernel, stride, dilation);
   const size_t steps = conv_shifted_offsets(s, channels, offsets);
   float *partial = xp + channels * s.phases * s.plane + kConvTileSlack;
   for (size_t n = 0; n < batch; ++n) {
      conv_shifted_pad(x + n * channels * image[0] * image[1] * image[2], channels, image, pad, s, xp);
      float *yn = y + n * features * s.grid_size;
      switch (detail::min_of(features, kConvPanelRows)) { // fewer output channels than a panel: wider tiles
      case 1: conv_shifted_image<1>(s, offsets, steps, xp, partial, w, bias, yn, features, split_tail, act); break;
      case 2: conv_shifted_image<2>(s, offsets, steps, xp, partial, w, bias, yn, features, split_tail, act); break;
      case 3: conv_shifted_image<3>(s, offsets, steps, xp, partial, w, bias, yn, features, split_tail, act); break;
      default: conv_shifted_image<kConvPanelRows>(s, offsets, steps, xp, partial, w, bias, yn, features, split_tail, act); break;
      }
   }
}

// ---- 1x1 convolutions: the input is the product's matrix ---------------------------
//
// A 1x1 kernel with stride 1 and no padding reads every position at its own place: Y_n (features x positions)
// = W (features x channels) X_n (channels x positions), one product per image.  conv_shifted's register tiles
// run it straight on the input (no padded copy), the bias as the accumulators' start and the activation
// applied in registers (the last, partial tile's through L1).  BLAS with a bias pass before and an activation pass after went over
// Y three times (ParticleNet's EdgeConv layers, 64 -> 64 channels on 50 x 16 positions: 100 GFLOP/s).
// Positions go outermost, so that a tile's input columns (channels x tile width) stay in L1 for every block
// of output channels.  The weights are in conv_shifted's panels (emitters/conv.py: pack_panels).  The last,
// partial tile of positions reads a zero-padded copy of its columns in scratch (channels x
// kPointwiseScratchWidth): a tile reaching past the image would read past the input.

// Tile width in positions of conv_pointwise's widest tile (a tile of 1 to 3 output channels), and the row
// stride of its scratch (emitters/conv.py: POINTWISE_SCRATCH_WIDTH, the largest of any instruction set).
constexpr size_t kPointwiseScratchWidth = conv_tile_vectors(1) * kSimdLanes;

// Output channels [m, m + rows) (rows <= Rows) at positions [p, p + Vectors * kSimdLanes) of one image, the
// input read at x + offsets[k] + p; the first `valid` columns out to y (rows `positions` apart).
template <size_t Rows, size_t Vectors, typename F>
inline void conv_pointwise_tile(size_t rows, StridedSteps steps, size_t channels, const float *x, const float *panel,
                                const float *bias, float *y, size_t positions, size_t valid, F act)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         conv_pointwise_tile<Rows - 1, Vectors>(rows, steps, channels, x, panel, bias, y, positions, valid, act);
         return;
      }
   }
   constexpr size_t width = Vectors * kSimdLanes;
   if (valid == width) {
      conv_shifted_tile<Rows, Vectors>(steps, channels, x, panel, bias, nullptr, 0, y, positions, ContiguousSpots{},
                                       act);
      return;
   }
   alignas(sizeof(simd_float)) float tile[Rows * width];
   conv_shifted_tile<Rows, Vectors>(steps, channels, x, panel, bias, nullptr, 0, tile, width);
   for (size_t i = 0; i < Rows; ++i)
      act_copy(tile + i * width, y + i * positions, valid, act);
}

// One image: tiles of Rows output channels x Vectors vectors of positions, positions outermost.
template <size_t Rows, size_t Vectors, typename F>
inline void conv_pointwise_image(const float *x, const float *w, const float *bias, float *y, float *scratch,
                                 size_t channels, size_t features, size_t positions, F act)
{
   constexpr size_t width = Vectors * kSimdLanes;
   static_assert(width <= kPointwiseScratchWidth, "the last tile's columns fit the scratch rows");
   const size_t full = positions - positions % width;
   for (size_t p = 0; p < positions; p += width) {
      const size_t valid = detail::min_of(width, positions - p);
      const float *xs = x + p;
      StridedSteps steps{static_cast<std::ptrdiff_t>(positions)};
      if (p == full) { // the partial tile: its columns, zero-padded
         for (size_t c = 0; c < channels; ++c) {
            detail::copy(x + c * positions + p, x + c * positions + positions, scratch + c * width);
            detail::fill(scratch + c * width + valid, scratch + (c + 1) * width, 0.0f);
         }
         xs = scratch;
         steps = StridedSteps{static_cast<std::ptrdiff_t>(width)};
      }
      for (size_t m = 0; m < features; m += Rows)
         conv_pointwise_tile<Rows, Vectors>(detail::min_of(Rows, features - m), steps, channels, xs, w + m * channels,
                                            bias ? bias + m : nullptr, y + m * positions + p, positions, valid, act);
   }
}

// Vectors of conv_pointwise's narrow tiles of kConvPanelRows channels: half the usual, taken where that leaves at
// least two (AVX-512's 6 x 2: 12 accumulators).  They serve images whose positions the usual tiles cover with more
// lanes (25 positions: 32 lanes, not 64): DeepJet's 1x1 Conv1d over 25 particles, 16 -> 64 channels, took
// twice as long built for AVX-512 as for AVX2, whose tiles are 16 positions wide.
constexpr size_t kPointwiseNarrow = conv_tile_vectors(kConvPanelRows) / 2;

inline bool conv_pointwise_narrow(size_t positions)
{
   const size_t narrow = kPointwiseNarrow * kSimdLanes;
   return conv_covering_lanes(positions, narrow) < conv_covering_lanes(positions, 2 * narrow);
}

// Y = act(W X + bias) per image for a 1x1 convolution with stride 1 and no padding; positions is the image's
// size (input and output alike).
template <typename F>
SOFIE_RDF_KERNEL void conv_pointwise(const float *x, const float *w, const float *bias, float *y, float *scratch,
                                     size_t batch, size_t channels, size_t features, size_t positions, F act)
{
   for (size_t n = 0; n < batch; ++n) {
      const float *xn = x + n * channels * positions;
      float *yn = y + n * features * positions;
      switch (detail::min_of(features, kConvPanelRows)) { // fewer output channels than a panel: wider tiles
      case 1: conv_pointwise_image<1, conv_tile_vectors(1)>(xn, w, bias, yn, scratch, channels, features, positions, act); break;
      case 2: conv_pointwise_image<2, conv_tile_vectors(2)>(xn, w, bias, yn, scratch, channels, features, positions, act); break;
      case 3: conv_pointwise_image<3, conv_tile_vectors(3)>(xn, w, bias, yn, scratch, channels, features, positions, act); break;
      default:
         if constexpr (kPointwiseNarrow >= 2) {
            if (conv_pointwise_narrow(positions)) {
               conv_pointwise_image<kConvPanelRows, kPointwiseNarrow>(xn, w, bias, yn, scratch, channels, features,
                                                                      positions, act);
               break;
            }
         }
         conv_pointwise_image<kConvPanelRows, conv_tile_vectors(kConvPanelRows)>(xn, w, bias, yn, scratch, channels,
                                                                                 features, positions, act);
         break;
      }
   }
}

// A 1x1 convolution with strides and no padding (ResNet's shortcuts): per image, the positions it reads are
// gathered into scratch (after conv_pointwise's columns: channels x grid positions, the product's matrix), then
// conv_pointwise's tiles run on them.  im2col's same gather and BLAS with bias and activation passes took 1.2x to
// 2.3x as long (4 to 64 channels on 16 to 56 pixels, strides 2 and 3; Xeon, AVX-512).
template <typename F>
SOFIE_RDF_KERNEL void conv_pointwise_strided(const float *x, const float *w, const float *bias, float *y,
                                             float *scratch, size_t batch, size_t channels, size_t features,
                                             const size_t *image, const size_t *grid, const size_t *stride, F act)
{
   const size_t positions = grid[0] * grid[1] * grid[2], size = image[0] * image[1] * image[2];
   float *gathered = scratch + channels * kPointwiseScratchWidth;
   for (size_t n = 0; n < batch; ++n) {
      float *g = gathered;
      for (size_t c = 0; c < channels; ++c)
         for (size_t od = 0; od < grid[0]; ++od)
            for (size_t oh = 0; oh < grid[1]; ++oh) {
               const float *row = x + (n * channels + c) * size + (od * stride[0] * image[1] + oh * stride[1]) * image[2];
               if (stride[2] == 2) // the common stride, in vectors
                  copy_even(row, g, grid[2]);
               else
                  for (size_t ow = 0; ow < grid[2]; ++ow)
                     g[ow] = row[ow * stride[2]];
               g += grid[2];
            }
      conv_pointwise(gathered, w, bias, y + n * features * positions, scratch, 1, channels, features, positions, act);
   }
}

// ---- many output channels, few positions: positions as the tile's rows ------
//
// Where the image is small and the layer has many output channels (resnet's last stages: 7x7 positions,
// 512 features, 4608 (channel, tap) steps), the shifted tiles spend a fifth of their work on padding
// columns and BLAS packs 9 MB of weights per call.  The product is then taken the other way around, in
// register tiles (panel_tile, in gemm.hxx) of up to kPanelRows output positions x kTilePanels * kPanelColumns
// features; per (channel, tap) step each position's input value is broadcast (read at the position's base in
// a zero-padded copy of the image plus the step's offset: no im2col copy) and the step's weights are read as
// vectors.  The weights are stored at generation time in blocks of kPanelColumns features, each K x
// kPanelColumns (emitters/conv.py: pack_panels with that many rows; the layer's features are a multiple of it).
// The steps run in balanced passes of at most kRowsChunkSteps (the pass's weights stay in cache while every
// position reads them), the partial sums kept positions x features.
// Scratch (emitters/conv.py: ConvEmitter.workspace): the padded image (conv_shifted_pad's, with its slack), the partial
// sums, the step offsets and the positions' bases.

// Steps per pass: the pass's weights for one tile's features (kTilePanels panels, 24 KB) stay in the L1 cache
// while every tile of positions reads them.  Passes of 512 steps (64 KB on AVX-512) stream them from L2 for
// each tile, where the tiles' loads of the second panel stall (64 -> 64 channels on 8 x 8 pixels: about 2%
// slower, interleaved runs on a Xeon, AVX-512).
// Rows of conv_rows' two-panel tiles where each multiply-add broadcasts its value from memory (fma_row's InFma:
// Zen 4), which frees the broadcast's register: 15 x 2 accumulators and the two panel vectors fill the 32 registers.
// Against 12 rows, 0.93x to 0.98x the time (16 -> 32 channels on 24 and 32 pixels with stride 2, 4 -> 32 on 16,
// 128 -> 256 on 7: 1.0x).  Layers whose features end in a one-panel tile keep 12 rows (15 x 1 tiles: 1.03x).
constexpr size_t kRowsWideTileRows = kBroadcastInFma ? 15 : kPanelRows;
constexpr size_t kRowsChunkSteps = 24 * 1024 / (kTilePanels * kPanelColumns * sizeof(float));

// Positions [p, p + rows) (rows <= Rows) x features [f, f + Panels * kPanelColumns) over steps [k, k + count),
// onto the sums (positions x features).
template <size_t Rows, size_t Panels>
inline void conv_rows_block(size_t rows, const std::int64_t *offsets, size_t k, size_t count, const float *xp,
                            const size_t *bases, const float *block, size_t depth, const float *bias, float *partial,
                            size_t p, size_t f, size_t features)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         conv_rows_block<Rows - 1, Panels>(rows, offsets, k, count, xp, bases, block, depth, bias, partial, p, f,
                                           features);
         return;
      }
   }
   float *sums = partial + p * features + f;
   constexpr bool in_fma = kBroadcastInFma && Panels * kPanelVectors == 2;
   panel_tile<Rows, Panels, const std::int64_t *, in_fma>(offsets + k, count, xp, bases, block + k * kPanelColumns,
                                                          depth * kPanelColumns, k ? sums : nullptr, features, sums,
                                                          features, bias ? bias + f : nullptr);
}

// Steps [k0, k0 + count) of every block of features and tile of positions (tiles of up to TileRows rows; more than
// kPanelRows only where every block of features is kTilePanels panels), onto the sums.
template <size_t TileRows>
inline void conv_rows_pass(const PanelTiles &tiles, const std::int64_t *offsets, size_t k0, size_t count,
                           const float *xp, const size_t *bases, const float *w, size_t depth, const float *bias,
                           float *partial, size_t features)
{
   for (size_t f = 0, panels; f < features; f += panels * kPanelColumns) {
      panels = tile_panels(f, features);
      for (size_t q = 0, p = 0; q < tiles.count; p += tiles.rows_of(q), ++q) {
         const size_t rows = tiles.rows_of(q);
         if (panels == kTilePanels)
            conv_rows_block<TileRows, kTilePanels>(rows, offsets, k0, count, xp, bases + p, w + f * depth, depth,
                                                   bias, partial, p, f, features);
         else
            conv_rows_block<kPanelRows, 1>(rows, offsets, k0, count, xp, bases + p, w + f * depth, depth, bias,
                                           partial, p, f, features);
      }
   }
}

// y[f * positions + p] = act(sums[p * features + f]) for features in whole panels (the bias is in the sums: the
// register tiles' start): conv_rows' sums out to the NCHW image in 8 x 8 blocks transposed in registers, activated
// there.  Stored value by value from each register tile (a column of the tile per feature), they took a quarter
// of a stride-2 layer's time (16 -> 32 channels on 32 pixels, AVX-512); bias and activation in passes over the sums
// before the transposes, another 8% (16 -> 32 channels on 24 pixels, stride 2, Zen 4).
template <typename F>
inline void conv_rows_out(const float *sums, size_t positions, size_t features, float *y, F act)
{
   const size_t whole = positions - positions % 8;
   for (size_t f = 0; f < features; f += 8) {
      float *yf = y + f * positions;
      for (size_t p = 0; p < whole; p += 8) {
         float8 t[8];
         transpose8(sums + p * features + f, features, t);
         for (size_t j = 0; j < 8; ++j) {
            float8 v = t[j];
            act_vector(v, act);
            std::memcpy(yf + j * positions + p, &v, sizeof v);
         }
      }
      for (size_t p = whole; p < positions; ++p)
         for (size_t j = 0; j < 8; ++j)
            yf[j * positions + p] = act(sums[p * features + f + j]);
   }
}

// Ungrouped float convolution with weights in feature blocks (see above); xp is the float scratch, offsets
// room for K steps.  Per pass, each block of features reads its weights once for all positions.
template <typename F>
SOFIE_RDF_KERNEL SOFIE_RDF_WIDE void conv_rows(const float *x, const float *w, const float *bias, float *y, float *xp, std::int64_t *offsets,
                      size_t batch, size_t channels, size_t features, const size_t *image, const size_t *grid,
                      const size_t *kernel, const size_t *stride, const size_t *dilation, const std::ptrdiff_t *pad,
                      F act)
{
   // The padded image (as far as any output reads) is conv_shifted's for a stride-1 grid spanning the strided one.
   const size_t span[3] = {(grid[0] - 1) * stride[0] + 1, (grid[1] - 1) * stride[1] + 1, (grid[2] - 1) * stride[2] + 1};
   const size_t unit[3] = {1, 1, 1}, positions = grid[0] * grid[1] * grid[2];
   const ConvShifted r(span, kernel, unit, dilation);
   const size_t depth = conv_shifted_offsets(r, channels, offsets);
   float *partial = xp + channels * r.plane + kConvTileSlack;
   const bool wide = features % (kTilePanels * kPanelColumns) == 0;
   const PanelTiles tiles(positions, wide ? kRowsWideTileRows : kPanelRows);
   const size_t passes = (depth + kRowsChunkSteps - 1) / kRowsChunkSteps, chunk = (depth + passes - 1) / passes;
   // Each output position's first input in the padded image, after the step offsets (the same for every image,
   // pass and block of features).
   size_t *bases = reinterpret_cast<size_t *>(offsets + depth);
   for (size_t od = 0, at = 0; od < grid[0]; ++od)
      for (size_t oh = 0; oh < grid[1]; ++oh)
         for (size_t ow = 0; ow < grid[2]; ++ow)
            bases[at++] = (od * stride[0] * r.padded[1] + oh * stride[1]) * r.padded[2] + ow * stride[2];
   for (size_t n = 0; n < batch; ++n) {
      conv_shifted_pad(x + n * channels * image[0] * image[1] * image[2], channels, image, pad, r, xp);
      for (size_t k0 = 0; k0 < depth; k0 += chunk) {
         const size_t count = detail::min_of(chunk, depth - k0);
         if (wide)
            conv_rows_pass<kRowsWideTileRows>(tiles, offsets, k0, count, xp, bases, w, depth, bias, partial, features);
         else
            conv_rows_pass<kPanelRows>(tiles, offsets, k0, count, xp, bases, w, depth, bias, partial, features);
      }
      conv_rows_out(partial, positions, features, y + n * features * positions, act);
   }
}
