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
// `work` is scratch for 4 * length doubles (planned by the generator: no allocation per call).
template <typename T>
class Dft {
public:
   Dft(size_t length, double *work)
      : length_(length), cos_(work), sin_(work + length), re_(work + 2 * length), im_(work + 3 * length)
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
   double *cos_, *sin_, *re_, *im_;
};

// The transform of one line with no scratch, for a length read at run time (the planner has no room for its
// tables): the line is read where it lies, and the twiddles of bin k follow by rotation, set again from cos/sin
// every 32 terms so that the rounding of the recurrence stays at a few ulps.  The interface of Dft.
template <typename T>
class DftInPlace {
public:
   explicit DftInPlace(size_t length) : length_(length) {}

   void load(const T *x, size_t n_in, size_t stride, size_t comp, const T *window)
   {
      set(x, n_in, stride, comp, window, false);
   }

   void load_hermitian(const T *x, size_t n_in, size_t stride, size_t comp) { set(x, n_in, stride, comp, nullptr, true); }

   void transform(T *y, size_t n_out, size_t stride, bool inverse, bool real_out) const
   {
      const double two_pi = 2.0 * std::acos(-1.0), length = static_cast<double>(length_);
      const double sign = inverse ? 1.0 : -1.0, scale = inverse ? 1.0 / length : 1.0;
      // past n_in a plain line is zero-padded; a Hermitian one mirrors, so every term counts
      const size_t terms = hermitian_ ? length_ : detail::min_of(length_, n_in_);
      for (size_t k = 0; k < n_out; ++k) {
         const double turn = two_pi * static_cast<double>(k) / length;
         const double wr = std::cos(turn), wi = sign * std::sin(turn);
         double sr = 0, si = 0, tr = 1, ti = 0;
         for (size_t j = 0, m = 0; j < terms; ++j, m = (m + k) % length_) {
            if (j % 32 == 0) {
               tr = std::cos(two_pi * static_cast<double>(m) / length);
               ti = sign * std::sin(two_pi * static_cast<double>(m) / length);
            }
            double re, im;
            value(j, re, im);
            sr += re * tr - im * ti;
            si += re * ti + im * tr;
            const double next = tr * wr - ti * wi;
            ti = tr * wi + ti * wr;
            tr = next;
         }
         y[k * stride] = static_cast<T>(sr * scale);
         if (!real_out)
            y[k * stride + 1] = static_cast<T>(si * scale);
      }
   }

private:
   void set(const T *x, size_t n_in, size_t stride, size_t comp, const T *window, bool hermitian)
   {
      x_ = x;
      n_in_ = n_in;
      stride_ = stride;
      comp_ = comp;
      window_ = window;
      hermitian_ = hermitian;
   }

   // Term j of the line, as Dft's load and load_hermitian would have stored it.
   void value(size_t j, double &re, double &im) const
   {
      const size_t k = hermitian_ && j > length_ / 2 ? length_ - j : j;
      const bool inside = k < n_in_;
      const double w = window_ ? static_cast<double>(window_[j]) : 1.0;
      re = inside ? w * static_cast<double>(x_[k * stride_]) : 0.0;
      im = inside && comp_ == 2 ? w * static_cast<double>(x_[k * stride_ + 1]) : 0.0;
      if (hermitian_ && j > length_ / 2)
         im = -im;
   }

   size_t length_, n_in_ = 0, stride_ = 0, comp_ = 1;
   const T *x_ = nullptr, *window_ = nullptr;
   bool hermitian_ = false;
};

enum class DftKind { forward, inverse, inverse_real };

