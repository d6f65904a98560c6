// Winograd convolution F(m x m, r x r) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016) for 2-D float layers with r x r kernels (F(2, 3), F(4, 3), F(2, 5)), stride 1,
// dilation 1 and one group.
//
// Each alpha x alpha input tile (alpha = m + r - 1, tiles m apart) becomes V = B^T d B; each output
// tile is Y = A^T M A, where M is, for every one of the alpha^2 tile positions xi, the product
// M_xi (features x tiles) = U_xi (features x channels) * V_xi (channels x tiles).  U = G g G^T, the
// transformed weights, is computed once at generation time (ops/reference.py: winograd_weights) and stored
// as alpha^2 matrices of features x channels.  The products then do alpha^2 / (m r)^2 of the direct
// convolution's multiplications: 0.44 for F(2, 3), 0.25 for F(4, 3), 0.36 for F(2, 5).
//
// The transforms run on rows of up to kWinogradChunk tiles at once, so that their arithmetic is
// vector code over contiguous arrays; bias and activation are applied as the output tiles are written.

constexpr size_t kWinogradChunk = 32; // tiles along x transformed together

// The 1-D transforms, written out with their common terms (the matrices are mostly 0 and +-1):
// WinogradInput<alpha>::input gives o(i, t) = sum_j B^T[i][j] d(j, t), WinogradOutput<m, alpha>::output gives
// o(j, t) = sum_i A^T[j][i] s(i, t), for t < n.  alpha = 4 interpolates at 0, +-1 and infinity (F(2, 3)),
// alpha = 6 at 0, +-1, +-2 and infinity (F(4, 3) and F(2, 5)); G is in ops/reference.py (winograd_g).
template <size_t A>
struct WinogradInput;

template <>
struct WinogradInput<4> {
   template <typename D, typename O>
   static void input(D d, O o, size_t n)
   {
      for (size_t t = 0; t < n; ++t) {
         const float d0 = d(0, t), d1 = d(1, t), d2 = d(2, t), d3 = d(3, t);
         o(0, t) = d0 - d2;
         o(1, t) = d1 + d2;
         o(2, t) = d2 - d1;
         o(3, t) = d1 - d3;
      }
   }
};

template <>
struct WinogradInput<6> {
   template <typename D, typename O>
   static void input(D d, O o, size_t n)
   {
      for (size_t t = 0; t < n; ++t) {
         const float d0 = d(0, t), d1 = d(1, t), d2 = d(2, t), d3 = d(3, t), d4 = d(4, t), d5 = d(5, t);
         const float a = d4 - 4.f * d2, b = d3 - 4.f * d1; // shared by rows 1 and 2
         const float c = d4 - d2, e = 2.f * (d3 - d1);     // shared by rows 3 and 4
         o(0, t) = 4.f * d0 - 5.f * d2 + d4;
         o(1, t) = a + b;
         o(2, t) = a - b;
         o(3, t) = c + e;
         o(4, t) = c - e;
         o(5, t) = 4.f * d1 - 5.f * d3 + d5;
      }
   }
};

template <size_t M, size_t A>
struct WinogradOutput;

template <>
struct WinogradOutput<2, 4> {
   template <typename S, typename O>
   static void output(S s, O o, size_t n)
   {
      for (size_t t = 0; t < n; ++t) {
         const float s0 = s(0, t), s1 = s(1, t), s2 = s(2, t), s3 = s(3, t);
         o(0, t) = s0 + s1 + s2;
         o(1, t) = s1 - s2 - s3;
      }
   }
};

template <>
struct WinogradOutput<4, 6> {
   template <typename S, typename O>
   static void output(S s, O o, size_t n)
   {
      for (size_t t = 0; t < n; ++t) {
         const float s0 = s(0, t), s1 = s(1, t), s2 = s(2, t), s3 = s(3, t), s4 = s(4, t), s5 = s(5, t);
         const float p = s1 + s2, q = s1 - s2, r = s3 + s4, u = s3 - s4;
         o(0, t) = s0 + p + r;
         o(1, t) = q + 2.f * u;
         o(2, t) = p + 4.f * r;
         o(3, t) = q + 8.f * u + s5;
      }
   }
};

