/* The read-model rebuild's inner loop in C (ledger/projections/readmodel.py): the rows of posted vouchers, read from
 * their stored JSON and inserted into a range's SQLite image without becoming Python objects.
 *
 * It gives exactly the rows LedgerProjection._posted and ReadModel.pack_rows give, and the tests hold it to that:
 * tests/test_readmodel.py runs every test with and without it, and tests/test_readmodel_compiled.py compares the two
 * on books and on generated states. It takes only the states it can read without doubt: strict JSON whose strings
 * have no escapes, every field of the expected type, amounts of plain digits. Any other state (an escape, an upcast
 * state, a duplicated field, an amount Python's int() would read differently or refuse, NaN, deep nesting) goes to
 * the projection's own Python handler, which gives the rows or the error it always gave. A voucher's rows are
 * inserted only once all of it has been read, so a voucher handed to Python was never half inserted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <string.h>

/* -- growing buffers ------------------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t length, capacity;
} Text;

static int text_put(Text *text, const char *bytes, Py_ssize_t size) {
    if (text->length + size > text->capacity) {
        Py_ssize_t capacity = text->capacity ? text->capacity : 256;
        while (capacity < text->length + size) capacity *= 2;
        char *data = PyMem_Realloc(text->data, capacity);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        text->data = data;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, bytes, size);
    text->length += size;
    return 0;
}

/* -- strict JSON, read in place --------------------------------------------------------------------------------- */

/* What reading a state gives: its rows, a hand-over to the Python handler, or a Python error. */
enum { ERROR = -1, HAND_OVER = 0, READ = 1 };
enum { MAX_DEPTH = 64 };

typedef struct {
    const unsigned char *at, *end;
} Reader;

/* The UTF-8 bytes of a JSON string without escapes, quotes excluded. */
typedef struct {
    const char *data;
    Py_ssize_t size;
} Slice;

static void skip_space(Reader *r) {
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' || *r->at == '\r')) r->at++;
}

static int next_is(Reader *r, unsigned char c) {
    skip_space(r);
    if (r->at < r->end && *r->at == c) {
        r->at++;
        return 1;
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence at `p` (a lead byte of 0x80 or more), or 0: overlong forms,
 * surrogates and code points above U+10FFFF are refused, as Python's UTF-8 decoder refuses them. */
static int utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    int length;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) length = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0) low = 0xA0;
        if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0) low = 0x90;
        if (c == 0xF4) high = 0x8F;
    } else return 0;
    if (end - p < length || p[1] < low || p[1] > high) return 0;
    for (int i = 2; i < length; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return length;
}

static int read_string(Reader *r, Slice *slice) {
    skip_space(r);
    if (r->at >= r->end || *r->at != '"') return HAND_OVER;
    const unsigned char *start = ++r->at;
    while (r->at < r->end) {
        unsigned char c = *r->at;
        if (c == '"') {
            slice->data = (const char *)start;
            slice->size = r->at - start;
            r->at++;
            return READ;
        }
        if (c == '\\' || c < 0x20) return HAND_OVER;
        if (c < 0x80) {
            r->at++;
        } else {
            int length = utf8_length(r->at, r->end);
            if (!length) return HAND_OVER;
            r->at += length;
        }
    }
    return HAND_OVER;
}

static int skip_digits(Reader *r) {
    const unsigned char *start = r->at;
    while (r->at < r->end && *r->at >= '0' && *r->at <= '9') r->at++;
    return r->at > start;
}

static int skip_number(Reader *r) {
    if (r->at < r->end && *r->at == '-') r->at++;
    if (r->at < r->end && *r->at == '0') r->at++;
    else if (!skip_digits(r)) return HAND_OVER;
    if (r->at < r->end && *r->at == '.') {
        r->at++;
        if (!skip_digits(r)) return HAND_OVER;
    }
    if (r->at < r->end && (*r->at == 'e' || *r->at == 'E')) {
        r->at++;
        if (r->at < r->end && (*r->at == '+' || *r->at == '-')) r->at++;
        if (!skip_digits(r)) return HAND_OVER;
    }
    return READ;
}

static int skip_word(Reader *r, const char *word) {
    size_t length = strlen(word);
    if ((size_t)(r->end - r->at) < length || memcmp(r->at, word, length) != 0) return HAND_OVER;
    r->at += length;
    return READ;
}

static int skip_value(Reader *r, int depth) {
    Slice ignored;
    skip_space(r);
    if (r->at >= r->end || depth > MAX_DEPTH) return HAND_OVER;
    switch (*r->at) {
        case '"': return read_string(r, &ignored);
        case 't': return skip_word(r, "true");
        case 'f': return skip_word(r, "false");
        case 'n': return skip_word(r, "null");
        case '{':
            r->at++;
            if (next_is(r, '}')) return READ;
            do {
                if (read_string(r, &ignored) != READ || !next_is(r, ':') || skip_value(r, depth + 1) != READ)
                    return HAND_OVER;
            } while (next_is(r, ','));
            return next_is(r, '}') ? READ : HAND_OVER;
        case '[':
            r->at++;
            if (next_is(r, ']')) return READ;
            do {
                if (skip_value(r, depth + 1) != READ) return HAND_OVER;
            } while (next_is(r, ','));
            return next_is(r, ']') ? READ : HAND_OVER;
        default:
            return skip_number(r);
    }
}

/* Calls `member` for each member of the object at the reader, which reads the member's value; READ at its end. */
typedef int (*MemberReader)(Reader *r, Slice key, void *into);