// x is (outer, n_in, inner, comp) and y (outer, n_out, inner, 2), or (..., 1) for the real inverse of a one-sided
// spectrum; each of the outer * inner lines is transformed by `line` (a Dft or a DftInPlace of the length).
template <typename T, typename Line>
inline void dft_lines(Line &line, const T *x, T *y, size_t outer, size_t n_in, size_t inner, size_t comp, size_t n_out,
                      DftKind kind)
{
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

template <typename T>
inline void dft(const T *x, T *y, size_t outer, size_t n_in, size_t inner, size_t comp, size_t length, size_t n_out,
                DftKind kind, double *work)
{
   Dft<T> line(length, work);
   dft_lines(line, x, y, outer, n_in, inner, comp, n_out, kind);
}

// dft for a length read at run time: no scratch (see DftInPlace).
template <typename T>
inline void dft_in_place(const T *x, T *y, size_t outer, size_t n_in, size_t inner, size_t comp, size_t length,
                         size_t n_out, DftKind kind)
{
   DftInPlace<T> line(length);
   dft_lines(line, x, y, outer, n_in, inner, comp, n_out, kind);
}

// The (outer, n, inner) view of x (dims[0..rank), the last the (real, imaginary) axis, left out) around an axis
// read at run time.
struct LineView {
   size_t outer, n, inner;
};

inline LineView line_view(const size_t *dims, size_t rank, size_t axis)
{
   LineView view{1, dims[axis], 1};
   for (size_t d = 0; d + 1 < rank; ++d) {
      if (d < axis)
         view.outer *= dims[d];
      else if (d > axis)
         view.inner *= dims[d];
   }
   return view;
}

// Short-time transform: x is (batch, signal, comp), y (batch, frames, n_out, 2); frame f starts at f * step and
// holds `length` samples, weighted by the window when there is one.
template <typename T>
inline void stft(const T *x, const T *window, T *y, size_t batch, size_t signal, size_t comp, size_t frames, size_t step,
                 size_t length, size_t n_out, double *work)
{
   Dft<T> line(length, work);
   for (size_t b = 0; b < batch; ++b) {
      for (size_t f = 0; f < frames; ++f) {
         line.load(x + (b * signal + f * step) * comp, length, comp, comp, window);
         line.transform(y + (b * frames + f) * n_out * 2, n_out, 2, false, false);
      }
   }
}

// MelWeightMatrix: (dft_length / 2 + 1) x num_mel triangular filters with peaks of 1, whose edges are
// num_mel + 2 points evenly spaced on the mel scale (mel = 2595 log10(1 + hz / 700)) between the edge
// frequencies, each mapped to the spectrogram bin floor((dft_length + 1) hz / sample_rate).
inline int64_t mel_edge_bin(int64_t k, int64_t num_mel, int64_t dft_length, int64_t sample_rate, double lower, double upper)
{
   const double ln10 = std::log(10.0);
   const double low = 2595.0 * std::log1p(lower / 700.0) / ln10, high = 2595.0 * std::log1p(upper / 700.0) / ln10;
   const double mel = static_cast<double>(k) * (high - low) / static_cast<double>(num_mel + 2) + low;
   const double hz = 700.0 * std::expm1(mel / 2595.0 * ln10);
   return static_cast<int64_t>(std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate)));
}

template <typename T>
inline void mel_weight_matrix(T *y, int64_t num_mel, int64_t dft_length, int64_t sample_rate, double lower, double upper)
{
   if (num_mel < 0 || dft_length < 1 || sample_rate < 1)
      throw std::invalid_argument("sofie-rdf: MelWeightMatrix needs num_mel_bins >= 0, dft_length >= 1 and sample_rate >= 1");
   const int64_t bins = dft_length / 2 + 1;
   detail::fill(y, y + static_cast<size_t>(bins * num_mel), T(0));
   for (int64_t i = 0; i < num_mel; ++i) {
      const int64_t left = mel_edge_bin(i, num_mel, dft_length, sample_rate, lower, upper);
      const int64_t center = mel_edge_bin(i + 1, num_mel, dft_length, sample_rate, lower, upper);
      const int64_t right = mel_edge_bin(i + 2, num_mel, dft_length, sample_rate, lower, upper);
      if (left < 0 || center >= bins || right > bins)
         throw std::out_of_range("sofie-rdf: MelWeightMatrix band " + std::to_string(i) + " (bins " + std::to_string(left) +
                                 " to " + std::to_string(right) + ") is outside the " + std::to_string(bins) +
                                 " spectrogram bins: check the edge frequencies against sample_rate / 2");
      T *column = y + i;
      if (center == left)
         column[center * num_mel] = T(1);
      for (int64_t j = left; j <= center && center > left; ++j)
         column[j * num_mel] = static_cast<T>(static_cast<double>(j - left) / static_cast<double>(center - left));
      for (int64_t j = center; j < right; ++j)
         column[j * num_mel] = static_cast<T>(static_cast<double>(right - j) / static_cast<double>(right - center));
   }
}