template <>
struct WinogradOutput<2, 6> {
   template <typename S, typename O>
   static void output(S s, O o, size_t n)
   {
      for (size_t t = 0; t < n; ++t) {
         const float s0 = s(0, t), s1 = s(1, t), s2 = s(2, t), s3 = s(3, t), s4 = s(4, t), s5 = s(5, t);
         o(0, t) = s0 + s1 + s2 + s3 + s4;
         o(1, t) = s1 - s2 + 2.f * (s3 - s4) + s5;
      }
   }
};

// V (alpha^2 x channels x tiles) for tile rows [ty0, ty1) of one image x (channels x height x width),
// tiles M apart.  Per chunk of one tile row: the alpha input rows are copied with their zero pads,
// transformed along y (contiguous), split by x phase (P_r[u] = z[M u + r]: tile t's value j is
// P_{j % M}[t + j / M]) and transformed along x.
template <size_t M, size_t A>
inline void winograd_input(const float *x, size_t channels, size_t height, size_t width, size_t pad_top,
                           size_t pad_left, size_t ty0, size_t ty1, size_t tiles_x, float *v)
{
   using W = WinogradInput<A>;
   constexpr size_t E = (A - 1) / M, L = M * (kWinogradChunk + E); // E: tiles a chunk's last tile reaches into
   const size_t tiles = (ty1 - ty0) * tiles_x;
   float lines[A][L], z[A][L], phase[M][kWinogradChunk + E], out[A][kWinogradChunk];
   for (size_t c = 0; c < channels; ++c) {
      const float *xc = x + c * height * width;
      for (size_t ty = ty0; ty < ty1; ++ty) {
         for (size_t t0 = 0; t0 < tiles_x; t0 += kWinogradChunk) {
            const size_t n = std::min(kWinogradChunk, tiles_x - t0), span = M * (n + E);
            const std::ptrdiff_t x0 = std::ptrdiff_t(M * t0) - std::ptrdiff_t(pad_left);
            const size_t lo = size_t(std::max<std::ptrdiff_t>(0, -x0));
            const size_t hi = size_t(std::max<std::ptrdiff_t>(lo, std::min<std::ptrdiff_t>(span, width - x0)));
            for (size_t r = 0; r < A; ++r) {
               const std::ptrdiff_t yy = std::ptrdiff_t(M * ty + r) - std::ptrdiff_t(pad_top);
               std::fill(lines[r], lines[r] + span, 0.f);
               if (yy >= 0 && size_t(yy) < height)
                  std::copy(xc + yy * width + x0 + lo, xc + yy * width + x0 + hi, lines[r] + lo);
            }
            W::input([&](size_t r, size_t i) { return lines[r][i]; }, [&](size_t k, size_t i) -> float & { return z[k][i]; },
                     span);
            for (size_t k = 0; k < A; ++k) {
               for (size_t t = 0; t < n + E; ++t)
                  for (size_t j = 0; j < M; ++j)
                     phase[j][t] = z[k][M * t + j];
               W::input([&](size_t j, size_t t) { return phase[j % M][t + j / M]; },
                        [&](size_t i, size_t t) -> float & { return out[i][t]; }, n);
               for (size_t i = 0; i < A; ++i)
                  std::copy(out[i], out[i] + n, v + ((k * A + i) * channels + c) * tiles + (ty - ty0) * tiles_x + t0);
            }
         }
      }
   }
}