static int read_object(Reader *r, MemberReader member, void *into) {
    Slice key;
    if (!next_is(r, '{')) return HAND_OVER;
    if (next_is(r, '}')) return READ;
    do {
        int status = read_string(r, &key);
        if (status != READ) return status;
        if (!next_is(r, ':')) return HAND_OVER;
        if ((status = member(r, key, into)) != READ) return status;
    } while (next_is(r, ','));
    return next_is(r, '}') ? READ : HAND_OVER;
}

static int key_is(Slice key, const char *name) {
    return (size_t)key.size == strlen(name) && memcmp(key.data, name, key.size) == 0;
}

/* -- a posted voucher's fields ----------------------------------------------------------------------------------- */

enum { MAX_APPROVAL_FIELDS = 8 };

typedef struct {
    Slice code, detail, debit, credit;
    unsigned seen;
    /* filled once the voucher is read */
    long long debit_fen, credit_fen;
    PyObject *top, *fund;  /* borrowed from the chart's top-level codes and FUND_OF_ACCOUNT */
    int is_fund, is_claim;
} Line;

typedef struct {
    Slice voucher_no, day, chart, summary, decision, contract, counterparty;
    int has_decision, has_contract, has_counterparty, closing;
    unsigned seen;
    Text tags, attachments, approvals;
    Line *lines;
    Py_ssize_t line_count, line_capacity;
    /* Approval's fields, in the order the column's text has them */
    Slice approval_fields[MAX_APPROVAL_FIELDS];
    int approval_field_count;
} Voucher;

enum {
    F_VOUCHER_NO = 1 << 0, F_DATE = 1 << 1, F_CHART = 1 << 2, F_CLOSING = 1 << 3, F_SUMMARY = 1 << 4,
    F_DECISION = 1 << 5, F_CONTRACT = 1 << 6, F_COUNTERPARTY = 1 << 7, F_TAGS = 1 << 8, F_APPROVALS = 1 << 9,
    F_ATTACHMENTS = 1 << 10, F_LINES = 1 << 11,
    F_ALL = (1 << 12) - 1,
};
enum { L_CODE = 1, L_DETAIL = 2, L_DEBIT = 4, L_CREDIT = 8, L_ALL = 15 };

static int first_time(unsigned *seen, unsigned field) {
    if (*seen & field) return 0;  /* a repeated field: json.loads keeps the last, this reader hands it over */
    *seen |= field;
    return 1;
}

static int read_nullable_string(Reader *r, Slice *slice, int *present) {
    skip_space(r);
    if (r->at < r->end && *r->at == 'n') {
        *present = 0;
        return skip_word(r, "null");
    }
    *present = 1;
    return read_string(r, slice);
}

/* A JSON array of strings as the column's text: json.dumps(..., ensure_ascii=False) of it, which for strings
 * without escapes or control characters is each string's bytes between quotes. */
static int read_strings_as_text(Reader *r, Text *text) {
    Slice item;
    text->length = 0;
    if (!next_is(r, '[')) return HAND_OVER;
    if (next_is(r, ']')) return text_put(text, "[]", 2) < 0 ? ERROR : READ;
    if (text_put(text, "[", 1) < 0) return ERROR;
    int first = 1;
    do {
        int status = read_string(r, &item);
        if (status != READ) return status;
        if ((!first && text_put(text, ", ", 2) < 0) || text_put(text, "\"", 1) < 0
            || text_put(text, item.data, item.size) < 0 || text_put(text, "\"", 1) < 0)
            return ERROR;
        first = 0;
    } while (next_is(r, ','));
    if (!next_is(r, ']')) return HAND_OVER;
    return text_put(text, "]", 1) < 0 ? ERROR : READ;
}

typedef struct {
    Voucher *voucher;
    Slice values[MAX_APPROVAL_FIELDS];
    unsigned seen;
} Approval;

static int read_approval_member(Reader *r, Slice key, void *into) {
    Approval *approval = into;
    for (int f = 0; f < approval->voucher->approval_field_count; f++) {
        Slice name = approval->voucher->approval_fields[f];
        if (key.size == name.size && memcmp(key.data, name.data, key.size) == 0) {
            if (!first_time(&approval->seen, 1u << f)) return HAND_OVER;
            return read_string(r, &approval->values[f]);
        }
    }
    return skip_value(r, 2);
}

/* The approvals as the column's text: each as _json_approvals writes it, in Approval's field order. */
static int read_approvals_as_text(Reader *r, Voucher *voucher) {
    Text *text = &voucher->approvals;
    text->length = 0;
    if (!next_is(r, '[')) return HAND_OVER;
    if (next_is(r, ']')) return text_put(text, "[]", 2) < 0 ? ERROR : READ;
    if (text_put(text, "[", 1) < 0) return ERROR;
    unsigned every = (1u << voucher->approval_field_count) - 1;
    int first = 1;
    do {
        Approval approval = {.voucher = voucher};
        int status = read_object(r, read_approval_member, &approval);
        if (status != READ) return status;
        if (approval.seen != every) return HAND_OVER;
        if ((!first && text_put(text, ", ", 2) < 0) || text_put(text, "{", 1) < 0) return ERROR;
        for (int f = 0; f < voucher->approval_field_count; f++) {
            Slice name = voucher->approval_fields[f], value = approval.values[f];
            if ((f && text_put(text, ", ", 2) < 0) || text_put(text, "\"", 1) < 0
                || text_put(text, name.data, name.size) < 0 || text_put(text, "\": \"", 4) < 0
                || text_put(text, value.data, value.size) < 0 || text_put(text, "\"", 1) < 0)
                return ERROR;
        }
        if (text_put(text, "}", 1) < 0) return ERROR;
        first = 0;
    } while (next_is(r, ','));
    if (!next_is(r, ']')) return HAND_OVER;
    return text_put(text, "]", 1) < 0 ? ERROR : READ;
}

