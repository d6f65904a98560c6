"""Writing weight files: SOFIE's text format (``weights="dat"``), ROOT files (``weights="root"``) and the
binary twin of the text format that native libraries in the compile cache read (``write_binary``).

Text: ``<tag> <count>`` then the values.  Floats are printed with enough
digits to read back bit-identical (9 significant digits for float32, 17 for
float64); inf and nan are spelled so that ``strtof`` parses them.  16-bit
floats and the 8- and 4-bit floats of quantized models are printed as the
float32 values they are exactly, which the reader rounds back to the same
bits; the 4- and 2-bit integers as the integers they are.

ROOT: like SOFIE's ``.root`` weights, one ``std::vector`` object per tensor,
``<Name>_weights/<tag>``, written with PyROOT (so generating this mode needs
ROOT) and read by the Session constructor with ``TFile`` (so the header
needs ROOT's headers and ``libRIO``; the other modes do not).  Element types
without a vector dictionary in ROOT are stored as the unsigned type of their
size holding their bits: bool as ``unsigned char`` (0/1), float16 and
bfloat16 as ``unsigned short``, the narrow quantized types as ``unsigned
char``; int64 is ``Long64_t``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np

from ..._cache import atomic_write
from ...ir.dtypes import HALF_TYPES, MINIFLOAT_TYPES, NARROW_INT_RANGES, NARROW_TYPES

# numpy dtype of a tensor -> C++ element type of the std::vector holding it in a ROOT weights file.
ROOT_VECTOR_TYPES = {
    np.dtype(np.float32): "float", np.dtype(np.float64): "double",
    np.dtype(np.int8): "char", np.dtype(np.uint8): "unsigned char", np.dtype(np.bool_): "unsigned char",
    np.dtype(np.int16): "short", np.dtype(np.uint16): "unsigned short",
    np.dtype(np.float16): "unsigned short", np.dtype(ml_dtypes.bfloat16): "unsigned short",
    np.dtype(np.int32): "int", np.dtype(np.uint32): "unsigned int",
    np.dtype(np.int64): "Long64_t", np.dtype(np.uint64): "ULong64_t",
    **dict.fromkeys(NARROW_TYPES, "unsigned char"),  # the byte of each element, as the Session stores it
}

# The Session's reader of ROOT weights files (goes into namespace detail of headers with weights="root").
ROOT_READER_SOURCE = """\
// Reader of ROOT weights files (weights="root"): one std::vector per tensor, "<dir>/<tag>".
class RootWeightReader {
public:
   RootWeightReader(const std::string &filename, const std::string &dir) : fFileName(filename), fDir(dir)
   {
      TDirectory::TContext keep;  // TFile::Open changes gDirectory; the caller's is restored on return
      fFile.reset(TFile::Open(filename.c_str(), "READ"));
      if (!fFile || fFile->IsZombie())
         throw std::runtime_error("sofie-rdf: cannot open ROOT weights file '" + filename +
                                  "' (missing, unreadable, truncated or not a ROOT file)");
   }

   // `Stored` is the vector's element type in the file, of the same size as T (bits copied).
   template <typename Stored, typename T>
   void read(const char *name_chars, T *dst, size_t n)
   {
      static_assert(sizeof(Stored) == sizeof(T), "a tensor is stored in a type of its own size");
      const std::string name(name_chars);
      std::unique_ptr<std::vector<Stored>> values(fFile->Get<std::vector<Stored>>((fDir + "/" + name).c_str()));
      if (!values)
         fail("has no tensor '" + fDir + "/" + name + "' of the expected type (a weights file of another model?)");
      if (values->size() != n)
         fail("gives " + std::to_string(values->size()) + " values for tensor '" + name + "', the model needs " +
              std::to_string(n));
      if constexpr (std::is_same_v<T, bool>) {
         for (size_t i = 0; i < n; ++i)
            dst[i] = (*values)[i] != 0;
      } else if (n > 0) {
         std::memcpy(static_cast<void *>(dst), values->data(), n * sizeof(T));
      }
   }

private:
   [[noreturn]] void fail(const std::string &what) const
   {
      throw std::runtime_error("sofie-rdf: ROOT weights file '" + fFileName + "' " + what);
   }

