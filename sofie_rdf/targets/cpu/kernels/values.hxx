// Run-time value inputs: the values an operator reads from a tensor computed while the code runs (Reshape's
// shape, Slice's starts, Resize's sizes, a reduction's axes, ...) where a constant is used up when the code
// is generated.  Each is checked where it is read; a bad one throws std::invalid_argument naming the model
// and node (`where`, a string literal the emitter writes) and the value.

[[noreturn]] inline void value_error(const char *where, const std::string &what)
{
   throw std::invalid_argument(std::string("sofie-rdf: ") + where + ": " + what);
}

// A size given as a value (a dim, a count, a depth): it must not be negative.
template <typename I>
inline size_t value_dim(I value, const char *where, const char *what)
{
   if (value < 0)
      value_error(where, std::string(what) + " is " + std::to_string(static_cast<int64_t>(value)) +
                            ", a size must not be negative");
   return static_cast<size_t>(value);
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
   std::fill_n(mask, rank, false);
   for (size_t k = 0; k < n; ++k) {
      const size_t a = value_axis(axes[k], rank, where);
      if (mask[a])
         value_error(where, "axis " + std::to_string(static_cast<int64_t>(axes[k])) + " is given twice");
      mask[a] = true;
   }
}
