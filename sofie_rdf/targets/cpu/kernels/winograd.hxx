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
// WinogradInput<alpha>::input gives o(i, t) = sum_j B^T[i][j] d(j, t) (d's values floats or float vectors),
// WinogradOutput<m, alpha>::output gives o(j, t) = sum_i A^T[j][i] s(i, t), for t < n.  alpha = 4 interpolates at
// 0, +-1 and infinity (F(2, 3)), alpha = 6 at 0, +-1, +-2 and infinity (F(4, 3) and F(2, 5)); G is in
// ops/reference.py (winograd_g).
// The loops over t tell GCC and clang that their outputs never overlap their inputs: where those are many
// pointers (conv_winograd_tiles' planes) they otherwise leave them scalar rather than emit as many run-time
// checks, and so did Cling.  Under Cling a turn takes two vectors: ROOT's register allocator loads every plane's
// pointer again at each turn (a 3x3 layer, 16 -> 16 channels on 16 pixels: 0.74x the time of scalar loops).
#if defined(__GNUC__) && !defined(__clang__)
#define SOFIE_RDF_IVDEP _Pragma("GCC ivdep")
#elif defined(__CLING__)
#define SOFIE_RDF_IVDEP _Pragma("clang loop vectorize(assume_safety) interleave_count(2)")
#else
#define SOFIE_RDF_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#endif

template <size_t A>
struct WinogradInput;

