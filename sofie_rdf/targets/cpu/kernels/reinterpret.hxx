// BitCast (bytes reinterpreted) and CenterCropPad (a centred window copied into a zero-filled output).

// The n elements of x as elements of U of the same size (to bool: a byte is true when not 0).
template <typename U, typename T>
inline void bit_cast(const T *x, size_t n, U *y)
{
   static_assert(sizeof(U) == sizeof(T), "BitCast needs types of one size");
   if (std::is_same<U, bool>::value) {
      for (size_t i = 0; i < n; ++i) {
         unsigned char byte;
         std::memcpy(&byte, x + i, 1);
         y[i] = byte != 0;
      }
      return;
   }
   std::memcpy(static_cast<void *>(y), static_cast<const void *>(x), n * sizeof(T));
}

// y = 0, then the window of `region` elements per axis read from x at x_start and written to y at y_start
// (strides in elements, row-major).
template <typename T>
inline void center_crop_pad(const T *x, T *y, size_t y_size, size_t rank, const size_t *region,
                            const size_t *x_strides, const size_t *y_strides, size_t x_start, size_t y_start)
{
   detail::fill(y, y + y_size, T(0));
   size_t total = 1;
   for (size_t d = 0; d < rank; ++d)
      total *= region[d];
   for (size_t k = 0; k < total; ++k) {
      size_t xi = x_start, yi = y_start;
      for (size_t d = rank, rest = k; d-- > 0; rest /= region[d]) {
         xi += (rest % region[d]) * x_strides[d];
         yi += (rest % region[d]) * y_strides[d];
      }
      y[yi] = x[xi];
   }
}

// CenterCropPad's n target lengths read at run time for `axes`: the output shape and center_crop_pad's window.
template <typename I>
inline void center_crop_pad_shape(const size_t *in_shape, size_t rank, const size_t *axes, size_t n, const I *target,
                                  size_t *out_shape, size_t *region, size_t *x_strides, size_t *y_strides,
                                  size_t &x_start, size_t &y_start, size_t &y_size, const char *where)
{
   detail::copy(in_shape, in_shape + rank, out_shape);
   for (size_t k = 0; k < n; ++k) {
      if (target[k] < 0)
         value_error(where, "target length " + std::to_string(target[k]) + " (shape[" + std::to_string(k) +
                               "]) is negative");
      out_shape[axes[k]] = static_cast<size_t>(target[k]);
   }
   size_t xs = 1, ys = 1;
   x_start = y_start = 0;
   for (size_t d = rank; d-- > 0;) {
      const size_t m = in_shape[d], o = out_shape[d];
      x_strides[d] = xs;
      y_strides[d] = ys;
      region[d] = detail::min_of(m, o);
      x_start += (m > o ? (m - o) / 2 : 0) * xs;
      y_start += (o > m ? (o - m) / 2 : 0) * ys;
      xs *= m;
      ys *= o;
   }
   y_size = ys;
}