static int read_line_member(Reader *r, Slice key, void *into) {
    Line *line = into;
    if (key_is(key, "code")) return first_time(&line->seen, L_CODE) ? read_string(r, &line->code) : HAND_OVER;
    if (key_is(key, "detail")) return first_time(&line->seen, L_DETAIL) ? read_string(r, &line->detail) : HAND_OVER;
    if (key_is(key, "debit")) return first_time(&line->seen, L_DEBIT) ? read_string(r, &line->debit) : HAND_OVER;
    if (key_is(key, "credit")) return first_time(&line->seen, L_CREDIT) ? read_string(r, &line->credit) : HAND_OVER;
    return skip_value(r, 2);
}

static int read_lines(Reader *r, Voucher *voucher) {
    voucher->line_count = 0;
    if (!next_is(r, '[')) return HAND_OVER;
    if (next_is(r, ']')) return READ;
    do {
        if (voucher->line_count == voucher->line_capacity) {
            Py_ssize_t capacity = voucher->line_capacity ? 2 * voucher->line_capacity : 16;
            Line *lines = PyMem_Realloc(voucher->lines, capacity * sizeof(Line));
            if (lines == NULL) {
                PyErr_NoMemory();
                return ERROR;
            }
            voucher->lines = lines;
            voucher->line_capacity = capacity;
        }
        Line *line = &voucher->lines[voucher->line_count++];
        memset(line, 0, sizeof *line);
        int status = read_object(r, read_line_member, line);
        if (status != READ) return status;
        if (line->seen != L_ALL) return HAND_OVER;
    } while (next_is(r, ','));
    return next_is(r, ']') ? READ : HAND_OVER;
}

static int read_voucher_member(Reader *r, Slice key, void *into) {
    Voucher *v = into;
    unsigned *seen = &v->seen;
    switch (key.size ? key.data[0] : 0) {
        case '_':
            if (key_is(key, "_v")) return HAND_OVER;  /* an older version's state: Python upcasts it */
            break;
        case 'a':
            if (key_is(key, "approvals"))
                return first_time(seen, F_APPROVALS) ? read_approvals_as_text(r, v) : HAND_OVER;
            if (key_is(key, "attachments"))
                return first_time(seen, F_ATTACHMENTS) ? read_strings_as_text(r, &v->attachments) : HAND_OVER;
            break;
        case 'c':
            if (key_is(key, "chart")) return first_time(seen, F_CHART) ? read_string(r, &v->chart) : HAND_OVER;
            if (key_is(key, "closing")) {
                if (!first_time(seen, F_CLOSING)) return HAND_OVER;
                skip_space(r);
                v->closing = r->at < r->end && *r->at == 't';
                return skip_word(r, v->closing ? "true" : "false");
            }
            if (key_is(key, "contract"))
                return first_time(seen, F_CONTRACT) ? read_nullable_string(r, &v->contract, &v->has_contract) : HAND_OVER;
            if (key_is(key, "counterparty"))
                return first_time(seen, F_COUNTERPARTY)
                    ? read_nullable_string(r, &v->counterparty, &v->has_counterparty) : HAND_OVER;
            break;
        case 'd':
            if (key_is(key, "date")) return first_time(seen, F_DATE) ? read_string(r, &v->day) : HAND_OVER;
            if (key_is(key, "decision"))
                return first_time(seen, F_DECISION) ? read_nullable_string(r, &v->decision, &v->has_decision) : HAND_OVER;
            break;
        case 'l':
            if (key_is(key, "lines")) return first_time(seen, F_LINES) ? read_lines(r, v) : HAND_OVER;
            break;
        case 's':
            if (key_is(key, "summary")) return first_time(seen, F_SUMMARY) ? read_string(r, &v->summary) : HAND_OVER;
            break;
        case 't':
            if (key_is(key, "tags")) return first_time(seen, F_TAGS) ? read_strings_as_text(r, &v->tags) : HAND_OVER;
            break;
        case 'v':
            if (key_is(key, "voucher_no"))
                return first_time(seen, F_VOUCHER_NO) ? read_string(r, &v->voucher_no) : HAND_OVER;
            break;
    }
    return skip_value(r, 1);
}

static int read_voucher(Voucher *voucher, const char *state, Py_ssize_t size) {
    Reader r = {(const unsigned char *)state, (const unsigned char *)state + size};
    voucher->seen = 0;
    int status = read_object(&r, read_voucher_member, voucher);
    if (status != READ) return status;
    skip_space(&r);
    return r.at == r.end && voucher->seen == F_ALL ? READ : HAND_OVER;
}

/* _fen for the amounts it reads without doubt ("-12.30": an optional minus, at most 15 digits, a point, two
 * digits); 0 for any other text, which the Python handler then reads or refuses. */
static int fen(Slice amount, long long *out) {
    if (amount.size < 3 || amount.data[amount.size - 3] != '.') return 0;
    const char *s = amount.data, *end = s + amount.size - 3;
    int negative = *s == '-', digits = 0;
    long long value = 0;
    for (const char *p = s + negative; p < end; p++) {
        if (*p < '0' || *p > '9' || ++digits > 15) return 0;
        value = value * 10 + (*p - '0');
    }
    for (const char *p = end + 1; p < s + amount.size; p++) {
        if (*p < '0' || *p > '9') return 0;
        value = value * 10 + (*p - '0');
    }
    *out = negative ? -value : value;
    return 1;
}

/* -- the image a range's rows go into -------------------------------------------------------------------------- */

enum { VOUCHER_ROWS, LINE_ROWS, CLAIM_ROWS, RECEIPT_ROWS, POSTED_TABLE_COUNT };
static const int posted_columns[POSTED_TABLE_COUNT] = {20, 11, 6, 4};

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    sqlite3_stmt *posted[POSTED_TABLE_COUNT];
} Image;

