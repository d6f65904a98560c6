// EdgeConv blocks (ParticleNet's): the edges of a block of points gathered, run through 1x1 layers and pooled
// over the neighbours while they are in cache (conv_pointwise's register tiles, indexing.hxx's checked indices).

// One 1x1 layer of edge_conv_chain: y = act(W x + bias) over a block's edges, W in conv_pointwise's panels.
template <typename F>
struct PointwiseLayer {
   const float *w;
   const float *bias; // may be null
   size_t channels, features;
   F act;
};

template <typename F>
inline PointwiseLayer<F> pointwise_layer(const float *w, const float *bias, size_t channels, size_t features, F act)
{
   return PointwiseLayer<F>{w, bias, channels, features, act};
}

// How edge_conv_chain pools a point's K edges.
enum class EdgePool { Mean, Max, Sum };

// EdgeConvChain (ops/fused.py): per image, blocks of `block` points: their edges gathered as NeighbourGather
// gathers them (act(base[c][q] + x at index idx[q][k] + n * P of the (C, N * P) view)) into scratch, run through
// the layers there, each a conv_pointwise over the block's edges (positions = points x K), and pooled over K into
// y[n][f][q].  The edges of a block stay in cache from the gather to the pooling: the (N, F, P, K) tensors of the
// exported layers, far beyond the cache for a batch of jets, are never stored.
// Scratch: two planes of `widest` channels x block * K edges, then conv_pointwise's columns (widest x
// kPointwiseScratchWidth); `offsets` holds an image's P * K offsets into x.
template <typename I, typename G, typename... L>
SOFIE_RDF_KERNEL void edge_conv_chain(const float *x, const I *idx, const float *base, float *y, float *scratch,
                                      std::uint64_t *offsets, size_t batch, size_t channels, size_t points, size_t k,
                                      size_t block, size_t widest, EdgePool pool, G gather_act, L... layers)
{
   const size_t total = batch * points, plane = widest * block * k;
   float *columns = scratch + 2 * plane;
   size_t features = channels;
   ((features = layers.features), ...);
   for (size_t n = 0; n < batch; ++n) {
      for (size_t j = 0; j < points * k; ++j) {
         const size_t f = checked_index(static_cast<int64_t>(idx[n * points * k + j]) + static_cast<int64_t>(n * points),
                                        total, "EdgeConvChain");
         offsets[j] = f / points * channels * points + f % points;
      }
      for (size_t q0 = 0; q0 < points; q0 += block) {
         const size_t count = detail::min_of(block, points - q0), edges = count * k;
         float *in = scratch, *out = scratch + plane;
         for (size_t c = 0; c < channels; ++c) {
            const float *xc = x + c * points, *b = base ? base + (n * channels + c) * points + q0 : nullptr;
            const std::uint64_t *off = offsets + q0 * k;
            float *row = in + c * edges;
            for (size_t q = 0; q < count; ++q)
               for (size_t j = q * k; j < (q + 1) * k; ++j)
                  row[j] = gather_act(b ? b[q] + xc[off[j]] : xc[off[j]]);
         }
         (..., (conv_pointwise(in, layers.w, layers.bias, out, columns, 1, layers.channels, layers.features, edges,
                               layers.act),
                std::swap(in, out)));
         for (size_t f = 0; f < features; ++f) {
            const float *row = in + f * edges;
            float *dst = y + (n * features + f) * points + q0;
            for (size_t q = 0; q < count; ++q) {
               const float *e = row + q * k;
               float acc = pool == EdgePool::Max ? e[0] : 0.0f;
               for (size_t j = 0; j < k; ++j)
                  acc = pool == EdgePool::Max ? detail::max_of(acc, e[j]) : acc + e[j];
               dst[q] = pool == EdgePool::Mean ? acc / static_cast<float>(k) : acc;
            }
         }
      }
   }
}
