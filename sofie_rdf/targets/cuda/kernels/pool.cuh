// Max, average and Lp pooling, 1-D to 3-D and global: a thread per output value over its window (Window of
// conv.cuh). Average divides by the taps inside the image, or by the whole window with count_include_pad
// (padding past the image's end that ceil_mode adds never counts, as in onnxruntime).

enum class Pool { Max, Average, AverageIncludePad, L1, L2 };

template <typename T, int Rank, Pool Kind>
__global__ void pool_kernel(const T *x, T *y, size_t planes, Window<Rank> w)
{
   const size_t positions = grid_size(w), taps = window_size(w), image = image_size(w);
   const size_t total = planes * positions;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t plane = quotient(i, positions);
      const WindowOrigin<Rank> origin = window_origin(w, i - plane * positions);
      const T *xp = x + plane * image;
      T acc = Kind == Pool::Max ? std::numeric_limits<T>::lowest() : T(0);  // as onnxruntime where no tap is inside
      size_t inside = 0, padded = 0;
      TapWalk<Rank> walk{};
      for (size_t tap = 0; tap < taps; ++tap, walk.next(w)) {
         const long long offset = window_tap(w, origin, walk);
         if (offset < 0) {
            padded += window_in_padding(w, origin, walk);
            continue;
         }
         const T v = xp[offset];
         ++inside;
         if (Kind == Pool::Max)
            acc = v != v || acc < v ? v : acc;
         else if (Kind == Pool::L1)
            acc += std::abs(v);
         else if (Kind == Pool::L2)
            acc += v * v;
         else
            acc += v;
      }
      if (Kind == Pool::Average)
         acc /= T(inside > 0 ? inside : 1);
      else if (Kind == Pool::AverageIncludePad)
         acc /= T(inside + padded > 0 ? inside + padded : 1);
      else if (Kind == Pool::L2)
         acc = std::sqrt(acc);
      y[i] = acc;
   }
}

template <Pool Kind, typename T, int Rank>
void pool(const T *x, T *y, size_t planes, const Window<Rank> &w, cudaStream_t stream)
{
   const size_t total = planes * grid_size(w);
   if (total)
      pool_kernel<T, Rank, Kind><<<blocks_for(total), kThreads, 0, stream>>>(x, y, planes, w);
}