static PyObject *sqlite_error(sqlite3 *db, const char *what) {
    PyErr_Format(PyExc_RuntimeError, "read-model image: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return NULL;
}

static int image_open(Image *image) {
    if (image->db == NULL) {
        PyErr_SetString(PyExc_ValueError, "read-model image: already serialized");
        return -1;
    }
    return 0;
}

static void image_close(Image *image) {
    for (int i = 0; i < POSTED_TABLE_COUNT; i++) {
        sqlite3_finalize(image->posted[i]);
        image->posted[i] = NULL;
    }
    sqlite3_close(image->db);
    image->db = NULL;
}

static int image_init(Image *image, PyObject *args, PyObject *kwargs) {
    PyObject *creates;
    static char *keywords[] = {"creates", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!:Image", keywords, &PyTuple_Type, &creates)) return -1;
    image_close(image);
    /* one thread uses an image at a time (the GIL holder): no mutex on every call */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(":memory:", &image->db, flags, NULL) != SQLITE_OK) goto failed;
    if (sqlite3_exec(image->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto failed;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(creates); i++) {
        const char *sql = PyUnicode_AsUTF8(PyTuple_GET_ITEM(creates, i));
        if (sql == NULL) return -1;
        if (sqlite3_exec(image->db, sql, NULL, NULL, NULL) != SQLITE_OK) goto failed;
    }
    return 0;
failed:
    sqlite_error(image->db, "create");
    image_close(image);
    return -1;
}

static void image_dealloc(Image *image) {
    image_close(image);
    Py_TYPE(image)->tp_free((PyObject *)image);
}

static int step(sqlite3 *db, sqlite3_stmt *statement) {
    int status = sqlite3_step(statement);
    sqlite3_reset(statement);
    if (status != SQLITE_DONE) {
        sqlite_error(db, "insert");
        return -1;
    }
    return 0;
}

/* Binds one row's values as Python's sqlite3 module binds those of their types (None, int, float, str, bytes), with
 * its errors for others, and inserts it. */
static int insert_row(sqlite3 *db, sqlite3_stmt *statement, PyObject *row) {
    if (!PyTuple_Check(row)) {
        PyErr_Format(PyExc_TypeError, "a row must be a tuple, not %.100s", Py_TYPE(row)->tp_name);
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(row);
    if (count != sqlite3_bind_parameter_count(statement)) {
        PyErr_Format(PyExc_ValueError, "a row of %zd values for a statement of %d", count,
                     sqlite3_bind_parameter_count(statement));
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyTuple_GET_ITEM(row, i);
        int column = (int)i + 1, status;
        if (value == Py_None) {
            status = sqlite3_bind_null(statement, column);
        } else if (PyLong_Check(value)) {
            int overflow;
            long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (overflow) {
                PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to SQLite INTEGER");
                return -1;
            }
            status = sqlite3_bind_int64(statement, column, number);
        } else if (PyUnicode_Check(value)) {
            Py_ssize_t size;
            const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
            if (utf8 == NULL) return -1;
            status = sqlite3_bind_text64(statement, column, utf8, (sqlite3_uint64)size, SQLITE_STATIC, SQLITE_UTF8);
        } else if (PyFloat_Check(value)) {
            status = sqlite3_bind_double(statement, column, PyFloat_AS_DOUBLE(value));
        } else if (PyBytes_Check(value)) {
            status = sqlite3_bind_blob64(statement, column, PyBytes_AS_STRING(value),
                                         (sqlite3_uint64)PyBytes_GET_SIZE(value), SQLITE_STATIC);
        } else {
            PyObject *sqlite3_module = PyImport_ImportModule("sqlite3");
            PyObject *error = sqlite3_module ? PyObject_GetAttrString(sqlite3_module, "ProgrammingError") : NULL;
            if (error != NULL)
                PyErr_Format(error, "Error binding parameter %d: type '%s' is not supported", column,
                             Py_TYPE(value)->tp_name);
            Py_XDECREF(error);
            Py_XDECREF(sqlite3_module);
            return -1;
        }
        if (status != SQLITE_OK) {
            sqlite_error(db, "bind");
            return -1;
        }
    }
    return step(db, statement);
}

static PyObject *image_insert(Image *image, PyObject *args) {
    const char *sql;
    PyObject *rows;
    if (!PyArg_ParseTuple(args, "sO!:insert", &sql, &PyList_Type, &rows) || image_open(image) < 0) return NULL;
    sqlite3_stmt *statement;
    if (sqlite3_prepare_v2(image->db, sql, -1, &statement, NULL) != SQLITE_OK) return sqlite_error(image->db, "prepare");
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        if (insert_row(image->db, statement, PyList_GET_ITEM(rows, i)) < 0) {
            sqlite3_finalize(statement);
            return NULL;
        }
    }
    sqlite3_finalize(statement);
    Py_RETURN_NONE;
}

static PyObject *image_serialize(Image *image, PyObject *unused) {
    if (image_open(image) < 0) return NULL;
    PyObject *bytes = NULL;
    if (sqlite3_exec(image->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite_error(image->db, "commit");
    } else {
        sqlite3_int64 size = 0;
        unsigned char *serialized = sqlite3_serialize(image->db, "main", &size, 0);
        if (serialized == NULL) {
            PyErr_NoMemory();
        } else {
            bytes = PyBytes_FromStringAndSize((const char *)serialized, (Py_ssize_t)size);
            sqlite3_free(serialized);
        }
    }
    image_close(image);
    return bytes;
}

static PyMethodDef image_methods[] = {
    {"insert", (PyCFunction)image_insert, METH_VARARGS,
     "insert(sql, rows): run the insert statement for each row (a tuple of None, int, float, str and bytes values)."},
    {"serialize", (PyCFunction)image_serialize, METH_NOARGS,
     "The image as a serialized SQLite database; the image is closed."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ImageType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ledger.projections._rows.Image",
    .tp_doc = "Image(creates): an in-memory SQLite database made by the CREATE statements, in one transaction until "
              "it is serialized.",
    .tp_basicsize = sizeof(Image),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)image_init,
    .tp_dealloc = (destructor)image_dealloc,
    .tp_methods = image_methods,
};

/* -- a posted voucher's rows ----------------------------------------------------------------------------------- */

/* What a line's account code gives, kept for the codes met in a call (a village uses a few dozen): its top-level
 * code and fund (strong references; the fund NULL for an account that is not a fund), whether it is a claim. */
enum { CODE_SLOTS = 128, MOST_CODES = 96, LONGEST_CODE = 23 };

typedef struct {
    char code[LONGEST_CODE];
    Py_ssize_t size;  /* 0 for a free slot */
    PyObject *top, *fund;
    int is_claim, is_cash;
} Account;

typedef struct {
    sqlite3 *db;
    sqlite3_stmt **statements;
    /* the projection's state: dicts it keeps between events */
    PyObject *funds, *categories, *references, *voucher_nos, *tops_by_chart, *top_code;
    /* its constants */
    PyObject *fund_of_account, *claim_accounts, *closing_kind, *voucher_kind, *cash;
    /* the last chart and period met, as str: vouchers come in date order */
    PyObject *chart, *period;
    Account accounts[CODE_SLOTS];  /* of the last chart met */
    int account_count;
    Voucher voucher;
} Projecting;

static void forget_accounts(Projecting *p) {
    for (int i = 0; i < CODE_SLOTS; i++) {
        Py_CLEAR(p->accounts[i].top);
        Py_CLEAR(p->accounts[i].fund);
        p->accounts[i].size = 0;
    }
    p->account_count = 0;
}

/* The slot of a code: where it is kept, or the free slot where it would go; NULL if it cannot be kept. */
static Account *account_slot(Projecting *p, Slice code) {
    if (code.size == 0 || code.size > LONGEST_CODE) return NULL;
    unsigned hash = 2166136261u;  /* FNV-1a */
    for (Py_ssize_t i = 0; i < code.size; i++) hash = (hash ^ (unsigned char)code.data[i]) * 16777619u;
    for (int probe = 0; probe < CODE_SLOTS; probe++) {
        Account *slot = &p->accounts[(hash + probe) % CODE_SLOTS];
        if (slot->size == 0 || (slot->size == code.size && memcmp(slot->code, code.data, code.size) == 0)) return slot;
    }
    return NULL;
}

static PyObject *income_str, *expense_str;  /* the directions of rm_fund_category, interned at import */

static PyObject *slice_str(Slice slice) {
    return PyUnicode_DecodeUTF8(slice.data, slice.size, NULL);  /* well-formed: read_string checked it */
}

static PyObject *optional_str(Slice slice, int present) {
    return present ? slice_str(slice) : Py_NewRef(Py_None);
}

/* The str of a slice, kept in *last while the slices met stay equal to it; *changed tells whether it was kept. */
static PyObject *kept_str(PyObject **last, Slice slice, int *changed) {
    *changed = 0;
    if (*last != NULL) {
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(*last, &size);
        if (utf8 != NULL && size == slice.size && memcmp(utf8, slice.data, size) == 0) return *last;
        Py_CLEAR(*last);
    }
    *changed = 1;
    return *last = slice_str(slice);
}

static int bind_slice(sqlite3_stmt *statement, int column, Slice slice) {
    return sqlite3_bind_text64(statement, column, slice.data, (sqlite3_uint64)slice.size, SQLITE_STATIC, SQLITE_UTF8);
}

static int bind_text(sqlite3_stmt *statement, int column, const Text *text) {
    return sqlite3_bind_text64(statement, column, text->data, (sqlite3_uint64)text->length, SQLITE_STATIC,
                               SQLITE_UTF8);
}

static int bind_str(sqlite3_stmt *statement, int column, PyObject *str) {
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(str, &size);
    if (utf8 == NULL) return SQLITE_ERROR;
    return sqlite3_bind_text64(statement, column, utf8, (sqlite3_uint64)size, SQLITE_STATIC, SQLITE_UTF8);
}

/* An absent reference is bound as 0, which the insert statement's NULLIF makes NULL (ReadModel.absent). */
static int bind_optional(sqlite3_stmt *statement, int column, Slice slice, int present) {
    return present ? bind_slice(statement, column, slice) : sqlite3_bind_int64(statement, column, 0);
}

/* sums[index] += amount, for a list of int sums. */
static int add_at(PyObject *sums, Py_ssize_t index, long long amount) {
    if (amount == 0) return 0;
    PyObject *addend = PyLong_FromLongLong(amount);
    if (addend == NULL) return -1;
    PyObject *sum = PyNumber_Add(PyList_GET_ITEM(sums, index), addend);
    Py_DECREF(addend);
    return sum == NULL ? -1 : PyList_SetItem(sums, index, sum);
}

/* categories[period, direction, top] += amount (a defaultdict(int) in Python). */
static int add_category(PyObject *categories, PyObject *period, PyObject *direction, PyObject *top, long long amount) {
    PyObject *key = PyTuple_Pack(3, period, direction, top);
    if (key == NULL) return -1;
    PyObject *addend = PyLong_FromLongLong(amount), *sum = NULL;
    if (addend != NULL) {
        PyObject *current = PyDict_GetItemWithError(categories, key);
        if (current != NULL) sum = PyNumber_Add(current, addend);
        else if (!PyErr_Occurred()) sum = Py_NewRef(addend);
    }
    int status = sum == NULL ? -1 : PyDict_SetItem(categories, key, sum);
    Py_XDECREF(sum);
    Py_XDECREF(addend);
    Py_DECREF(key);
    return status;
}

/* The fund sums of (period, fund), created as five zeros (FUND_COLUMNS) when first met; borrowed. */
static PyObject *fund_sums(PyObject *funds, PyObject *period, PyObject *fund) {
    PyObject *key = PyTuple_Pack(2, period, fund);
    if (key == NULL) return NULL;
    PyObject *sums = PyDict_GetItemWithError(funds, key);
    if (sums != NULL && (!PyList_CheckExact(sums) || PyList_GET_SIZE(sums) != 5)) {
        PyErr_SetString(PyExc_TypeError, "project_posted: fund sums must be lists of five");
        sums = NULL;
    } else if (sums == NULL && !PyErr_Occurred()) {
        sums = Py_BuildValue("[iiiii]", 0, 0, 0, 0, 0);
        if (sums != NULL) {
            int stored = PyDict_SetItem(funds, key, sums);
            Py_DECREF(sums);  /* the dict holds it */
            if (stored < 0) sums = NULL;
        }
    }
    Py_DECREF(key);
    return sums;
}

/* What an account code gives (`found`, with new references; emptied on an error), as LedgerProjection._voucher
 * finds it: the chart's top-level code, through the projection's _top_code for a code not met before in this
 * process. */
static int account_of(Projecting *p, PyObject *chart, PyObject *tops, PyObject *claim_codes, Slice code_slice,
                      Account *found) {
    memset(found, 0, sizeof *found);
    PyObject *code = slice_str(code_slice);
    if (code == NULL) return -1;
    PyObject *top = PyDict_GetItemWithError(tops, code);
    if (top != NULL) {
        Py_INCREF(top);
    } else if (!PyErr_Occurred()) {
        top = PyObject_CallFunctionObjArgs(p->top_code, chart, code, NULL);  /* which keeps it in `tops` */
    }
    Py_DECREF(code);
    if (top == NULL) return -1;
    found->top = top;
    PyObject *fund = PyDict_GetItemWithError(p->fund_of_account, top);
    if (fund == NULL && PyErr_Occurred()) goto failed;
    found->fund = Py_XNewRef(fund);
    if ((found->is_claim = PySequence_Contains(claim_codes, top)) < 0) goto failed;
    if (fund != NULL && (found->is_cash = PyObject_RichCompareBool(fund, p->cash, Py_EQ)) < 0) goto failed;
    return 0;
failed:
    Py_CLEAR(found->top);
    Py_CLEAR(found->fund);
    return -1;
}

#define BIND(call) do { if ((call) != SQLITE_OK) goto bind_failed; } while (0)

/* The rows of one posted voucher: what LedgerProjection._posted gives for it (READ), or HAND_OVER, or ERROR. */
static int project_voucher(Projecting *p, PyObject *row, const char *state, Py_ssize_t size) {
    Voucher *v = &p->voucher;
    int status = read_voucher(v, state, size);
    if (status != READ) return status;
    if (v->day.size < 7) return HAND_OVER;
    for (int i = 0; i < 7; i++)
        if ((unsigned char)v->day.data[i] >= 0x80) return HAND_OVER;  /* day[:7] counts characters */
    int new_chart;
    PyObject *chart = kept_str(&p->chart, v->chart, &new_chart);
    if (chart == NULL) return ERROR;
    if (new_chart) forget_accounts(p);
    PyObject *claim_codes = PyDict_GetItemWithError(p->claim_accounts, chart);
    if (claim_codes == NULL) return PyErr_Occurred() ? ERROR : HAND_OVER;
    PyObject *tops = PyDict_GetItemWithError(p->tops_by_chart, chart);
    if (tops == NULL) {  /* the chart's first voucher: its codes' top-level codes are kept from now on */
        if (PyErr_Occurred() || (tops = PyDict_New()) == NULL) return ERROR;
        int kept = PyDict_SetItem(p->tops_by_chart, chart, tops);
        Py_DECREF(tops);  /* the dict holds it */
        if (kept < 0) return ERROR;
    }
    if (!PyDict_CheckExact(tops)) return HAND_OVER;

    long long receipts = 0, payments = 0, cash_payments = 0;
    Py_ssize_t fund_lines = 0;
    for (Py_ssize_t i = 0; i < v->line_count; i++) {
        Line *line = &v->lines[i];
        Account *account = account_slot(p, line->code);
        if (account == NULL) return HAND_OVER;  /* a code no chart has: longer than any, or more codes than any */
        if (account->size == 0) {
            if (p->account_count == MOST_CODES) return HAND_OVER;
            if (account_of(p, chart, tops, claim_codes, line->code, account) < 0) return ERROR;
            memcpy(account->code, line->code.data, line->code.size);
            account->size = line->code.size;
            p->account_count++;
        }
        line->top = account->top;
        line->fund = account->fund;
        line->is_fund = account->fund != NULL;
        line->is_claim = account->is_claim;
        if (!PyUnicode_Check(line->top)) return HAND_OVER;
        if (!fen(line->debit, &line->debit_fen) || !fen(line->credit, &line->credit_fen)) return HAND_OVER;
        if (line->is_fund) {
            fund_lines++;
            if (__builtin_add_overflow(receipts, line->debit_fen, &receipts)
                || __builtin_add_overflow(payments, line->credit_fen, &payments)
                || (account->is_cash && __builtin_add_overflow(cash_payments, line->credit_fen, &cash_payments)))
                return HAND_OVER;
        }
    }

    /* Everything is read: from here on the rows are inserted. */
    int is_transfer = fund_lines == v->line_count, moves_funds = !is_transfer;
    PyObject *kind = v->closing ? p->closing_kind : p->voucher_kind;
    PyObject *period = NULL;
    if (fund_lines || (moves_funds && (receipts || payments))) {
        Slice month = {v->day.data, 7};
        int new_period;
        if ((period = kept_str(&p->period, month, &new_period)) == NULL) return ERROR;
    }
    long long notification_id = PyLong_AsLongLong(PyTuple_GET_ITEM(row, 0));
    if (notification_id == -1 && PyErr_Occurred()) return ERROR;
    /* the voucher's first event, whose number a mark of its reversal names it by (LedgerProjection._voucher_nos) */
    int overflow = 0;
    PyObject *version = PyTuple_GET_ITEM(row, 2);
    int is_first = PyLong_CheckExact(version) && PyLong_AsLongAndOverflow(version, &overflow) == 1 && !overflow;
    sqlite3_stmt *s = p->statements[VOUCHER_ROWS];
    BIND(bind_slice(s, 1, v->voucher_no));
    BIND(bind_str(s, 2, PyTuple_GET_ITEM(row, 1)));
    BIND(sqlite3_bind_int64(s, 3, notification_id));
    BIND(bind_slice(s, 4, v->day));
    BIND(bind_slice(s, 5, (Slice){v->day.data, 7}));
    BIND(bind_slice(s, 6, v->chart));
    BIND(bind_str(s, 7, kind));
    BIND(bind_slice(s, 8, v->summary));
    BIND(sqlite3_bind_int64(s, 9, 0));
    BIND(sqlite3_bind_int64(s, 10, 0));
    BIND(bind_optional(s, 11, v->decision, v->has_decision));
    BIND(bind_optional(s, 12, v->contract, v->has_contract));
    BIND(bind_optional(s, 13, v->counterparty, v->has_counterparty));
    BIND(bind_text(s, 14, &v->tags));
    BIND(bind_text(s, 15, &v->approvals));
    BIND(bind_text(s, 16, &v->attachments));
    BIND(sqlite3_bind_int64(s, 17, is_transfer));
    BIND(sqlite3_bind_int64(s, 18, moves_funds ? receipts : 0));
    BIND(sqlite3_bind_int64(s, 19, moves_funds ? payments : 0));
    BIND(sqlite3_bind_int64(s, 20, moves_funds ? cash_payments : 0));
    if (step(p->db, s) < 0) return ERROR;

    PyObject *voucher_no = slice_str(v->voucher_no);
    PyObject *references = voucher_no ? Py_BuildValue(
        "(NNN)", optional_str(v->decision, v->has_decision), optional_str(v->contract, v->has_contract),
        optional_str(v->counterparty, v->has_counterparty)) : NULL;
    if (references != NULL) PyObject_GC_UnTrack(references);  /* str and None only: no cycle to look for */
    int stored = references ? PyDict_SetItem(p->references, voucher_no, references) : -1;
    Py_XDECREF(references);
    if (stored == 0 && is_first) stored = PyDict_SetItem(p->voucher_nos, PyTuple_GET_ITEM(row, 1), voucher_no);
    Py_XDECREF(voucher_no);
    if (stored < 0) return ERROR;

    for (Py_ssize_t i = 0; i < v->line_count; i++) {
        Line *line = &v->lines[i];
        s = p->statements[LINE_ROWS];
        BIND(bind_slice(s, 1, v->voucher_no));
        BIND(sqlite3_bind_int64(s, 2, i + 1));
        BIND(bind_slice(s, 3, v->day));
        BIND(bind_slice(s, 4, v->chart));
        BIND(bind_str(s, 5, kind));
        BIND(bind_slice(s, 6, line->code));
        BIND(bind_str(s, 7, line->top));
        BIND(bind_slice(s, 8, line->detail));
        BIND(sqlite3_bind_int64(s, 9, line->debit_fen));
        BIND(sqlite3_bind_int64(s, 10, line->credit_fen));
        BIND(line->is_fund ? bind_str(s, 11, line->fund) : sqlite3_bind_int64(s, 11, 0));
        if (step(p->db, s) < 0) return ERROR;
        if (line->is_fund) {
            PyObject *sums = fund_sums(p->funds, period, line->fund);
            if (sums == NULL || add_at(sums, is_transfer ? 3 : 1, line->debit_fen) < 0
                || add_at(sums, is_transfer ? 4 : 2, line->credit_fen) < 0)
                return ERROR;
        }
        if (line->is_claim) {
            s = p->statements[CLAIM_ROWS];
            BIND(bind_slice(s, 1, v->voucher_no));
            BIND(sqlite3_bind_int64(s, 2, i + 1));
            BIND(bind_slice(s, 3, v->day));
            BIND(bind_str(s, 4, line->top));
            BIND(bind_slice(s, 5, line->detail));
            BIND(sqlite3_bind_int64(s, 6, line->debit_fen - line->credit_fen));
            if (step(p->db, s) < 0) return ERROR;
        }
    }
    if (moves_funds && (receipts || payments)) {
        /* income and expense by the counter-account of the fund movement, as LedgerProjection._categories */
        for (Py_ssize_t i = 0; i < v->line_count; i++) {
            Line *line = &v->lines[i];
            if (line->is_fund) continue;
            long long net = line->debit_fen - line->credit_fen;  /* amounts of at most 17 digits: no overflow */
            int income = payments && !receipts ? 0 : receipts && !payments ? 1 : -net > 0;
            if (add_category(p->categories, period, income ? income_str : expense_str, line->top, income ? -net : net) < 0)
                return ERROR;
        }
    }
    if (v->has_contract && v->contract.size && receipts && !is_transfer) {
        s = p->statements[RECEIPT_ROWS];
        BIND(bind_slice(s, 1, v->voucher_no));
        BIND(bind_slice(s, 2, v->contract));
        BIND(bind_slice(s, 3, v->day));
        BIND(sqlite3_bind_int64(s, 4, receipts));
        if (step(p->db, s) < 0) return ERROR;
    }
    return READ;
bind_failed:
    if (!PyErr_Occurred()) sqlite_error(p->db, "bind");
    return ERROR;
}

static int prepare_posted(Image *image, PyObject *inserts) {
    if (image->posted[0] != NULL) return 0;
    if (PyTuple_GET_SIZE(inserts) != POSTED_TABLE_COUNT) {
        PyErr_SetString(PyExc_ValueError, "project_posted: one insert statement for each of the four tables");
        return -1;
    }
    for (int i = 0; i < POSTED_TABLE_COUNT; i++) {
        const char *sql = PyUnicode_AsUTF8(PyTuple_GET_ITEM(inserts, i));
        if (sql == NULL) return -1;
        if (sqlite3_prepare_v2(image->db, sql, -1, &image->posted[i], NULL) != SQLITE_OK) {
            sqlite_error(image->db, "prepare");
            return -1;
        }
        if (sqlite3_bind_parameter_count(image->posted[i]) != posted_columns[i]) {
            PyErr_Format(PyExc_ValueError, "project_posted: insert statement %d has %d parameters, not %d", i,
                         sqlite3_bind_parameter_count(image->posted[i]), posted_columns[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *project_posted(PyObject *module, PyObject *args) {
    PyObject *rows, *topic, *process, *inserts, *state, *constants, *approval_fields;
    Image *image;
    Projecting p = {0};
    if (!PyArg_ParseTuple(args, "O!UOO!O!O!O!:project_posted", &PyList_Type, &rows, &topic, &process, &ImageType,
                          &image, &PyTuple_Type, &inserts, &PyTuple_Type, &state, &PyTuple_Type, &constants)
        || !PyArg_ParseTuple(state, "O!O!O!O!O!O:project_posted state", &PyDict_Type, &p.funds, &PyDict_Type,
                             &p.categories, &PyDict_Type, &p.references, &PyDict_Type, &p.voucher_nos, &PyDict_Type,
                             &p.tops_by_chart, &p.top_code)
        || !PyArg_ParseTuple(constants, "O!O!O!UUU:project_posted constants", &PyDict_Type, &p.fund_of_account,
                             &PyDict_Type, &p.claim_accounts, &PyTuple_Type, &approval_fields, &p.closing_kind,
                             &p.voucher_kind, &p.cash)
        || image_open(image) < 0 || prepare_posted(image, inserts) < 0)
        return NULL;
    if (PyTuple_GET_SIZE(approval_fields) > MAX_APPROVAL_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "project_posted: too many approval fields");
        return NULL;
    }
    p.voucher.approval_field_count = (int)PyTuple_GET_SIZE(approval_fields);
    for (int f = 0; f < p.voucher.approval_field_count; f++) {
        Slice *name = &p.voucher.approval_fields[f];
        name->data = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(approval_fields, f), &name->size);
        if (name->data == NULL) return NULL;
    }
    p.db = image->db;
    p.statements = image->posted;
    Py_ssize_t projected = 0, count = PyList_GET_SIZE(rows);
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        int status = HAND_OVER;
        if (PyTuple_CheckExact(row) && PyTuple_GET_SIZE(row) == 5 && PyLong_CheckExact(PyTuple_GET_ITEM(row, 0))
            && PyUnicode_Check(PyTuple_GET_ITEM(row, 1)) && PyUnicode_Check(PyTuple_GET_ITEM(row, 3))
            && PyBytes_Check(PyTuple_GET_ITEM(row, 4)) && PyUnicode_Compare(PyTuple_GET_ITEM(row, 3), topic) == 0) {
            PyObject *stored = PyTuple_GET_ITEM(row, 4);
            status = project_voucher(&p, row, PyBytes_AS_STRING(stored), PyBytes_GET_SIZE(stored));
        }
        if (status == ERROR) goto done;
        if (status == READ) {
            projected++;
            continue;
        }
        if (!PyTuple_Check(row)) {
            PyErr_Format(PyExc_TypeError, "project_posted: a row must be a tuple, not %.100s", Py_TYPE(row)->tp_name);
            goto done;
        }
        PyObject *handled = PyObject_Call(process, row, NULL);
        if (handled == NULL) goto done;
        Py_DECREF(handled);
    }
    result = PyLong_FromSsize_t(projected);
done:
    forget_accounts(&p);
    Py_XDECREF(p.chart);
    Py_XDECREF(p.period);
    PyMem_Free(p.voucher.tags.data);
    PyMem_Free(p.voucher.attachments.data);
    PyMem_Free(p.voucher.approvals.data);
    PyMem_Free(p.voucher.lines);
    return result;
}

/* -- the module ------------------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"project_posted", project_posted, METH_VARARGS,
     "project_posted(rows, topic, process, image, inserts, state, constants) -> how many rows of `topic` it\n"
     "inserted into the image; it calls process(*row) for every other row, in order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {PyModuleDef_HEAD_INIT, .m_name = "_rows", .m_size = -1,
                                               .m_methods = methods};

PyMODINIT_FUNC PyInit__rows(void) {
    if (PyType_Ready(&ImageType) < 0) return NULL;
    if ((income_str = PyUnicode_InternFromString("income")) == NULL
        || (expense_str = PyUnicode_InternFromString("expense")) == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "Image", (PyObject *)&ImageType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