template <>
struct WinogradInput<4> {
   template <typename D, typename O>
   static void input(D d, O o, size_t n)
   {
      SOFIE_RDF_IVDEP
      for (size_t t = 0; t < n; ++t) {
         const auto d0 = d(0, t), d1 = d(1, t), d2 = d(2, t), d3 = d(3, t);
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
      SOFIE_RDF_IVDEP
      for (size_t t = 0; t < n; ++t) {
         const auto d0 = d(0, t), d1 = d(1, t), d2 = d(2, t), d3 = d(3, t), d4 = d(4, t), d5 = d(5, t);
         const auto a = d4 - 4.f * d2, b = d3 - 4.f * d1; // shared by rows 1 and 2
         const auto c = d4 - d2, e = 2.f * (d3 - d1);     // shared by rows 3 and 4
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
      SOFIE_RDF_IVDEP
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
      SOFIE_RDF_IVDEP
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
      SOFIE_RDF_IVDEP
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
            const size_t n = detail::min_of(kWinogradChunk, tiles_x - t0), span = M * (n + E);
            const std::ptrdiff_t x0 = std::ptrdiff_t(M * t0) - std::ptrdiff_t(pad_left);
            const size_t lo = size_t(detail::max_of<std::ptrdiff_t>(0, -x0));
            const size_t hi = size_t(detail::max_of<std::ptrdiff_t>(lo, detail::min_of<std::ptrdiff_t>(span, width - x0)));
            for (size_t r = 0; r < A; ++r) {
               const std::ptrdiff_t yy = std::ptrdiff_t(M * ty + r) - std::ptrdiff_t(pad_top);
               detail::fill(lines[r], lines[r] + span, 0.f);
               if (yy >= 0 && size_t(yy) < height)
                  detail::copy(xc + yy * width + x0 + lo, xc + yy * width + x0 + hi, lines[r] + lo);
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
                  detail::copy(out[i], out[i] + n, v + ((k * A + i) * channels + c) * tiles + (ty - ty0) * tiles_x + t0);
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
            const size_t n = detail::min_of(kWinogradChunk, tiles_x - t0), at = (ty - ty0) * tiles_x + t0;
            for (size_t k = 0; k < A; ++k)
               W::output([&](size_t i, size_t t) { return m[((k * A + i) * features + f) * tiles + at + t]; },
                         [&](size_t j, size_t t) -> float & { return cols[k][j][t]; }, n);
            for (size_t j = 0; j < M; ++j)
               W::output([&](size_t k, size_t t) { return cols[k][j][t]; },
                         [&](size_t l, size_t t) -> float & { return out[l][j][t]; }, n);
            const size_t columns = detail::min_of(M * n, width - M * t0);
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
         const size_t ty1 = detail::min_of(tiles_y, ty0 + block_rows), tiles = (ty1 - ty0) * tiles_x;
         winograd_input<M, A>(xn, channels, height, width, size_t(pad[1]), size_t(pad[2]), ty0, ty1, tiles_x, v);
         for (size_t xi = 0; xi < A * A; ++xi)
            gemm(false, false, features, tiles, channels, 1.f, u + xi * features * channels, v + xi * channels * tiles,
                 0.f, m + xi * features * tiles);
         winograd_output<M, A>(m, bias, features, out_h, out_w, ty0, ty1, tiles_x, yn, act);
      }
   }
}

// ---- whole images in register tiles ------------------------------------------------------------------------
//
// conv_winograd_tiles: Winograd for native code on calorimeter-sized images (8 to 48 pixels), where
// conv_winograd's products (one BLAS call per tile position, a few dozen tiles wide) and transforms (rows of a
// few tiles) cost more than they save.  Every step runs over whole planes of the image's tiles:
//   1. each channel's zero-padded image, its rows stored by row phase (padded row r at (r % M) * rows + r / M),
//      is split by column phase in one pass (split_phases in simd.hxx: vector shuffles), which gives
//      the planes P[a][b][u][v] = xpad[M u + a][M v + b], rows x S (S = Tx + E: a tile reads E tiles on);
//   2. the input transform along y, then along x, each over a whole plane of tiles: tile (ty, tx) at ty * S + tx,
//      so that reading the next tile in x is reading the next float (the E columns tx >= Tx are not tiles:
//      their values are computed and dropped);
//   3. the alpha^2 products M_xi = U_xi V_xi in conv_shifted_tile's register tiles (Rows features x Vectors
//      vectors of tiles over the channels), U stored at generation time per xi in blocks of
//      Rows features (emitters/conv.py: pack_winograd_tiles);
//   4. the output transform over whole planes (those of a few features at once on small images), bias and
//      activation as its last pass stores, the maxima of 2 x 2 windows where a MaxPool follows (winograd_pool),
//      and the M x M outputs of each tile (or M / 2 x M / 2 maxima) interleaved into the output rows
//      (ColumnPhases again).
// Measured on a Xeon (AVX-512) against conv_rows, batch 1: 0.75x its time for 32 -> 32 channels on 16 pixels
// (F(2, 3)), 0.70x on 24 and 0.50x on 32 (F(4, 3)), 0.95x for 16 -> 16 on 16; on 8 pixels (rows of 4 tiles
// without their extra column, see WinogradTiles) 0.71x for 64 -> 64, 0.94x for 32 -> 32.

// Floats rounded up to whole 64-byte lines.
constexpr size_t winograd_lines(size_t floats)
{
   return (floats + 15) / 16 * 16;
}

// Tiles rounded up to whole 4-float vectors, the narrowest merge_phases interleaves.
constexpr size_t winograd_quads(size_t tiles)
{
   return (tiles + 3) / 4 * 4;
}

// The planes of conv_winograd_tiles for one layer, carved out of its scratch (sized by emitters/conv.py:
// winograd_tiles_floats, which mirrors this).  Matrices of V and M are a line longer than their contents:
// strides of a multiple of 4 KB make every plane's loads wait on the stores to the others (4K aliasing: 64 -> 64
// channels on 8 pixels ran 1.4x slower).
// Rows of 4 or 8 tiles (16- and 32-pixel images in F(4, 3), 8 and 16 in F(2, 3)) are stored in V and M without
// the column past them (winograd_packed): a plane of 4 x 5 tiles would fill 2 AVX-512 vectors with 16 tiles, where
// 4 x 4 fill one, and 8 x 9 five where 8 x 8 fill four.  The input transform along x then packs its rows as it
// loads them (winograd_input_packed).  The choice is the emitter's as well (emitters/conv.py:
// WINOGRAD_TILES_PACKED), the same for every instruction set the header may be built for.
constexpr size_t kWinogradPackedNarrow = 4, kWinogradPackedWide = 8;

constexpr bool winograd_packed(size_t tx)
{
   return tx == kWinogradPackedNarrow || tx == kWinogradPackedWide;
}
// The transforms run over whole 64-byte lines of their planes: a loop's remainder, at planes of a few dozen tiles,
// cost as much as its vectors (64 -> 64 channels on 8 pixels: 13% of the layer).  The last lines read this many
// floats past the phase planes and past z, zeros (emitters/conv.py: WINOGRAD_TILES_SLACK).
constexpr size_t kWinogradSlack = 32;
// The output transform takes the planes of several features in one pass (M_xi's rows are features, each qp
// tiles long, one after another): on planes of 16 tiles (16-pixel images in F(4, 3), 8-pixel ones in F(2, 3)),
// a pass per feature spent more on its loops than on its arithmetic.  A pass covers at least this many floats
// (emitters/conv.py: WINOGRAD_TILES_GROUP), still in L1 with its intermediate planes.
constexpr size_t kWinogradGroupFloats = 64;

// Features one output pass takes: whole planes of at least kWinogradGroupFloats floats, at most all features.
constexpr size_t winograd_group(size_t features, size_t qp)
{
   return detail::max_of<size_t>(1, detail::min_of(features, kWinogradGroupFloats / qp));
}

struct WinogradTiles {
   size_t ty, tx, rows, s, w, qs, q, qp, padded, vs, ms, group, gs;
   float *phases, *z, *v, *m, *cols, *out, *line, *biases;

   WinogradTiles(size_t m_, size_t e, size_t alpha, size_t width, size_t channels, size_t features,
                 const size_t *grid, float *scratch)
      : ty((grid[1] + m_ - 1) / m_), tx((grid[2] + m_ - 1) / m_), rows(ty + e), s(tx + e),
        w(winograd_packed(tx) ? tx : s), qs(ty * s), q(ty * w), qp((q + width - 1) / width * width),
        padded(m_ * rows * m_ * s), vs(channels * qp + 16), ms(features * qp + 16),
        group(winograd_group(features, qp)), gs(group * qp)
   {
      phases = scratch;
      z = phases + winograd_lines(padded) + kWinogradSlack;
      v = z + alpha * m_ * winograd_lines(qs + e) + kWinogradSlack;
      m = v + alpha * alpha * vs; // also a channel's padded image, until the products
      cols = m + winograd_lines(detail::max_of(alpha * alpha * ms, padded));
      out = cols + alpha * m_ * gs; // cols and out: planes of a group of features, gs floats apart
      line = out + m_ * m_ * gs;
      biases = line + winograd_lines(m_ * winograd_quads(tx)); // a group's bias per tile: gs floats
   }
   bool compact() const { return w == tx; }
};

// One channel's image into its zero-padded copy xq ((M rows) x (M s)), rows stored by row phase: the image's
// places only, the padding being zeros stored before the first channel (each channel's image lies at the same
// places; zeroing the whole copy for every channel took 9% of a 16 -> 16 layer on 32 pixels).
template <size_t M>
inline void winograd_pad(const float *x, const size_t *image, const std::ptrdiff_t *pad, const WinogradTiles &t,
                         float *xq)
{
   const size_t wp = M * t.s, hp = M * t.rows, top = size_t(pad[1]), left = size_t(pad[2]);
   const size_t n = detail::min_of(image[2], wp - detail::min_of(wp, left));
   for (size_t h = 0; h < image[1] && h + top < hp; ++h) {
      const size_t r = h + top;
      act_copy(x + h * image[2], xq + ((r % M) * t.rows + r / M) * wp + left, n, Identity{});
   }
}

// A transform's output place that stores act(value + bias): the last pass of the output transform writes the
// layer's values in the one store it makes anyway.
template <typename F>
struct Activated {
   float &place;
   float bias;
   const F &act;
   void operator=(float value) const { place = act(value + bias); }
};

// winograd_store for packed planes (WinogradTiles::compact) of W tiles a row whose output rows are whole vectors,
// M * W floats (16- and 32-pixel images in F(4, 3)): the tiles of the L / W tile rows in a vector interleaved in one
// merge of M vectors, its output rows stored where they go (rows past out_h into the line).  Rows of tiles had
// taken a merge of 4-float vectors each: 0.9x the time of a 32 -> 32 layer on 16 pixels, on a Xeon (AVX-512).
// The last vector takes the tile rows before the end, some stored twice.
template <size_t M, size_t W>
inline void winograd_store_packed(const WinogradTiles &t, const float *o, float *y, size_t out_h)
{
   constexpr size_t L = kVFloatLanes, R = L / W, C = M * W / L; // C: vectors a row
   for (size_t ty = 0; ty < t.ty; ty += R) {
      const size_t t0 = detail::min_of(ty, t.ty - R);
      for (size_t l = 0; l < M; ++l) {
         vfloat in[M];
         for (size_t j = 0; j < M; ++j)
            in[j] = vload(o + (l * M + j) * t.gs + W * t0);
         ColumnPhases<M, vfloat>::merge(in, [&](size_t i) {
            const size_t row = M * (t0 + i / C) + l;
            return row < out_h ? y + row * M * W + i % C * L : t.line;
         });
      }
   }
}

// winograd_store_packed where it serves: packed rows of W tiles, output rows of whole vectors, at least a vector's
// tile rows.  Returns whether it stored the rows.
template <size_t M, size_t W>
inline bool winograd_store_rows(const WinogradTiles &t, const float *o, float *y, size_t out_h, size_t out_w)
{
   constexpr size_t L = kVFloatLanes;
   if constexpr (L % W == 0 && M * W % L == 0)
      if (t.compact() && t.tx == W && out_w == M * W && t.ty >= L / W) {
         winograd_store_packed<M, W>(t, o, y, out_h);
         return true;
      }
   return false;
}

// One feature's output y (out_h x out_w) from o, its M x M output planes (gs floats apart) of qp tiles: the
// M x M values of each tile (M / 2 x M / 2 after winograd_pool) interleaved into the output rows.  A row of
// tiles that is no whole number of vectors (6 tiles: 24-pixel images in F(4, 3)) is interleaved whole vectors at
// a time, reading tiles past it (the next row's, or scratch), and its values past the row written into the rows
// after it, which are stored later (this feature's, the next feature's or the next image's: the layer's output is
// written in order, by one thread).  Only where those values would run past `end`, the end of the layer's output,
// does the row go through the line and a copy: for every row, the copies and their calls took 13% of a 32 -> 32
// layer on 12 pixels, F(2, 3), and a sixth of a small ResNet (batch 4, 24 pixels) on a Xeon.
template <size_t M>
inline void winograd_store(const WinogradTiles &t, const float *o, float *y, size_t out_h, size_t out_w,
                           const float *end)
{
   if (winograd_store_rows<M, kWinogradPackedNarrow>(t, o, y, out_h, out_w) ||
       winograd_store_rows<M, kWinogradPackedWide>(t, o, y, out_h, out_w))
      return;
   const size_t n = winograd_quads(t.tx);
   for (size_t ty = 0; ty < t.ty; ++ty)
      for (size_t l = 0; l < M && M * ty + l < out_h; ++l) {
         const float *src[M];
         for (size_t j = 0; j < M; ++j)
            src[j] = o + (l * M + j) * t.gs + ty * t.w;
         float *row = y + (M * ty + l) * out_w;
         if (size_t(end - row) >= M * n) {
            merge_phases<M>(src, row, n);
         } else {
            merge_phases<M>(src, t.line, n);
            detail::copy(t.line, t.line + out_w, row);
         }
      }
}

// The maxima of 2 x 2 output windows (MaxPool after the layer: FusedConv's pool_window) in place of the tiles'
// M x M output planes o (gs floats apart): the (M / 2) x (M / 2) planes of their maxima, first in o, in order.  A
// window's values lie in one tile, M being even, at equal places of four planes; each plane this writes over has
// been read before.  In vectors written out: Cling (ROOT's -O1) vectorizes no loop, and this one ran scalar there
// (3.5% of a calorimeter CNN's time).
template <size_t M>
inline void winograd_pool(const WinogradTiles &t, float *o)
{
   static_assert(M % 2 == 0, "tiles of whole windows");
   constexpr size_t P = M / 2, L = kVFloatLanes;
   for (size_t l = 0; l < P; ++l)
      for (size_t j = 0; j < P; ++j) {
         const float *a = o + (2 * l * M + 2 * j) * t.gs, *b = a + t.gs, *c = a + M * t.gs, *d = c + t.gs;
         float *p = o + (l * P + j) * t.gs;
         size_t q = 0;
         for (; q + L <= t.qp; q += L) // MaxPool's order: the window's values row by row (vmax: a > b ? a : b)
            vstore(p + q, vmax(vmax(vload(d + q), vload(c + q)), vmax(vload(b + q), vload(a + q))));
         for (; q < t.qp; ++q) {
            const float ab = b[q] > a[q] ? b[q] : a[q], cd = d[q] > c[q] ? d[q] : c[q];
            p[q] = cd > ab ? cd : ab;
         }
      }
}

// A place in memory for a float vector: a transform's output stored as it is computed.
struct VectorPlace {
   float *place;
   void operator=(vfloat value) const { vstore(place, value); }
};

// One channel's V (planes k * A + l, vs floats apart, from v) along x from z (planes k * M + b, zs floats apart:
// rows of W tiles and the one past them) for planes packed without that column (WinogradTiles::compact): each
// vector's rows packed in registers as they are loaded, its value for tile t + 1 in the same permute as for t.
// Against the transform over the planes as z has them and a copy of each row (four floats) into V: 0.9x the time
// of a 32 -> 32 layer on 16 pixels, F(4, 3), on a Xeon (AVX-512); the copies' loads waited on the transform's
// stores.  A vector takes R = L / W rows (or, rows wider than it, a part of one: P floats), the last one the rows
// before the end (or, of fewer rows, values past them: dropped), reading up to 2 L - W - 1 floats past a plane's
// rows (the next plane's, or the zeros past z: kWinogradSlack).
template <size_t M, size_t A, size_t W>
inline void winograd_input_packed(const float *z, size_t zs, size_t rows, float *v, size_t vs)
{
   using In = WinogradInput<A>;
   constexpr size_t S = W + 1, L = kVFloatLanes, P = detail::min_of(W, L), R = L / P;
   static_assert((A - 1) / M == 1 && L % P == 0 && W % P == 0, "tiles reading one tile on, whole rows per vector");
   constexpr auto lanes = std::make_index_sequence<L>{};
   for (size_t k = 0; k < A; ++k)
      for (size_t r = 0; r < rows; r += R) {
         const size_t r0 = detail::min_of(r, rows > R ? rows - R : 0);
         for (size_t part = 0; part < W; part += P)
            In::input(
               [&](size_t j, size_t) {
                  const float *p = z + (k * M + j % M) * zs + S * r0 + part;
                  const vfloat a = vload(p), b = vload(p + L);
                  return j / M ? vpack_rows<P, S, 1>(a, b, lanes) : vpack_rows<P, S, 0>(a, b, lanes);
               },
               [&](size_t l, size_t) { return VectorPlace{v + (k * A + l) * vs + W * r0 + part}; }, 1);
      }
}

// Features [f, f + rows) of M_xi over the padded tile plane, rows <= Rows.
template <size_t Rows, size_t Vectors>
inline void winograd_tile_products(size_t rows, size_t channels, const float *v, const float *u, float *m,
                                   size_t qp)
{
   if constexpr (Rows > 1) {
      if (rows < Rows) {
         winograd_tile_products<Rows - 1, Vectors>(rows, channels, v, u, m, qp);
         return;
      }
   }
   for (size_t q = 0; q < qp; q += Vectors * kSimdLanes)
      conv_shifted_tile<Rows, Vectors>(StridedSteps{std::ptrdiff_t(qp)}, channels, v + q, u, nullptr, nullptr, 0,
                                       m + q, qp);
}

// y = act(conv(x, w) + bias) for NCHW x, an R x R kernel, stride 1, as Winograd F(M x M, R x R) over whole
// images (see above); u: the transformed weights, per tile position xi in blocks of Rows features.  pooled: y is
// the maxima of that output's 2 x 2 windows, stride 2 (FusedConv's pool_window; an odd side's last row or column
// dropped).
template <size_t M, size_t R, size_t Rows, size_t Vectors, typename F>
SOFIE_RDF_KERNEL SOFIE_RDF_WIDE void conv_winograd_tiles(const float *x, const float *u, const float *bias, float *y, float *scratch,
                                          size_t batch, size_t channels, size_t features, const size_t *image,
                                          const size_t *grid, const std::ptrdiff_t *pad, bool pooled, F act)
{
   constexpr size_t A = M + R - 1, E = (A - 1) / M;
   using In = WinogradInput<A>;
   using Out = WinogradOutput<M, A>;
   const WinogradTiles t(M, E, A, Vectors * kSimdLanes, channels, features, grid, scratch);
   const size_t zs = winograd_lines(t.qs + E), plane = t.rows * t.s;
   const size_t out_h = grid[1], out_w = grid[2], nx = detail::min_of(winograd_lines(t.qs), t.qp);
   const float *const end = y + batch * features * (pooled ? (out_h / 2) * (out_w / 2) : out_h * out_w);
   detail::fill(t.phases + t.padded, t.z, 0.0f);
   detail::fill(t.z + A * M * zs, t.v, 0.0f);
   // V's columns past the plane: those the transform along x writes (up to nx, or a vector in packed planes of
   // fewer tiles) hold the values of tiles past it, from the zero slack and the next rows' phases, computed and
   // dropped like the E columns; the others are zeros, stored once per call (per channel, 16 calls of a few stores
   // took 7% of a 32 -> 32 layer on 12 pixels).  Planes of whole vectors have none: under Cling the loops alone, 36 x
   // 16 turns with nothing to store, took a tenth of a 16 -> 16 layer on 16 pixels.
   const size_t written = t.compact() ? t.q : nx;
   if (written < t.qp)
      for (size_t xi = 0; xi < A * A; ++xi)
         for (size_t c = 0; c < channels; ++c)
            zero_columns(t.v + xi * t.vs + c * t.qp, written, t.qp);
   for (size_t n = 0; n < batch; ++n) {
      zero_floats(t.m, t.padded); // the padding of the channels' copies (the products then write over them)
      for (size_t c = 0; c < channels; ++c) {
         // one channel at a time: its padded image (a few KB) stays in L1 for the split
         winograd_pad<M>(x + (n * channels + c) * image[1] * image[2], image, pad, t, t.m);
         float *split[M]; // column phase b: planes [b][a], rows x s
         for (size_t b = 0; b < M; ++b)
            split[b] = t.phases + b * M * plane;
         split_phases<M>(t.m, split, M * plane);
         for (size_t b = 0; b < M; ++b) // along y: z[k][b] = sum_i B^T[k][i] P[i % M][b], i / M rows down
            In::input([&](size_t i, size_t q) { return t.phases[(b * M + i % M) * plane + i / M * t.s + q]; },
                      [&](size_t k, size_t q) -> float & { return t.z[(k * M + b) * zs + q]; }, zs);
         if (t.compact()) {
            if (t.tx == kWinogradPackedWide)
               winograd_input_packed<M, A, kWinogradPackedWide>(t.z, zs, t.ty, t.v + c * t.qp, t.vs);
            else
               winograd_input_packed<M, A, kWinogradPackedNarrow>(t.z, zs, t.ty, t.v + c * t.qp, t.vs);
            continue;
         }
         for (size_t k = 0; k < A; ++k) // along x: V[k][l] = sum_j B^T[l][j] z[k][j % M], j / M tiles on
            In::input([&](size_t j, size_t q) { return t.z[(k * M + j % M) * zs + j / M + q]; },
                      [&](size_t l, size_t q) -> float & { return t.v[(k * A + l) * t.vs + c * t.qp + q]; }, nx);
      }
      for (size_t xi = 0; xi < A * A; ++xi)
         for (size_t f = 0; f < features; f += Rows)
            winograd_tile_products<Rows, Vectors>(detail::min_of(Rows, features - f), channels, t.v + xi * t.vs,
                                                  u + (xi * features + f) * channels, t.m + xi * t.ms + f * t.qp, t.qp);
      for (size_t f0 = 0; f0 < features; f0 += t.group) {
         const size_t g = detail::min_of(t.group, features - f0), span = g * t.qp;
         for (size_t k = 0; k < A; ++k)
            Out::output([&](size_t i, size_t q) { return t.m[(k * A + i) * t.ms + f0 * t.qp + q]; },
                        [&](size_t j, size_t q) -> float & { return t.cols[(k * M + j) * t.gs + q]; }, span);
         for (size_t f = f0; f < f0 + g; ++f)
            detail::fill(t.biases + (f - f0) * t.qp, t.biases + (f - f0 + 1) * t.qp, bias ? bias[f] : 0.0f);
         for (size_t j = 0; j < M; ++j) // the last pass: bias and activation as its values are stored
            Out::output([&](size_t k, size_t q) { return t.cols[(k * M + j) * t.gs + q]; },
                        [&](size_t l, size_t q) {
                           return Activated<F>{t.out[(l * M + j) * t.gs + q], t.biases[q], act};
                        },
                        span);
         for (size_t f = f0; f < f0 + g; ++f) {
            float *o = t.out + (f - f0) * t.qp;
            if (pooled) { // y: (out_h / 2) x (out_w / 2) per feature
               winograd_pool<M>(t, o);
               winograd_store<M / 2>(t, o, y + (n * features + f) * (out_h / 2) * (out_w / 2), out_h / 2, out_w / 2,
                                     end);
            } else {
               winograd_store<M>(t, o, y + (n * features + f) * out_h * out_w, out_h, out_w, end);
            }
         }
      }
   }
}
