/* The per-call path of a native Session: numpy arrays in, numpy arrays out, through a library's C ABI.
 *
 * Built once per machine and Python by sofie_rdf._native with the compiler that builds the models; where it
 * cannot be built, the Session calls the same C ABI through ctypes (a few microseconds slower).
 *
 * Caller(abi, session, inputs, outputs, dims, single, fallback, fail) holds what one Session needs:
 *   abi       (infer, output_shape, output_data, last_error, destroy) addresses of the library's C ABI;
 *             the Caller owns the session and destroys it when it goes
 *   inputs    per input (dtype, pattern): pattern[a] >= 0 is a fixed size, ~k binds the axis to dim k,
 *             None when an axis is an expression of dims (only the checked path calls such a model)
 *   outputs   per output (dtype, rank, sized while running)
 *   fallback  called with the arguments of any call that is not C-contiguous arrays of the right dtypes
 *             and shapes (the Session's checked path, which converts them or says what is wrong)
 *   fail      fail(value, message) -> the exception to raise for a failed call (value: a value the model
 *             cannot accept, std::invalid_argument; else a failure of the code)
 * caller(*arrays) runs the model; caller.run(dims, arrays) runs checked arrays with the dims' values.
 * The GIL is released while the model runs; a lock keeps one Session to one call at a time.
 */
#define PY_SSIZE_T_CLEAN
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <Python.h>
#include <numpy/arrayobject.h>
#include <pythread.h>
#include <string.h>

#define MAX_TENSORS 512
#define MAX_RANK 32
#define MAX_DIMS 64

typedef int (*infer_fn)(void *, const size_t *, void *const *);
typedef int (*shape_fn)(const void *, size_t, const size_t *, size_t *);
typedef const void *(*data_fn)(const void *, size_t);
typedef const char *(*error_fn)(void);
typedef void (*destroy_fn)(void *);

typedef struct {
    PyArray_Descr *dtype;
    int rank;          /* -1: an axis is an expression of dims (no fast path) */
    Py_ssize_t pattern[MAX_RANK];
} InputSpec;

typedef struct {
    PyArray_Descr *dtype;
    int rank;
    int runtime_sized;
} OutputSpec;

typedef struct {
    PyObject_HEAD
    infer_fn infer;
    shape_fn shape;
    data_fn data;
    error_fn error;
    destroy_fn destroy;
    void *session;
    PyObject *fallback, *fail;
    int n_inputs, n_outputs, n_dims, single;
    InputSpec *in;
    OutputSpec *out;
    PyThread_type_lock lock;
} Caller;

static int caller_traverse(Caller *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->fail);
    return 0;
}

static int caller_clear(Caller *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->fail);
    return 0;
}

