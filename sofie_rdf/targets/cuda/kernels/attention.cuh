// Attention (ONNX opsets 23-25, without a KV cache) as one kernel, flash-attention style: a block per (batch, head,
// tile of kQueryTile queries) walks the keys in tiles of kKeyTile, keeps each query's running maximum and sum, and
// adds the tile's probabilities times V into the output rows, rescaled as the maximum grows. The scores of one tile
// live in shared memory: no tensor of the batch's scores is ever written. Q, K and V are read in chunks of
// kHeadChunk of the head, so any head size runs. Grouped-query heads, a bool or additive mask broadcast over
// (batch, head, query), the causal frontier and the sliding window apply to each score as it is made; a query
// whose keys are all masked gets zeros, as the operator defines.

constexpr unsigned kQueryTile = 32;
constexpr unsigned kKeyTile = 32;
constexpr unsigned kHeadChunk = 32;
constexpr unsigned kAttentionThreads = 128;

// Element strides of an operand's (batch, head, row) axes; its head's columns are contiguous. The 3-D packed
// layout (batch, sequence, heads * head) is a view with head stride `head` and row stride `heads * head`.
struct HeadStrides {
   size_t batch, head, row;
};

// One Attention node's operands and sizes (by value to the kernel).
template <typename T, typename M>
struct AttentionArgs {
   const T *q, *k, *v;
   T *y;
   HeadStrides q_at, k_at, v_at, y_at;
   size_t batch, q_heads, kv_heads, q_len, kv_len, head_qk, head_v;
   T scale;
   const M *mask;            // null: none; bool: attend or not; numbers: added to the scaled scores
   size_t mask_at[3];        // the mask's strides over (batch, head, query); its keys are contiguous
   size_t mask_len;          // keys the mask covers: later ones are masked out
   bool causal;              // key j attends query i only for j <= i
   long long left, right;    // sliding window (-1: unbounded): i - j <= left, j - i <= right
};

// The scaled score of query i and key j with the mask applied: -inf where the key is not attended.
template <typename T, typename M>
__device__ T masked_score(const AttentionArgs<T, M> &a, const M *mask_row, size_t i, size_t j, T score)
{
   const T none = -std::numeric_limits<T>::infinity();
   const long long gap = static_cast<long long>(i) - static_cast<long long>(j);
   if ((a.causal && gap < 0) || (a.left >= 0 && gap > a.left) || (a.right >= 0 && -gap > a.right))
      return none;
   if (!mask_row)
      return score;
   if (j >= a.mask_len)
      return none;
   if constexpr (std::is_same<M, bool>::value)
      return mask_row[j] ? score : none;
   else
      return score + static_cast<T>(mask_row[j]);
}