// Tile rows [ty0, ty1) of one image y (features x height x width) = act(A^T M A + bias), M being alpha^2 x
// features x tiles.  Per chunk of one tile row: transformed along x, then y, then the x phases interleaved
// into whole output rows, to which bias and activation are applied.
template <size_t M, size_t A, typename F>
inline void winograd_output(const float *m, const float *bias, size_t features, size_t height, size_t width,
                            size_t ty0, size_t ty1, size_t tiles_x, float *y, F act)
{
   using W = WinogradOutput<M, A>;
   const size_t tiles = (ty1 - ty0) * tiles_x;
   float cols[A][M][kWinogradChunk], out[M][M][kWinogradChunk], line[M * kWinogradChunk];
   for (size_t f = 0; f < features; ++f) {
      const float b = bias ? bias[f] : 0.f;
      float *yf = y + f * height * width;
      for (size_t ty = ty0; ty < ty1; ++ty) {
         for (size_t t0 = 0; t0 < tiles_x; t0 += kWinogradChunk) {
            const size_t n = std::min(kWinogradChunk, tiles_x - t0), at = (ty - ty0) * tiles_x + t0;
            for (size_t k = 0; k < A; ++k)
               W::output([&](size_t i, size_t t) { return m[((k * A + i) * features + f) * tiles + at + t]; },
                         [&](size_t j, size_t t) -> float & { return cols[k][j][t]; }, n);
            for (size_t j = 0; j < M; ++j)
               W::output([&](size_t k, size_t t) { return cols[k][j][t]; },
                         [&](size_t l, size_t t) -> float & { return out[l][j][t]; }, n);
            const size_t columns = std::min(M * n, width - M * t0);
            for (size_t l = 0; l < M && M * ty + l < height; ++l) {
               for (size_t t = 0; t < n; ++t)
                  for (size_t j = 0; j < M; ++j)
                     line[M * t + j] = out[l][j][t];
               float *row = yf + (M * ty + l) * width + M * t0;
               for (size_t i = 0; i < columns; ++i)
                  row[i] = act(line[i] + b);
            }
         }
      }
   }
}

// y = act(conv(x, w) + bias) for NCHW x and an R x R kernel, with u the transformed weights (alpha^2 x
// features x channels).  The tiles go in blocks of block_rows tile rows (chosen by emitters/conv.py so that a
// block's V and M stay in cache), with scratch room for V (alpha^2 x channels x block tiles) followed by M
// (alpha^2 x features x block tiles).
template <size_t M, size_t R, typename F>
SOFIE_RDF_KERNEL void conv_winograd(const float *x, const float *u, const float *bias, float *y, float *scratch, size_t batch,
                          size_t channels, size_t features, const size_t *image, const size_t *grid,
                          const std::ptrdiff_t *pad, size_t block_rows, F act)
{
   constexpr size_t A = M + R - 1;
   const size_t height = image[1], width = image[2], out_h = grid[1], out_w = grid[2];
   const size_t tiles_y = (out_h + M - 1) / M, tiles_x = (out_w + M - 1) / M;
   float *v = scratch, *m = scratch + A * A * channels * block_rows * tiles_x;
   for (size_t n = 0; n < batch; ++n) {
      const float *xn = x + n * channels * height * width;
      float *yn = y + n * features * out_h * out_w;
      for (size_t ty0 = 0; ty0 < tiles_y; ty0 += block_rows) {
         const size_t ty1 = std::min(tiles_y, ty0 + block_rows), tiles = (ty1 - ty0) * tiles_x;
         winograd_input<M, A>(xn, channels, height, width, size_t(pad[1]), size_t(pad[2]), ty0, ty1, tiles_x, v);
         for (size_t xi = 0; xi < A * A; ++xi)
            gemm(false, false, features, tiles, channels, 1.f, u + xi * features * channels, v + xi * channels * tiles,
                 0.f, m + xi * features * tiles);
         winograd_output<M, A>(m, bias, features, out_h, out_w, ty0, ty1, tiles_x, yn, act);
      }
   }
}