static void caller_dealloc(Caller *self)
{
    PyObject_GC_UnTrack(self);
    caller_clear(self);
    if (self->session && self->destroy)
        self->destroy(self->session);
    for (int k = 0; self->in && k < self->n_inputs; ++k)
        Py_XDECREF(self->in[k].dtype);
    for (int k = 0; self->out && k < self->n_outputs; ++k)
        Py_XDECREF(self->out[k].dtype);
    PyMem_Free(self->in);
    PyMem_Free(self->out);
    if (self->lock)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void *address(PyObject *tuple, Py_ssize_t k)
{
    return PyLong_AsVoidPtr(PyTuple_GET_ITEM(tuple, k));
}

static int read_inputs(Caller *self, PyObject *inputs)
{
    self->n_inputs = (int)PyTuple_GET_SIZE(inputs);
    if (!(self->in = PyMem_Calloc((size_t)self->n_inputs + 1, sizeof(InputSpec)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (int k = 0; k < self->n_inputs; ++k) {
        PyObject *dtype, *pattern;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(inputs, k), "O!O", &PyArrayDescr_Type, &dtype, &pattern))
            return -1;
        Py_INCREF(dtype);
        self->in[k].dtype = (PyArray_Descr *)dtype;
        self->in[k].rank = -1;
        if (pattern == Py_None)
            continue;
        if (!PyTuple_Check(pattern) || PyTuple_GET_SIZE(pattern) > MAX_RANK) {
            PyErr_SetString(PyExc_TypeError, "an input pattern is a tuple of at most 32 ints, or None");
            return -1;
        }
        self->in[k].rank = (int)PyTuple_GET_SIZE(pattern);
        for (int a = 0; a < self->in[k].rank; ++a) {
            Py_ssize_t v = PyLong_AsSsize_t(PyTuple_GET_ITEM(pattern, a));
            if (v == -1 && PyErr_Occurred())
                return -1;
            if (v < 0 && ~v >= self->n_dims) {
                PyErr_SetString(PyExc_ValueError, "an input pattern names a dim the model does not have");
                return -1;
            }
            self->in[k].pattern[a] = v;
        }
    }
    return 0;
}

static int read_outputs(Caller *self, PyObject *outputs)
{
    self->n_outputs = (int)PyTuple_GET_SIZE(outputs);
    if (!(self->out = PyMem_Calloc((size_t)self->n_outputs, sizeof(OutputSpec)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (int k = 0; k < self->n_outputs; ++k) {
        PyObject *dtype;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(outputs, k), "O!ip", &PyArrayDescr_Type, &dtype, &self->out[k].rank,
                              &self->out[k].runtime_sized))
            return -1;
        if (self->out[k].rank < 0 || self->out[k].rank > MAX_RANK) {
            PyErr_SetString(PyExc_ValueError, "an output's rank is 0 to 32");
            return -1;
        }
        Py_INCREF(dtype);
        self->out[k].dtype = (PyArray_Descr *)dtype;
    }
    return 0;
}

static int caller_init(Caller *self, PyObject *args, PyObject *kwds)
{
    PyObject *abi, *session, *inputs, *outputs, *fallback, *fail;
    (void)kwds;
    if (!PyArg_ParseTuple(args, "O!OO!O!ipOO", &PyTuple_Type, &abi, &session, &PyTuple_Type, &inputs, &PyTuple_Type,
                          &outputs, &self->n_dims, &self->single, &fallback, &fail))
        return -1;
    if (!PyCallable_Check(fallback) || !PyCallable_Check(fail)) {
        PyErr_SetString(PyExc_TypeError, "Caller: fallback and fail are callables");
        return -1;
    }
    if (self->in || self->out) {
        PyErr_SetString(PyExc_TypeError, "a Caller is initialised once");
        return -1;
    }
    if (PyTuple_GET_SIZE(abi) != 5 || PyTuple_GET_SIZE(inputs) > MAX_TENSORS ||
        PyTuple_GET_SIZE(outputs) > MAX_TENSORS || PyTuple_GET_SIZE(outputs) < 1 || self->n_dims < 0 ||
        self->n_dims > MAX_DIMS) {
        PyErr_SetString(PyExc_ValueError,
                        "Caller(abi: 5 addresses, session, inputs, outputs (1 to 512), dims, single, fallback, fail)");
        return -1;
    }
    Py_INCREF(fallback);
    Py_INCREF(fail);
    self->fallback = fallback;
    self->fail = fail;
    self->infer = (infer_fn)address(abi, 0);
    self->shape = (shape_fn)address(abi, 1);
    self->data = (data_fn)address(abi, 2);
    self->error = (error_fn)address(abi, 3);
    self->session = PyLong_AsVoidPtr(session);
    if (!PyErr_Occurred())
        self->destroy = (destroy_fn)address(abi, 4);  /* owned from here on, even if the rest fails */
    if (PyErr_Occurred() || read_inputs(self, inputs) < 0 || read_outputs(self, outputs) < 0)
        return -1;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The dims bound by the arrays' shapes, or 0 when an array does not fit the fast path. */
static int fast_dims(Caller *self, PyObject *const *arrays, size_t *dims)
{
    Py_ssize_t bound[MAX_DIMS];
    for (int d = 0; d < self->n_dims; ++d)
        bound[d] = -1;
    for (int k = 0; k < self->n_inputs; ++k) {
        const InputSpec *spec = &self->in[k];
        PyObject *obj = arrays[k];
        if (!PyArray_CheckExact(obj) || spec->rank < 0)
            return 0;
        PyArrayObject *a = (PyArrayObject *)obj;
        if (PyArray_NDIM(a) != spec->rank || !PyArray_IS_C_CONTIGUOUS(a) ||
            (PyArray_DESCR(a) != spec->dtype && !PyArray_EquivTypes(PyArray_DESCR(a), spec->dtype)))
            return 0;
        const npy_intp *shape = PyArray_DIMS(a);
        for (int axis = 0; axis < spec->rank; ++axis) {
            Py_ssize_t want = spec->pattern[axis];
            if (want >= 0) {
                if (want != shape[axis])
                    return 0;
            } else if (bound[~want] < 0) {
                bound[~want] = shape[axis];
            } else if (bound[~want] != shape[axis]) {
                return 0;
            }
        }
    }
    for (int d = 0; d < self->n_dims; ++d)
        dims[d] = bound[d] < 0 ? 0 : (size_t)bound[d];
    return 1;
}

static PyObject *fail(Caller *self, int status)
{
    const char *text = self->error();
    if (!self->fail) {
        PyErr_SetString(PyExc_RuntimeError, text);
        return NULL;
    }
    PyObject *message = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    PyObject *exc = message ? PyObject_CallFunction(self->fail, "OO", status == 1 ? Py_True : Py_False, message) : NULL;
    Py_XDECREF(message);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *new_output(Caller *self, int k, const size_t *dims)
{
    size_t shape[MAX_RANK];
    npy_intp n[MAX_RANK];
    int status = self->shape(self->session, (size_t)k, dims, shape);
    if (status != 0)
        return fail(self, status);
    for (int a = 0; a < self->out[k].rank; ++a)
        n[a] = (npy_intp)shape[a];
    Py_INCREF(self->out[k].dtype);
    return PyArray_NewFromDescr(&PyArray_Type, self->out[k].dtype, self->out[k].rank, n, NULL, NULL, 0, NULL);
}

/* Run the model on checked arrays: allocate the outputs, call infer with the GIL released, copy out the
 * outputs sized while running. Returns the output, or the tuple of outputs. */
static PyObject *execute(Caller *self, PyObject *const *arrays, const size_t *dims)
{
    PyObject *out[MAX_TENSORS] = {NULL};
    void *buffers[2 * MAX_TENSORS];
    PyObject *result = NULL;
    int status;
    for (int k = 0; k < self->n_inputs; ++k)
        buffers[k] = PyArray_DATA((PyArrayObject *)arrays[k]);
    for (int k = 0; k < self->n_outputs; ++k) {
        buffers[self->n_inputs + k] = NULL;
        if (self->out[k].runtime_sized)
            continue;
        if (!(out[k] = new_output(self, k, dims)))
            goto done;
        buffers[self->n_inputs + k] = PyArray_DATA((PyArrayObject *)out[k]);
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    status = self->infer(self->session, dims, buffers);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyThread_release_lock(self->lock);
        fail(self, status);
        goto done;
    }
    for (int k = 0; k < self->n_outputs; ++k) {
        if (!self->out[k].runtime_sized)
            continue;
        if (!(out[k] = new_output(self, k, dims)))
            break;
        PyArrayObject *a = (PyArrayObject *)out[k];
        size_t bytes = (size_t)PyArray_NBYTES(a);
        if (bytes != 0)
            memcpy(PyArray_DATA(a), self->data(self->session, (size_t)k), bytes);
    }
    PyThread_release_lock(self->lock);
    if (PyErr_Occurred())
        goto done;
    if (self->single) {
        result = out[0];
        out[0] = NULL;
    } else if ((result = PyTuple_New(self->n_outputs))) {
        for (int k = 0; k < self->n_outputs; ++k) {
            PyTuple_SET_ITEM(result, k, out[k]);
            out[k] = NULL;
        }
    }
done:
    for (int k = 0; k < self->n_outputs; ++k)
        Py_XDECREF(out[k]);
    return result;
}

static PyObject *caller_call(Caller *self, PyObject *args, PyObject *kwds)
{
    size_t dims[MAX_DIMS];
    if ((kwds && PyDict_GET_SIZE(kwds)) || PyTuple_GET_SIZE(args) != self->n_inputs ||
        !fast_dims(self, &PyTuple_GET_ITEM(args, 0), dims)) {
        if (!self->fallback) {
            PyErr_SetString(PyExc_RuntimeError, "this Session is being destroyed");
            return NULL;
        }
        return PyObject_Call(self->fallback, args, kwds);
    }
    return execute(self, &PyTuple_GET_ITEM(args, 0), dims);
}

static PyObject *caller_run(Caller *self, PyObject *args)
{
    PyObject *values, *arrays;
    size_t dims[MAX_DIMS];
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &values, &PyTuple_Type, &arrays))
        return NULL;
    if (PyTuple_GET_SIZE(values) != self->n_dims || PyTuple_GET_SIZE(arrays) != self->n_inputs) {
        PyErr_SetString(PyExc_TypeError, "run(dims, arrays): one value per dim, one array per input");
        return NULL;
    }
    for (int d = 0; d < self->n_dims; ++d) {
        dims[d] = PyLong_AsSize_t(PyTuple_GET_ITEM(values, d));
        if (PyErr_Occurred())
            return NULL;
    }
    for (int k = 0; k < self->n_inputs; ++k) {
        PyObject *a = PyTuple_GET_ITEM(arrays, k);
        if (!PyArray_Check(a) || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)a) ||
            !PyArray_EquivTypes(PyArray_DESCR((PyArrayObject *)a), self->in[k].dtype)) {
            PyErr_SetString(PyExc_TypeError, "run(dims, arrays): the arrays are C-contiguous ndarrays of the inputs' dtypes");
            return NULL;
        }
    }
    return execute(self, &PyTuple_GET_ITEM(arrays, 0), dims);
}

static PyMethodDef caller_methods[] = {
    {"run", (PyCFunction)caller_run, METH_VARARGS, "run(dims, arrays): the outputs of checked arrays"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CallerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sofie_rdf._fastcall.Caller",
    .tp_basicsize = sizeof(Caller),
    .tp_dealloc = (destructor)caller_dealloc,
    .tp_call = (ternaryfunc)caller_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)caller_traverse,
    .tp_clear = (inquiry)caller_clear,
    .tp_doc = "Calls one native Session's C ABI on numpy arrays",
    .tp_methods = caller_methods,
    .tp_init = (initproc)caller_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcall", NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastcall(void)
{
    import_array();
    if (PyType_Ready(&CallerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&CallerType);
    if (PyModule_AddObject(m, "Caller", (PyObject *)&CallerType) < 0) {
        Py_DECREF(&CallerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
