"""Numpy-only stand-ins for the foreign classes FLAME's pickles reference (chumpy arrays, scipy sparse).

The restricted unpickler in `decaenv.loaders.safe_pickle` maps those class names to the classes below, so
neither chumpy nor scipy is imported (nor needed) to read the files. Each stand-in keeps the pickled state as
plain attributes and converts it to a dense numpy array on request, validating it first: a damaged or hostile
file gives a `DataError`, never an `IndexError` deep inside numpy.

Upstream context: chumpy is unmaintained and breaks on numpy >= 1.24 and Python >= 3.11
(https://github.com/mattloper/chumpy/issues/55, https://github.com/mattloper/chumpy/issues/51).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from decaenv.errors import DataError

_DAMAGED = "the file is damaged: re-download it"


class ChumpyStandIn:
    """Holds the pickled state of a chumpy object; `.array` gives its data (leaf `Ch` objects only).

    A leaf `chumpy.ch.Ch` keeps its array under the state key `x`; expression nodes (`chumpy.ch_ops.add`, ...)
    keep their operands instead and cannot be evaluated without chumpy.
    """

    chumpy_class = "chumpy.ch.Ch"

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise DataError(f"a chumpy object ({self.chumpy_class}) in the file has a malformed state", hint=_DAMAGED)
        self.__dict__.update(state)

    @property
    def array(self) -> np.ndarray:
        """The object's data: (any shape) numeric array."""
        if "x" in self.__dict__:
            value = self.__dict__["x"]
            return value.array if isinstance(value, ChumpyStandIn) else np.asarray(value)
        raise DataError(
            f"the file holds a chumpy expression ({self.chumpy_class}) rather than plain data; "
            "decaenv reads only leaf chumpy arrays, as found in FLAME's files",
            hint="re-export the model with its arrays evaluated, or use an official FLAME file",
        )

    def __array__(self, dtype=None, copy=None):
        arr = self.array
        return arr if dtype is None else arr.astype(dtype)


def chumpy_class(module: str, name: str) -> type:
    """A `ChumpyStandIn` subclass remembering the chumpy class it stands for (for messages)."""
    return type(name, (ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})


class SparseStandIn:
    """A scipy.sparse matrix (csc, csr or coo; `*_matrix` or `*_array`) rebuilt from its pickled state."""

    fmt = "csc"

    def __setstate__(self, state: Dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise DataError(f"a sparse {self.fmt} matrix in the file has a malformed state", hint=_DAMAGED)
        self.__dict__.update(state)

    @property
    def shape(self) -> Tuple[int, int]:
        """(rows, cols), from `_shape` (scipy >= 0.14) or `shape` (older pickles)."""
        shape = self.__dict__.get("_shape", self.__dict__.get("shape"))
        try:
            rows, cols = (int(s) for s in shape or ())
        except (TypeError, ValueError) as exc:
            raise DataError(f"a sparse {self.fmt} matrix in the file has no valid shape", hint=_DAMAGED) from exc
        if rows < 0 or cols < 0 or rows * cols > 1 << 31:
            raise DataError(
                f"a sparse {self.fmt} matrix in the file has an implausible shape {(rows, cols)}", hint=_DAMAGED
            )
        return rows, cols

    def _field(self, key: str, integer: bool) -> np.ndarray:
        if key not in self.__dict__:
            raise DataError(f"a sparse {self.fmt} matrix in the file lacks {key!r}", hint=_DAMAGED)
        arr = np.asarray(self.__dict__[key])
        kind = "iu" if integer else "iufb"
        if arr.ndim != 1 or arr.dtype.kind not in kind:
            raise DataError(
                f"a sparse {self.fmt} matrix in the file has a malformed {key!r} ({arr.dtype}, {arr.ndim}-d)",
                hint=_DAMAGED,
            )
        return arr

    def toarray(self) -> np.ndarray:
        """Dense (rows, cols) array: the same values scipy's `toarray()` gives (duplicates are summed)."""
        rows, cols = self.shape
        data = self._field("data", integer=False)
        if self.fmt == "coo":
            row_idx, col_idx = self._coo_coords()
        else:
            row_idx, col_idx = self._compressed_coords(rows, cols, len(data))
            data = data[: len(row_idx)]
        if len(row_idx) != len(data) or len(col_idx) != len(data):
            raise DataError(
                f"a sparse {self.fmt} matrix in the file has index and data arrays of different lengths", hint=_DAMAGED
            )
        if len(data) and (row_idx.min() < 0 or row_idx.max() >= rows or col_idx.min() < 0 or col_idx.max() >= cols):
            raise DataError(
                f"a sparse {self.fmt} matrix in the file has indices outside its shape {(rows, cols)}", hint=_DAMAGED
            )
        dense = np.zeros((rows, cols), dtype=data.dtype)
        np.add.at(dense, (row_idx, col_idx), data)
        return dense

    def _compressed_coords(self, rows: int, cols: int, n_data: int) -> Tuple[np.ndarray, np.ndarray]:
        """(row, col) index per stored value of a csc/csr matrix (the first `indptr[-1]` values)."""
        indices, indptr = self._field("indices", True), self._field("indptr", True)
        major = rows if self.fmt == "csr" else cols
        if (
            len(indptr) != major + 1
            or indptr[0] != 0
            or np.any(np.diff(indptr) < 0)
            or indptr[-1] > min(len(indices), n_data)
        ):
            raise DataError(
                f"a sparse {self.fmt} matrix in the file is inconsistent (indptr does not match its shape)",
                hint=_DAMAGED,
            )
        nnz = int(indptr[-1])
        majors = np.repeat(np.arange(major), np.diff(indptr))
        minors = indices[:nnz].astype(np.int64)
        return (majors, minors) if self.fmt == "csr" else (minors, majors)

    def _coo_coords(self) -> Tuple[np.ndarray, np.ndarray]:
        coords = self.__dict__.get("coords")
        if coords is None:  # scipy < 1.13 stores row/col separately
            return self._field("row", True).astype(np.int64), self._field("col", True).astype(np.int64)
        if not isinstance(coords, (tuple, list)) or len(coords) != 2:
            raise DataError("a sparse coo matrix in the file has malformed coordinates", hint=_DAMAGED)
        row_col = [np.asarray(c) for c in coords]
        if any(c.ndim != 1 or c.dtype.kind not in "iu" for c in row_col):
            raise DataError("a sparse coo matrix in the file has malformed coordinates", hint=_DAMAGED)
        return row_col[0].astype(np.int64), row_col[1].astype(np.int64)


def sparse_class(fmt: str, kind: str = "matrix") -> type:
    """A `SparseStandIn` subclass for one storage format ("csc", "csr" or "coo")."""
    return type(f"{fmt}_{kind}", (SparseStandIn,), {"fmt": fmt})


#: (module, name) pairs of the scipy.sparse classes FLAME-like pickles may reference, old and new paths.
SPARSE_GLOBALS = {
    (module, f"{fmt}_{kind}"): (fmt, kind)
    for fmt in ("csc", "csr", "coo")
    for kind in ("matrix", "array")
    for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse._arrays")
}