template <typename T, typename M>
__global__ void attention_kernel(AttentionArgs<T, M> a)
{
   __shared__ T queries[kQueryTile][kHeadChunk + 1];  // +1: a warp reading a column hits distinct banks
   __shared__ T keys[kKeyTile][kHeadChunk + 1];        // a chunk of the tile's keys, then of its values
   __shared__ T scores[kQueryTile][kKeyTile + 1];      // the tile's scores, then its probabilities
   __shared__ T row_max[kQueryTile], row_sum[kQueryTile], rescale[kQueryTile];
   const T none = -std::numeric_limits<T>::infinity();
   const size_t query_tiles = (a.q_len + kQueryTile - 1) / kQueryTile;
   const size_t tiles = a.batch * a.q_heads * query_tiles, group = a.q_heads / a.kv_heads;
   for (size_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const size_t first = tile % query_tiles * kQueryTile, head = tile / query_tiles % a.q_heads;
      const size_t b = tile / query_tiles / a.q_heads, kv_head = head / group;
      const size_t rows = a.q_len - first < kQueryTile ? a.q_len - first : kQueryTile;
      const T *q = a.q + b * a.q_at.batch + head * a.q_at.head + first * a.q_at.row;
      const T *k = a.k + b * a.k_at.batch + kv_head * a.k_at.head;
      const T *v = a.v + b * a.v_at.batch + kv_head * a.v_at.head;
      T *y = a.y + b * a.y_at.batch + head * a.y_at.head + first * a.y_at.row;
      for (size_t r = threadIdx.x; r < kQueryTile; r += blockDim.x) {
         row_max[r] = none;
         row_sum[r] = T(0);
      }
      for (size_t e = threadIdx.x; e < rows * a.head_v; e += blockDim.x)
         y[e / a.head_v * a.y_at.row + e % a.head_v] = T(0);
      for (size_t key0 = 0; key0 < a.kv_len; key0 += kKeyTile) {
         const size_t count = a.kv_len - key0 < kKeyTile ? a.kv_len - key0 : kKeyTile;
         for (size_t e = threadIdx.x; e < kQueryTile * kKeyTile; e += blockDim.x)
            scores[e / kKeyTile][e % kKeyTile] = T(0);
         // scores = Q K^T, a chunk of the head at a time
         for (size_t d0 = 0; d0 < a.head_qk; d0 += kHeadChunk) {
            const size_t width = a.head_qk - d0 < kHeadChunk ? a.head_qk - d0 : kHeadChunk;
            __syncthreads();
            for (size_t e = threadIdx.x; e < rows * width; e += blockDim.x)
               queries[e / width][e % width] = q[e / width * a.q_at.row + d0 + e % width];
            for (size_t e = threadIdx.x; e < count * width; e += blockDim.x)
               keys[e / width][e % width] = k[(key0 + e / width) * a.k_at.row + d0 + e % width];
            __syncthreads();
            for (size_t e = threadIdx.x; e < rows * count; e += blockDim.x) {
               const size_t r = e / count, c = e % count;
               T dot = T(0);
               for (size_t d = 0; d < width; ++d)
                  dot += queries[r][d] * keys[c][d];
               scores[r][c] += dot;
            }
         }
         __syncthreads();
         // each query's running maximum and sum: the tile's probabilities, and how much the rows so far shrink
         for (size_t r = threadIdx.x; r < rows; r += blockDim.x) {
            const size_t i = first + r;
            const M *mask_row = a.mask ? a.mask + b * a.mask_at[0] + head * a.mask_at[1] + i * a.mask_at[2] : nullptr;
            T top = row_max[r];
            for (size_t c = 0; c < count; ++c) {
               const T s = masked_score(a, mask_row, i, key0 + c, scores[r][c] * a.scale);
               scores[r][c] = s;
               top = s > top ? s : top;
            }
            T sum = T(0);
            for (size_t c = 0; c < count; ++c) {
               const T p = scores[r][c] == none ? T(0) : std::exp(scores[r][c] - top);
               scores[r][c] = p;
               sum += p;
            }
            const T factor = top == none ? T(1) : std::exp(row_max[r] - top);
            row_sum[r] = row_sum[r] * factor + sum;
            row_max[r] = top;
            rescale[r] = factor;
         }
         // Y = Y * rescale + P V, a chunk of the head at a time
         for (size_t d0 = 0; d0 < a.head_v; d0 += kHeadChunk) {
            const size_t width = a.head_v - d0 < kHeadChunk ? a.head_v - d0 : kHeadChunk;
            __syncthreads();
            for (size_t e = threadIdx.x; e < count * width; e += blockDim.x)
               keys[e / width][e % width] = v[(key0 + e / width) * a.v_at.row + d0 + e % width];
            __syncthreads();
            for (size_t e = threadIdx.x; e < rows * width; e += blockDim.x) {
               const size_t r = e / width, d = e % width;
               T acc = T(0);
               for (size_t c = 0; c < count; ++c)
                  acc += scores[r][c] * keys[c][d];
               T &out = y[r * a.y_at.row + d0 + d];
               out = out * rescale[r] + acc;
            }
         }
         __syncthreads();
      }
      for (size_t e = threadIdx.x; e < rows * a.head_v; e += blockDim.x) {
         const size_t r = e / a.head_v;
         T &out = y[r * a.y_at.row + e % a.head_v];
         out = row_sum[r] > T(0) ? out / row_sum[r] : T(0);
      }
      __syncthreads();  // the next tile resets the row statistics
   }
}

template <typename T, typename M>
void attention(const AttentionArgs<T, M> &a, cudaStream_t stream)
{
   const size_t tiles = a.batch * a.q_heads * ((a.q_len + kQueryTile - 1) / kQueryTile);
   if (tiles == 0 || a.head_v == 0)
      return;
   attention_kernel<T, M><<<row_blocks(tiles), kAttentionThreads, 0, stream>>>(a);
}
