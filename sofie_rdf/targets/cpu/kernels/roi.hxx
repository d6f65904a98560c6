// RoiAlign: each RoI (x1, y1, x2, y2), scaled by spatial_scale and shifted by -offset (0.5 for half_pixel),
// is cut into out_h x out_w bins; every bin averages (or takes the max of) a grid of bilinear samples.
// Samples are computed once per bin and applied to every channel (the weights do not depend on it).

// Bilinear taps of one sample: flat positions and weights (all 0 outside [-1, size]), as onnxruntime.
template <typename T>
inline void roi_taps(T y, T x, size_t height, size_t width, size_t *pos, T *weight)
{
   if (y < T(-1) || y > T(height) || x < T(-1) || x > T(width)) {
      detail::fill(pos, pos + 4, size_t(0));
      detail::fill(weight, weight + 4, T(0));
      return;
   }
   y = detail::max_of(y, T(0));
   x = detail::max_of(x, T(0));
   size_t y0 = static_cast<size_t>(y), x0 = static_cast<size_t>(x), y1 = y0 + 1, x1 = x0 + 1;
   if (y0 >= height - 1) {
      y0 = y1 = height - 1;
      y = T(y0);
   }
   if (x0 >= width - 1) {
      x0 = x1 = width - 1;
      x = T(x0);
   }
   const T ly = y - T(y0), lx = x - T(x0), hy = T(1) - ly, hx = T(1) - lx;
   const size_t p[4] = {y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1};
   const T w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
   detail::copy(p, p + 4, pos);
   detail::copy(w, w + 4, weight);
}

// Samples along one axis of a bin: sampling_ratio, or ceil(extent / bins) when 0 (none for an empty RoI).
template <typename T>
inline size_t roi_grid(int64_t sampling_ratio, T extent, size_t bins)
{
   if (sampling_ratio > 0)
      return static_cast<size_t>(sampling_ratio);
   const T n = std::ceil(extent / T(bins));
   return n > T(0) ? static_cast<size_t>(n) : 0;
}

template <typename T>
inline void roi_align(const T *x, const T *rois, const int64_t *batch_indices, T *y, size_t batch, size_t channels,
                      size_t height, size_t width, size_t num_rois, size_t out_h, size_t out_w, int64_t sampling_ratio,
                      T spatial_scale, bool half_pixel, bool max_mode)
{
   const T offset = half_pixel ? T(0.5) : T(0);
   const size_t plane = out_h * out_w;
   for (size_t r = 0; r < num_rois; ++r) {
      const int64_t b = batch_indices[r];
      if (b < 0 || b >= static_cast<int64_t>(batch))
         throw std::out_of_range("sofie-rdf: RoiAlign batch index " + std::to_string(b) + " is outside [0, " +
                                 std::to_string(batch) + ")");
      const T *roi = rois + r * 4;
      const T x0 = roi[0] * spatial_scale - offset, y0 = roi[1] * spatial_scale - offset;
      T roi_w = roi[2] * spatial_scale - offset - x0, roi_h = roi[3] * spatial_scale - offset - y0;
      if (!half_pixel) { // malformed RoIs become 1 x 1
         roi_w = detail::max_of(roi_w, T(1));
         roi_h = detail::max_of(roi_h, T(1));
      }
      const T bin_h = roi_h / T(out_h), bin_w = roi_w / T(out_w);
      const size_t grid_h = roi_grid(sampling_ratio, roi_h, out_h), grid_w = roi_grid(sampling_ratio, roi_w, out_w);
      const T count = T(detail::max_of<size_t>(grid_h * grid_w, 1));
      const T *xb = x + static_cast<size_t>(b) * channels * height * width;
      T *yr = y + r * channels * plane;
      for (size_t bin = 0; bin < plane; ++bin) {
         for (size_t c = 0; c < channels; ++c)
            yr[c * plane + bin] = T(0);
         const size_t ph = bin / out_w, pw = bin % out_w;
         for (size_t s = 0; s < grid_h * grid_w; ++s) {
            const T sy = y0 + T(ph) * bin_h + (T(s / grid_w) + T(0.5)) * bin_h / T(grid_h);
            const T sx = x0 + T(pw) * bin_w + (T(s % grid_w) + T(0.5)) * bin_w / T(grid_w);
            size_t pos[4];
            T weight[4];
            roi_taps(sy, sx, height, width, pos, weight);
            for (size_t c = 0; c < channels; ++c) {
               const T *xc = xb + c * height * width;
               T &out = yr[c * plane + bin];
               if (max_mode) {
                  const T v = detail::max_of(detail::max_of(weight[0] * xc[pos[0]], weight[1] * xc[pos[1]]),
                                       detail::max_of(weight[2] * xc[pos[2]], weight[3] * xc[pos[3]]));
                  out = s == 0 ? v : detail::max_of(out, v);
               } else {
                  out += weight[0] * xc[pos[0]] + weight[1] * xc[pos[1]] + weight[2] * xc[pos[2]] +
                         weight[3] * xc[pos[3]];
               }
            }
         }
         if (!max_mode)
            for (size_t c = 0; c < channels; ++c)
               yr[c * plane + bin] /= count;
      }
   }
}
