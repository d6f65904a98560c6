// requires: select
// Signal processing: cosine-sum windows and discrete Fourier transforms (DFT, STFT) of complex values
// stored as (real, imaginary) pairs in the last axis, or as real values alone.

// a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N) with N = size for a periodic window, size - 1 for a symmetric one.
// Integer windows truncate the float window (onnxruntime's rounding: a Blackman peak of 1 - 1e-16 gives 1, not 0).
template <typename T>
inline void cosine_window(T *y, size_t size, bool periodic, double a0, double a1, double a2)
{
   const double two_pi = 2.0 * std::acos(-1.0);
   const double period = static_cast<double>(periodic ? size : size - 1);
   for (size_t n = 0; n < size; ++n) {
      const double phase = two_pi * static_cast<double>(n) / period;
      const double value = a0 - a1 * std::cos(phase) + a2 * std::cos(2.0 * phase);
      y[n] = static_cast<T>(std::is_integral<T>::value ? static_cast<double>(static_cast<float>(value)) : value);
   }
}

// Direct transform of length `length` in double: twiddles tabulated once, each line loaded into (re, im),
// zero-padded or truncated to the length, then y[k] = scale * sum_j v[j] exp(-+ 2 pi i j k / length).
template <typename T>
class Dft {
public:
   explicit Dft(size_t length) : length_(length), cos_(length), sin_(length), re_(length), im_(length)
   {
      const double two_pi = 2.0 * std::acos(-1.0);
      for (size_t m = 0; m < length; ++m) {
         cos_[m] = std::cos(two_pi * static_cast<double>(m) / static_cast<double>(length));
         sin_[m] = std::sin(two_pi * static_cast<double>(m) / static_cast<double>(length));
      }
   }

   // n_in values spaced by `stride` elements, each `comp` wide (1: real, 2: complex), optionally windowed.
   void load(const T *x, size_t n_in, size_t stride, size_t comp, const T *window)
   {
      for (size_t j = 0; j < length_; ++j) {
         const double w = window ? static_cast<double>(window[j]) : 1.0;
         const bool inside = j < n_in;
         re_[j] = inside ? w * static_cast<double>(x[j * stride]) : 0.0;
         im_[j] = inside && comp == 2 ? w * static_cast<double>(x[j * stride + 1]) : 0.0;
      }
   }

   // A one-sided spectrum extended by conjugate symmetry (bins past length / 2 mirror the first ones).
   void load_hermitian(const T *x, size_t n_in, size_t stride, size_t comp)
   {
      for (size_t j = 0; j < length_; ++j) {
         const size_t k = j <= length_ / 2 ? j : length_ - j;
         const bool inside = k < n_in;
         re_[j] = inside ? static_cast<double>(x[k * stride]) : 0.0;
         const double im = inside && comp == 2 ? static_cast<double>(x[k * stride + 1]) : 0.0;
         im_[j] = j <= length_ / 2 ? im : -im;
      }
   }

   // n_out bins spaced by `stride` elements: (re, im), or re alone when real_out; inverse scales by 1 / length.
   void transform(T *y, size_t n_out, size_t stride, bool inverse, bool real_out) const
   {
      const double sign = inverse ? 1.0 : -1.0, scale = inverse ? 1.0 / static_cast<double>(length_) : 1.0;
      for (size_t k = 0; k < n_out; ++k) {
         double sr = 0, si = 0;
         for (size_t j = 0, m = 0; j < length_; ++j, m = (m + k) % length_) {
            const double c = cos_[m], s = sign * sin_[m];
            sr += re_[j] * c - im_[j] * s;
            si += re_[j] * s + im_[j] * c;
         }
         y[k * stride] = static_cast<T>(sr * scale);
         if (!real_out)
            y[k * stride + 1] = static_cast<T>(si * scale);
      }
   }

private:
   size_t length_;
   std::vector<double> cos_, sin_, re_, im_;
};

enum class DftKind { forward, inverse, inverse_real };

// x is (outer, n_in, inner, comp) and y (outer, n_out, inner, 2), or (..., 1) for the real inverse of a one-sided
// spectrum; each of the outer * inner lines is transformed with the given length.
template <typename T>
inline void dft(const T *x, T *y, size_t outer, size_t n_in, size_t inner, size_t comp, size_t length, size_t n_out,
                DftKind kind)
{
   Dft<T> line(length);
   const size_t out_comp = kind == DftKind::inverse_real ? 1 : 2;
   for (size_t o = 0; o < outer; ++o) {
      for (size_t i = 0; i < inner; ++i) {
         const T *src = x + (o * n_in * inner + i) * comp;
         if (kind == DftKind::inverse_real)
            line.load_hermitian(src, n_in, inner * comp, comp);
         else
            line.load(src, n_in, inner * comp, comp, nullptr);
         line.transform(y + (o * n_out * inner + i) * out_comp, n_out, inner * out_comp, kind != DftKind::forward,
                        kind == DftKind::inverse_real);
      }
   }
}

// Short-time transform: x is (batch, signal, comp), y (batch, frames, n_out, 2); frame f starts at f * step and
// holds `length` samples, weighted by the window when there is one.
template <typename T>
inline void stft(const T *x, const T *window, T *y, size_t batch, size_t signal, size_t comp, size_t frames, size_t step,
                 size_t length, size_t n_out)
{
   Dft<T> line(length);
   for (size_t b = 0; b < batch; ++b) {
      for (size_t f = 0; f < frames; ++f) {
         line.load(x + (b * signal + f * step) * comp, length, comp, comp, window);
         line.transform(y + (b * frames + f) * n_out * 2, n_out, 2, false, false);
      }
   }
}