   std::string fFileName;
   std::string fDir;
   std::unique_ptr<TFile> fFile;
};
"""

# Copies a numpy buffer into a std::vector (cppyy has no buffer view of vector<char>).
_FILL_SOURCE = """\
#include <cstdint>
#include <cstring>
#include <vector>
namespace sofie_rdf_io {
template <typename T>
void fill(std::vector<T> &v, std::uintptr_t src, std::size_t n)
{
   v.resize(n);
   if (n > 0)
      std::memcpy(v.data(), reinterpret_cast<const void *>(src), n * sizeof(T));
}
}
"""


def format_values(values: np.ndarray) -> str:
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.dtype in HALF_TYPES or flat.dtype in MINIFLOAT_TYPES:
        flat = flat.astype(np.float32)
    elif flat.dtype in NARROW_INT_RANGES:
        flat = flat.astype(np.int8)
    if flat.dtype == np.float32:
        return " ".join(f"{v:.9g}" for v in flat.tolist())
    if flat.dtype == np.float64:
        return " ".join(f"{v:.17g}" for v in flat.tolist())
    return " ".join(str(int(v)) for v in flat.tolist())


def write_dat(path: str | os.PathLike, weights: dict[str, np.ndarray]) -> Path:
    """Write ``weights`` (tag -> array, in the order the Session reads them)."""
    text = "".join(f"{tag} {value.size}\n{format_values(value)}\n" for tag, value in weights.items())
    return atomic_write(path, text)


# First line of a binary weights file (kernels/runtime.hxx reads both kinds).
BINARY_MAGIC = "sofie-rdf binary weights 1"


def write_binary(path: str | os.PathLike, weights: dict[str, np.ndarray]) -> Path:
    """Write ``weights`` as the text format's ``<tag> <count>`` lines, each followed by the byte count and the
    raw values in this machine's byte order: what a native library's Session reads in the compile cache, where
    a text file of resnet18's 11.7 million floats takes seconds to parse and this takes milliseconds."""
    parts = [f"{BINARY_MAGIC}\n".encode()]
    for tag, value in weights.items():
        data = np.ascontiguousarray(value).tobytes()
        parts += [f"{tag} {value.size} {len(data)}\n".encode(), data]
    return atomic_write(path, b"".join(parts))


def root_weights_dir(name: str) -> str:
    """Directory of a model's tensors in its ROOT weights file (SOFIE's convention)."""
    return f"{name}_weights"


def write_root(path: str | os.PathLike, weights: dict[str, np.ndarray], directory: str, update: bool = False) -> Path:
    """Write ``weights`` (tag -> array) as ``directory/<tag>`` vectors of a new ROOT file, atomically.

    With ``update``, an existing file keeps its other directories and only ``directory`` is replaced: several
    models' weights in one file, as SOFIE writes them for models appended to one header.
    """
    from ..._root import declare, root

    ROOT = root()
    declare("sofie_rdf_io_fill", _FILL_SOURCE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".root")
    os.close(fd)
    try:
        updating = update and path.exists()
        if updating:
            shutil.copyfile(path, tmp)
        _write_vectors(ROOT, tmp, weights, directory, "UPDATE" if updating else "RECREATE")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_vectors(ROOT, filename: str, weights: dict[str, np.ndarray], directory: str,  # noqa: N803
                   mode: str) -> None:
    f = ROOT.TFile.Open(filename, mode)
    if not f or f.IsZombie():
        raise OSError(f"ROOT cannot {'update' if mode == 'UPDATE' else 'create'} {filename!r}")
    try:
        f.Delete(f"{directory};*")  # the model's weights written before, if any
        folder = f.mkdir(directory)
        for tag, value in weights.items():
            data = np.ascontiguousarray(value)
            vector = ROOT.std.vector[ROOT_VECTOR_TYPES[data.dtype]]()
            ROOT.sofie_rdf_io.fill(vector, data.ctypes.data, data.size)
            if folder.WriteObject(vector, tag) <= 0:
                raise OSError(f"ROOT could not write tensor {tag!r} to {filename!r}")
    finally:
        f.Close()
