// Run-time value inputs: the values an operator reads from a tensor computed while the code runs (Reshape's
// shape, Slice's starts, Resize's sizes, a reduction's axes, ...) where a constant is used up when the code
// is generated.  Each is checked where it is read; a bad one throws std::invalid_argument naming the model
// and node (`where`, a string literal the emitter writes) and the value.

[[noreturn]] inline void value_error(const char *where, const std::string &what)
{
   throw std::invalid_argument(std::string("sofie-rdf: ") + where + ": " + what);
}

// A size given as a value, at least `least` (else the error says `rule`).
template <typename I>
inline size_t value_at_least(I value, int64_t least, const char *where, const char *what, const char *rule)
{
   if (static_cast<int64_t>(value) < least)
      value_error(where, std::string(what) + " is " + std::to_string(static_cast<int64_t>(value)) + ", " + rule);
   return static_cast<size_t>(value);
}

// A size given as a value (a dim, a count, a depth): it must not be negative.
template <typename I>
inline size_t value_dim(I value, const char *where, const char *what)
{
   return value_at_least(value, 0, where, what, "a size must not be negative");
}

// An axis in [-rank, rank) as an index in [0, rank).
template <typename I>
inline size_t value_axis(I axis, size_t rank, const char *where)
{
   const int64_t a = static_cast<int64_t>(axis), r = static_cast<int64_t>(rank);
   if (a < -r || a >= r)
      value_error(where, "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
   return static_cast<size_t>(a < 0 ? a + r : a);
}

// n axes as a mask over rank dims (mask[d] true for the axes named); an axis named twice is an error.
template <typename I>
inline void value_axes(const I *axes, size_t n, size_t rank, bool *mask, const char *where)
{
   detail::fill_n(mask, rank, false);
   for (size_t k = 0; k < n; ++k) {
      const size_t a = value_axis(axes[k], rank, where);
      if (mask[a])
         value_error(where, "axis " + std::to_string(static_cast<int64_t>(axes[k])) + " is given twice");
      mask[a] = true;
   }
}

// The dims dims[0..n) as text, "(2, 3)", for the messages.
template <typename I>
inline std::string value_dims_text(const I *dims, size_t n)
{
   std::string s = "(";
   for (size_t k = 0; k < n; ++k)
      s += (k ? ", " : "") + std::to_string(static_cast<int64_t>(dims[k]));
   return s + (n == 1 ? ",)" : ")");
}

// Reshape's target shape read at run time: an entry 0 copies the input's dim (unless allowzero), one entry -1
// takes what the others leave; the element count must stay.
template <typename I>
inline void value_reshape(const I *target, size_t rank, const size_t *in_dims, size_t in_rank, bool allowzero,
                          size_t *out_dims, const char *where)
{
   size_t in_size = 1, known = 1, hole = rank;
   for (size_t k = 0; k < in_rank; ++k)
      in_size *= in_dims[k];
   // the message's text is built only on an error: a call that succeeds allocates nothing
   const auto shape = [&] { return "the target shape " + value_dims_text(target, rank); };
   for (size_t k = 0; k < rank; ++k) {
      const int64_t v = static_cast<int64_t>(target[k]);
      if (v == -1 && hole != rank)
         value_error(where, shape() + " has more than one -1");
      if (v == 0 && !allowzero && k >= in_rank)
         value_error(where, shape() + " copies dim " + std::to_string(k) + " of an input of rank " + std::to_string(in_rank));
      if (v < -1)
         value_error(where, shape() + " has the negative entry " + std::to_string(v));
      if (v == -1)
         hole = k;
      out_dims[k] = v == -1 ? 1 : (v == 0 && !allowzero ? in_dims[k] : static_cast<size_t>(v));
      known *= out_dims[k];
   }
   if (hole != rank && known != 0 && in_size % known == 0)
      out_dims[hole] = in_size / known;
   else if (hole != rank || known != in_size)
      value_error(where, "cannot view a tensor of shape " + value_dims_text(in_dims, in_rank) + " as " + shape());
}

// Squeeze's output dims for n axes read at run time: the input's dims but those named, which must be 1
// (mask: rank entries of scratch).
template <typename I>
inline void value_squeeze(const I *axes, size_t n, const size_t *in_dims, size_t rank, bool *mask, size_t *out_dims,
                          const char *where)
{
   value_axes(axes, n, rank, mask, where);
   for (size_t d = 0, k = 0; d < rank; ++d) {
      if (mask[d] && in_dims[d] != 1)
         value_error(where, "cannot squeeze axis " + std::to_string(d) + " of size " + std::to_string(in_dims[d]));
      if (!mask[d])
         out_dims[k++] = in_dims[d];
   }
}

// Unsqueeze's output dims for n axes (of the output) read at run time: 1 where named, the input's dims in
// order elsewhere (mask: rank + n entries of scratch).
template <typename I>
inline void value_unsqueeze(const I *axes, size_t n, const size_t *in_dims, size_t rank, bool *mask,
                            size_t *out_dims, const char *where)
{
   value_axes(axes, n, rank + n, mask, where);
   for (size_t d = 0, k = 0; d < rank + n; ++d)
      out_dims[d] = mask[d] ? 1 : in_dims[k++];
}

// Slice's n ranges read at run time (axes and steps may be null: 0..n-1 and 1), clamped as onnxruntime does:
// a negative start or end counts from the end of its dim, then both are clamped to the dim ([-1, dim - 1]
// for a negative step).  Gives, per dim of the input, the output dim and the element stride to read with
// (mask: rank entries of scratch); returns the offset of the first element read.
template <typename S, typename E, typename A, typename P>
inline std::ptrdiff_t value_slice(const S *starts, const E *ends, const A *axes, const P *steps, size_t n,
                                  const size_t *in_dims, size_t rank, bool *mask, size_t *out_dims,
                                  std::ptrdiff_t *strides, const char *where)
{
   if (axes)
      value_axes(axes, n, rank, mask, where);
   else if (n > rank)
      value_error(where, std::to_string(n) + " starts for an input of rank " + std::to_string(rank));
   std::ptrdiff_t stride = 1, offset = 0;
   for (size_t d = rank; d-- > 0;) {
      out_dims[d] = in_dims[d];
      strides[d] = stride;
      stride *= static_cast<std::ptrdiff_t>(in_dims[d]);
   }
   for (size_t k = 0; k < n; ++k) {
      const size_t a = axes ? value_axis(axes[k], rank, where) : k;
      const int64_t dim = static_cast<int64_t>(in_dims[a]), step = steps ? static_cast<int64_t>(steps[k]) : 1;
      if (step == 0)
         value_error(where, "the step along axis " + std::to_string(a) + " is 0");
      int64_t s = static_cast<int64_t>(starts[k]), e = static_cast<int64_t>(ends[k]);
      s = s < 0 ? s + dim : s;
      e = e < 0 ? e + dim : e;
      const int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? dim : dim - 1;
      s = detail::min_of(detail::max_of(s, lo), hi);
      e = detail::min_of(detail::max_of(e, lo), hi);
      const int64_t count = step > 0 ? (e - s + step - 1) / step : (s - e - step - 1) / -step;
      out_dims[a] = count > 0 ? static_cast<size_t>(count) : 0;
      offset += out_dims[a] ? static_cast<std::ptrdiff_t>(s) * strides[a] : 0;
      strides[a] *= static_cast<std::ptrdiff_t>(step);
   }
   return offset;
}

// Split's count part sizes read at run time: none negative, adding up to the dim split.
template <typename I>
inline void value_split(const I *split, size_t count, size_t dim, const char *where)
{
   int64_t total = 0;
   for (size_t k = 0; k < count; ++k) {
      value_dim(split[k], where, "a split size");
      total += static_cast<int64_t>(split[k]);
   }
   if (total != static_cast<int64_t>(dim))
      value_error(where, "the split sizes " + value_dims_text(split, count) + " add up to " + std::to_string(total) +
                            ", not to the dim split, " + std::to_string(dim));
}

// Pad's 2n pads read at run time (the n begins, then the n ends) for the n axes named (every dim, n = rank,
// when axes is null): negative pads crop.  Gives, per dim of the input (of element strides `strides`), the
// extent kept, the elements added before it and the output dim (mask: rank entries of scratch); returns the
// offset of the first element kept.  Only constant padding (`constant_mode`) may pad an empty extent.
template <typename P, typename A>
inline std::ptrdiff_t value_pad(const P *pads, size_t count, const A *axes, const size_t *in_dims,
                                const std::ptrdiff_t *strides, size_t rank, bool constant_mode, bool *mask,
                                size_t *extent, size_t *begin, size_t *out_dims, const char *where)
{
   const size_t n = count / 2;
   if (count % 2 != 0 || (!axes && n != rank))
      value_error(where, std::to_string(count) + " pads for " + std::to_string(axes ? n : rank) +
                            " axes: expected twice as many pads as axes");
   if (axes)
      value_axes(axes, n, rank, mask, where);
   detail::copy_n(in_dims, rank, extent);
   detail::copy_n(in_dims, rank, out_dims);
   detail::fill_n(begin, rank, size_t(0));
   std::ptrdiff_t offset = 0;
   for (size_t k = 0; k < n; ++k) {
      const size_t a = axes ? value_axis(axes[k], rank, where) : k;
      const int64_t b = static_cast<int64_t>(pads[k]), e = static_cast<int64_t>(pads[k + n]);
      const int64_t crop = detail::max_of<int64_t>(-b, 0) + detail::max_of<int64_t>(-e, 0);
      if (crop > static_cast<int64_t>(in_dims[a]))
         value_error(where, "the pads crop " + std::to_string(crop) + " from axis " + std::to_string(a) +
                               " of size " + std::to_string(in_dims[a]));
      extent[a] = in_dims[a] - static_cast<size_t>(crop);
      if (!constant_mode && extent[a] == 0 && (b > 0 || e > 0))
         value_error(where, "only constant padding can pad the empty axis " + std::to_string(a));
      begin[a] = static_cast<size_t>(detail::max_of<int64_t>(b, 0));
      out_dims[a] = extent[a] + begin[a] + static_cast<size_t>(detail::max_of<int64_t>(e, 0));
      offset += detail::max_of<int64_t>(-b, 0) * strides[a];
   }
   return offset;
}

// A size given as a value that must be positive (a transform's length, the step between frames).
template <typename I>
inline size_t value_positive(I value, const char *where, const char *what)
{
   return value_at_least(value, 1, where, what, "it must be positive");
}
