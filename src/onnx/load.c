/*
 * load.c - from bytes to a prepared graph: read and bound the file, unpack it with protobuf-c
 * (through a budgeted allocator), resolve names to values, order the nodes, bind each to the op
 * table, then fold constants, fuse and plan when each value dies (prepare.c).
 */
#include "onnx_internal.h"

#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_FILE_BYTES ((int64_t)4 << 30)
#define DEFAULT_MAX_NODES 1000000
#define DEFAULT_MAX_NESTING 64

/* ---------------------------------------------------------------- a budgeted allocator
 * protobuf-c's unpacked structs can be much larger than their bytes (an empty NodeProto is two
 * bytes on the wire and a hundred in memory), so allocations are capped in proportion to the
 * file: 32x its size plus 64 MiB. Each block carries its size in a header. */
typedef struct budget {
  size_t used, cap;
} budget;

static void *budget_alloc(void *ud, size_t size) {
  budget *b = ud;
  if (size > b->cap - b->used || size > SIZE_MAX - 16) return NULL;
  size_t *p = malloc(size + 16);
  if (!p) return NULL;
  p[0] = size;
  b->used += size;
  return (char *)p + 16;
}

static void budget_free(void *ud, void *ptr) {
  if (!ptr) return;
  budget *b = ud;
  size_t *p = (size_t *)((char *)ptr - 16);
  b->used -= p[0];
  free(p);
}

/* ---------------------------------------------------------------- names -> value ids */

typedef struct name_map {
  int cap;
  int *slots; /* value id + 1; 0: empty */
} name_map;

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static int map_find(const name_map *nm, const ox_value *vals, const char *name) {
  for (uint64_t i = hash_name(name) & (uint64_t)(nm->cap - 1);;
       i = (i + 1) & (uint64_t)(nm->cap - 1)) {
    int s = nm->slots[i];
    if (!s) return -1;
    if (strcmp(vals[s - 1].name, name) == 0) return s - 1;
  }
}

static void map_put(name_map *nm, const char *name, int id) {
  uint64_t i = hash_name(name) & (uint64_t)(nm->cap - 1);
  while (nm->slots[i])
    i = (i + 1) & (uint64_t)(nm->cap - 1);
  nm->slots[i] = id + 1;
}

/* ---------------------------------------------------------------- model life */

void lc_onnx_free(lc_onnx_model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_values; i++)
    lc_release(m->values[i].constant);
  for (int i = 0; i < m->n_nodes; i++) {
    lc_release(m->nodes[i].fused_weight);
    lc_release(m->nodes[i].fused_bias);
    free(m->nodes[i].in);
    free(m->nodes[i].out);
  }
  free(m->values);
  free(m->nodes);
  free(m->inputs);
  free(m->outputs);
  free(m->input_dtype);
  free(m->input_ndim);
  free(m->input_dims);
  free(m->params);
  free(m->dir);
  if (m->proto) onnx__model_proto__free_unpacked(m->proto, m->alloc);
  if (m->alloc) {
    free(m->alloc->allocator_data);
    free(m->alloc);
  }
  free(m);
}

static lc_status oom(void) { return lc_set_error(LC_ENOMEM, "onnx: out of memory"); }

/* Adds a value named name (NULL name: error by the caller). */
static int add_value(lc_onnx_model *m, name_map *nm, const char *name) {
  int id = m->n_values++;
  memset(&m->values[id], 0, sizeof m->values[id]);
  m->values[id].name = name;
  m->values[id].producer = -1;
  m->values[id].last_use = -1;
  map_put(nm, name, id);
  return id;
}

static lc_status read_type(const Onnx__ValueInfoProto *vi, lc_dtype *dt, int *ndim, int64_t *dims) {
  const char *name = vi->name ? vi->name : "";
  *dt = LC_FLOAT32;
  *ndim = -1;
  const Onnx__TypeProto *tp = vi->type;
  if (!tp) return LC_OK;
  if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return lc_set_error(
        LC_EDTYPE,
        "onnx: graph input '%s' is not a tensor (sequences, maps and optionals are not supported)",
        name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type) {
    lc_status st = ox_dtype_from_onnx(tt->elem_type, dt);
    if (st)
      return lc_set_error(st, "onnx: graph input '%s': type %s is not supported", name,
                          ox_onnx_type_name(tt->elem_type));
  }
  if (tt->shape) {
    if (tt->shape->n_dim > LC_MAX_DIMS)
      return lc_set_error(LC_EFORMAT, "onnx: graph input '%s' has %zu dims (at most %d)", name,
                          tt->shape->n_dim, LC_MAX_DIMS);
    *ndim = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
      const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
      dims[i] =
          d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0
              ? d->dim_value
              : -1;
    }
  }
  return LC_OK;
}

static lc_status node_error(const lc_onnx_model *m, const Onnx__NodeProto *p, lc_status st,
                            const char *what, const char *detail) {
  const char *label =
      p->name && *p->name ? p->name : (p->n_output && p->output[0] ? p->output[0] : "?");
  return lc_set_error(st, "onnx: node '%s' (%s, opset %d): %s%s", label,
                      p->op_type ? p->op_type : "?", m->opset, what, detail);
}

lc_status ox_prepare(lc_onnx_model *m); /* prepare.c */

/* Builds values and nodes from the parsed proto (m->proto set). */
static lc_status build(lc_onnx_model *m) {
  const Onnx__ModelProto *mp = m->proto;
  const Onnx__GraphProto *g = mp->graph;
  if (!g) return lc_set_error(LC_EFORMAT, "onnx: the model has no graph");
  /* the opset of the default domain */
  m->opset = -1;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0) m->opset = (int)o->version;
  }
  if (m->opset < 0) {
    if (mp->n_opset_import == 0)
      m->opset = 1; /* IR v1-2 models without opset_import */
    else
      return lc_set_error(LC_EFORMAT, "onnx: the model imports no opset of the default domain "
                                      "(other domains are not supported)");
  }
  if (m->opset < OX_MIN_OPSET || m->opset > OX_MAX_OPSET)
    return lc_set_error(
        LC_EFORMAT,
        "onnx: opset %d of the default domain is not supported (lucid runs opsets %d to %d)",
        m->opset, OX_MIN_OPSET, OX_MAX_OPSET);
  if (g->n_sparse_initializer)
    return lc_set_error(LC_EFORMAT, "onnx: sparse initializers are not supported");

  size_t max_values = g->n_input + g->n_initializer;
  for (size_t i = 0; i < g->n_node; i++)
    max_values += g->node[i]->n_output;
  if (max_values > (size_t)INT32_MAX / 4) return lc_set_error(LC_EFORMAT, "onnx: graph too large");
  int cap = 16;
  while ((size_t)cap < 2 * max_values + 2)
    cap *= 2;
  name_map nm = {cap, calloc((size_t)cap, sizeof(int))};
  m->values = calloc(max_values + 1, sizeof *m->values);
  m->nodes = calloc(g->n_node + 1, sizeof *m->nodes);
  if (!nm.slots || !m->values || !m->nodes) {
    free(nm.slots);
    return oom();
  }
  lc_status st = LC_OK;
  int64_t max_bytes = m->opts.max_file_bytes;

  /* initializers first: a graph input of the same name (IR < 4) is then a constant */
  for (size_t i = 0; i < g->n_initializer && !st; i++) {
    const Onnx__TensorProto *tp = g->initializer[i];
    if (!tp->name || !*tp->name) {
      st = lc_set_error(LC_EFORMAT, "onnx: initializer %zu has no name", i);
      break;
    }
    if (map_find(&nm, m->values, tp->name) >= 0) {
      st = lc_set_error(LC_EFORMAT, "onnx: initializer '%s' is defined twice", tp->name);
      break;
    }
    int id = add_value(m, &nm, tp->name);
    st = ox_tensor_from_proto(tp, m->dir, max_bytes, &m->values[id].constant);
    if (!st && m->opts.trainable && lc_dtype_is_float(lc_dtype_of(m->values[id].constant)) &&
        !lc_dtype_is_half(lc_dtype_of(m->values[id].constant))) {
      m->values[id].is_param = true;
      st = lc_set_requires_grad(m->values[id].constant, true);
    }
  }
  /* graph inputs */
  m->inputs = calloc(g->n_input + 1, sizeof(int));
  m->input_dtype = calloc(g->n_input + 1, sizeof(lc_dtype));
  m->input_ndim = calloc(g->n_input + 1, sizeof(int));
  m->input_dims = calloc(g->n_input + 1, sizeof *m->input_dims);
  if (!st && (!m->inputs || !m->input_dtype || !m->input_ndim || !m->input_dims)) st = oom();
  for (size_t i = 0; i < g->n_input && !st; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (!vi->name || !*vi->name) {
      st = lc_set_error(LC_EFORMAT, "onnx: graph input %zu has no name", i);
      break;
    }
    int id = map_find(&nm, m->values, vi->name);
    if (id >= 0) {
      if (m->values[id].constant) continue; /* an initializer's declaration */
      st = lc_set_error(LC_EFORMAT, "onnx: graph input '%s' is declared twice", vi->name);
      break;
    }
    int k = m->n_inputs;
    if ((st = read_type(vi, &m->input_dtype[k], &m->input_ndim[k], m->input_dims[k]))) break;
    id = add_value(m, &nm, vi->name);
    m->values[id].is_input = true;
    m->inputs[m->n_inputs++] = id;
  }
  /* node outputs (SSA: each name defined once) */
  for (size_t i = 0; i < g->n_node && !st; i++) {
    const Onnx__NodeProto *p = g->node[i];
    if (!p->op_type) {
      st = lc_set_error(LC_EFORMAT, "onnx: node %zu has no op_type", i);
      break;
    }
    for (size_t j = 0; j < p->n_output && !st; j++) {
      const char *o = p->output[j];
      if (!o || !*o) continue;
      if (map_find(&nm, m->values, o) >= 0) {
        st = node_error(m, p, LC_EFORMAT, "output defined twice: ", o);
        break;
      }
      int id = add_value(m, &nm, o);
      m->values[id].producer = (int)i; /* proto order for now */
    }
  }
  /* nodes in proto order, with their value ids */
  int *order = NULL, *indeg = NULL, *queue = NULL;
  if (!st) {
    for (size_t i = 0; i < g->n_node && !st; i++) {
      const Onnx__NodeProto *p = g->node[i];
      ox_node *n = &m->nodes[i];
      n->proto = p;
      n->n_in = (int)p->n_input;
      n->n_out = (int)p->n_output;
      n->in = calloc(p->n_input + 1, sizeof(int));
      n->out = calloc(p->n_output + 1, sizeof(int));
      if (!n->in || !n->out) {
        st = oom();
        break;
      }
      if (p->domain && *p->domain && strcmp(p->domain, "ai.onnx") != 0) {
        st = node_error(m, p, LC_EARG, "ops of domain are not supported: ", p->domain);
        break;
      }
      n->op = ox_find_op(p->op_type);
      if (!n->op) {
        st = lc_set_error(LC_EARG, "onnx: node '%s': op %s (opset %d) is not supported by lucid",
                          ox_node_label(n), p->op_type, m->opset);
        break;
      }
      if (m->opset < 7) { /* before opset 7: axis-aligned broadcasting, not NumPy's */
        const Onnx__AttributeProto *b = ox_attr(n, "broadcast");
        if (b && b->has_i && b->i != 0) {
          st = node_error(m, p, LC_EARG, "",
                          "the legacy broadcast attribute (opset < 7) is not supported");
          break;
        }
      }
      if (n->n_in < n->op->min_inputs || (n->op->max_inputs >= 0 && n->n_in > n->op->max_inputs)) {
        char buf[96];
        snprintf(buf, sizeof buf, "%d inputs (expected %d to %d)", n->n_in, n->op->min_inputs,
                 n->op->max_inputs);
        st = node_error(m, p, LC_EFORMAT, "", buf);
        break;
      }
      if (n->n_out < 1) { /* every op of the default domain has an output; ops write out[0] */
        st = node_error(m, p, LC_EFORMAT, "", "a node without outputs");
        break;
      }
      if (n->n_out > n->op->max_outputs) {
        char buf[96];
        snprintf(buf, sizeof buf, "%d outputs (expected at most %d)", n->n_out, n->op->max_outputs);
        st = node_error(m, p, LC_EFORMAT, "", buf);
        break;
      }
      for (int j = 0; j < n->n_in && !st; j++) {
        const char *nmj = p->input[j];
        if (!nmj || !*nmj) { /* "" is an omitted optional input; a required one must be there */
          if (j < n->op->min_inputs)
            st = node_error(m, p, LC_EFORMAT, "a required input is omitted", "");
          n->in[j] = -1;
          continue;
        }
        n->in[j] = map_find(&nm, m->values, nmj);
        if (n->in[j] < 0) st = node_error(m, p, LC_EFORMAT, "input is never defined: ", nmj);
      }
      for (int j = 0; j < n->n_out; j++)
        n->out[j] = p->output[j] && *p->output[j] ? map_find(&nm, m->values, p->output[j]) : -1;
    }
    m->n_nodes = (int)g->n_node;
  }
  /* graph outputs */
  m->outputs = calloc(g->n_output + 1, sizeof(int));
  if (!st && !m->outputs) st = oom();
  for (size_t i = 0; i < g->n_output && !st; i++) {
    const char *o = g->output[i]->name;
    int id = o ? map_find(&nm, m->values, o) : -1;
    if (id < 0) {
      st = lc_set_error(LC_EFORMAT, "onnx: graph output '%s' is never defined", o ? o : "");
      break;
    }
    m->values[id].is_output = true;
    m->outputs[m->n_outputs++] = id;
  }
  free(nm.slots);
  /* topological order (Kahn); what remains is on a cycle */
  int nn = m->n_nodes;
  if (!st && nn) {
    order = malloc((size_t)nn * sizeof(int));
    indeg = calloc((size_t)nn, sizeof(int));
    queue = malloc((size_t)nn * sizeof(int));
    /* consumers as a CSR list: for each value, the nodes reading it */
    int *cnt = calloc((size_t)m->n_values + 1, sizeof(int));
    int total = 0;
    if (!order || !indeg || !queue || !cnt) st = oom();
    for (int i = 0; i < nn && !st; i++)
      for (int j = 0; j < m->nodes[i].n_in; j++) {
        int v = m->nodes[i].in[j];
        if (v >= 0 && m->values[v].producer >= 0) {
          cnt[v + 1]++;
          indeg[i]++;
          total++;
        }
      }
    int *cons = st ? NULL : malloc((size_t)(total + 1) * sizeof(int));
    if (!st && !cons) st = oom();
    if (!st) {
      for (int v = 0; v < m->n_values; v++)
        cnt[v + 1] += cnt[v];
      int *fill = calloc((size_t)m->n_values + 1, sizeof(int));
      if (!fill) st = oom();
      for (int i = 0; i < nn && !st; i++)
        for (int j = 0; j < m->nodes[i].n_in; j++) {
          int v = m->nodes[i].in[j];
          if (v >= 0 && m->values[v].producer >= 0) cons[cnt[v] + fill[v]++] = i;
        }
      free(fill);
    }
    int head = 0, tail = 0, done = 0;
    for (int i = 0; i < nn && !st; i++)
      if (!indeg[i]) queue[tail++] = i;
    while (!st && head < tail) {
      int i = queue[head++];
      order[done++] = i;
      for (int j = 0; j < m->nodes[i].n_out; j++) {
        int v = m->nodes[i].out[j];
        if (v < 0) continue;
        for (int k = cnt[v]; k < cnt[v + 1]; k++)
          if (--indeg[cons[k]] == 0) queue[tail++] = cons[k];
      }
    }
    if (!st && done < nn) {
      for (int i = 0; i < nn; i++)
        if (indeg[i]) {
          st = lc_set_error(LC_EFORMAT, "onnx: the graph has a cycle (through node '%s', %s)",
                            ox_node_label(&m->nodes[i]), m->nodes[i].proto->op_type);
          break;
        }
    }
    free(cnt);
    free(cons);
    if (!st) {
      ox_node *sorted = malloc((size_t)nn * sizeof *sorted);
      if (!sorted)
        st = oom();
      else {
        for (int i = 0; i < nn; i++)
          sorted[i] = m->nodes[order[i]];
        free(m->nodes);
        m->nodes = sorted;
        for (int i = 0; i < nn; i++)
          for (int j = 0; j < m->nodes[i].n_out; j++)
            if (m->nodes[i].out[j] >= 0) m->values[m->nodes[i].out[j]].producer = i;
      }
    }
  }
  free(order);
  free(indeg);
  free(queue);
  return st;
}

static lc_status load_bytes(const void *data, size_t size, const lc_onnx_opts *opts,
                            const char *dir, lc_onnx_model **out) {
  lc_onnx_model *m = calloc(1, sizeof *m);
  if (!m) return oom();
  if (opts) m->opts = *opts;
  if (m->opts.max_file_bytes <= 0) m->opts.max_file_bytes = DEFAULT_MAX_FILE_BYTES;
  if (m->opts.max_nodes <= 0) m->opts.max_nodes = DEFAULT_MAX_NODES;
  if (m->opts.max_nesting <= 0) m->opts.max_nesting = DEFAULT_MAX_NESTING;
  m->opts.external_data_dir = NULL;
  const char *d = opts && opts->external_data_dir ? opts->external_data_dir : dir;
  if (d && !(m->dir = strdup(d))) {
    lc_onnx_free(m);
    return oom();
  }
  lc_status st = LC_OK;
  if ((int64_t)size > m->opts.max_file_bytes)
    st = lc_set_error(LC_EFORMAT, "onnx: the model is %zu bytes (the limit is %lld)", size,
                      (long long)m->opts.max_file_bytes);
  ox_wire_limits lim = {m->opts.max_nesting, m->opts.max_nodes, 0};
  if (!st) st = ox_wire_check(data, size, &lim);
  if (!st) {
    budget *b = malloc(sizeof *b);
    m->alloc = malloc(sizeof *m->alloc);
    if (!b || !m->alloc) {
      free(b);
      st = oom();
    } else {
      b->used = 0;
      b->cap =
          size > (SIZE_MAX - ((size_t)64 << 20)) / 32 ? SIZE_MAX : 32 * size + ((size_t)64 << 20);
      m->alloc->alloc = budget_alloc;
      m->alloc->free = budget_free;
      m->alloc->allocator_data = b;
      m->proto = onnx__model_proto__unpack(m->alloc, size, data);
      if (!m->proto)
        st = lc_set_error(LC_EFORMAT,
                          "onnx: not a valid ONNX model (protobuf-c could not unpack %zu bytes)",
                          size);
    }
  }
  if (!st) st = build(m);
  if (!st) st = ox_prepare(m);
  if (st) {
    lc_onnx_free(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_onnx_load_buffer(const void *data, size_t size, const lc_onnx_opts *opts,
                              lc_onnx_model **out) {
  if (!out || (!data && size)) return lc_set_error(LC_EARG, "lc_onnx_load_buffer: NULL argument");
  return load_bytes(data ? data : "", size, opts, NULL, out);
}

/* Reads a whole file of at most max bytes. */
static lc_status ox_read_file(const char *path, int64_t max, void **data, size_t *size) {
  lc_status pst = lc_file_check("onnx", path, LC_FILE_READ);
  if (pst) return pst;
  FILE *f = fopen(path, "rb");
  if (!f) return lc_set_error(LC_EIO, "onnx: cannot open '%s': %s", path, strerror(errno));
  long long len = -1;
  if (fseeko(f, 0, SEEK_END) == 0) len = (long long)ftello(f);
  if (len < 0 || fseeko(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return lc_set_error(LC_EIO, "onnx: cannot read '%s' (not a regular file?)", path);
  }
  if (len > max) {
    fclose(f);
    return lc_set_error(LC_EFORMAT, "onnx: '%s' is %lld bytes (the limit is %lld)", path, len,
                        (long long)max);
  }
  void *buf = malloc((size_t)len + 1);
  if (!buf) {
    fclose(f);
    return oom();
  }
  size_t got = fread(buf, 1, (size_t)len, f);
  fclose(f);
  if (got != (size_t)len) {
    free(buf);
    return lc_set_error(LC_EIO, "onnx: reading '%s' failed", path);
  }
  *data = buf;
  *size = (size_t)len;
  return LC_OK;
}

lc_status lc_onnx_load(const char *path, const lc_onnx_opts *opts, lc_onnx_model **out) {
  if (!path || !out) return lc_set_error(LC_EARG, "lc_onnx_load: NULL argument");
  int64_t max = opts && opts->max_file_bytes > 0 ? opts->max_file_bytes : DEFAULT_MAX_FILE_BYTES;
  void *data;
  size_t size;
  lc_status st = ox_read_file(path, max, &data, &size);
  if (st) return st;
  /* the model's directory, for external data */
  char *dir = strdup(path);
  if (!dir) {
    free(data);
    return oom();
  }
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  else
    strcpy(dir, ".");
  st = load_bytes(data, size, opts, dir, out);
  free(dir);
  free(data);
  return st;
}

lc_status lc_onnx_parse_tensor(const void *data, size_t size, lc_tensor **out) {
  if (!out || (!data && size)) return lc_set_error(LC_EARG, "lc_onnx_parse_tensor: NULL argument");
  budget b = {0, 32 * size + ((size_t)64 << 20)};
  ProtobufCAllocator a = {budget_alloc, budget_free, &b};
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&a, size, data ? data : "");
  if (!tp) return lc_set_error(LC_EFORMAT, "onnx: not a valid TensorProto (%zu bytes)", size);
  lc_status st = ox_tensor_from_proto(tp, NULL, DEFAULT_MAX_FILE_BYTES, out);
  onnx__tensor_proto__free_unpacked(tp, &a);
  return st;
}

lc_status lc_onnx_read_tensor(const char *path, lc_tensor **out) {
  if (!path || !out) return lc_set_error(LC_EARG, "lc_onnx_read_tensor: NULL argument");
  void *data;
  size_t size;
  lc_status st = ox_read_file(path, DEFAULT_MAX_FILE_BYTES, &data, &size);
  if (st) return st;
  st = lc_onnx_parse_tensor(data, size, out);
  free(data);
  return st;
}

/* ---------------------------------------------------------------- queries */

int lc_onnx_num_inputs(const lc_onnx_model *m) { return m ? m->n_inputs : 0; }
int lc_onnx_num_outputs(const lc_onnx_model *m) { return m ? m->n_outputs : 0; }
int lc_onnx_opset(const lc_onnx_model *m) { return m ? m->opset : 0; }

int lc_onnx_num_nodes(const lc_onnx_model *m, bool prepared) {
  if (!m) return 0;
  int n = 0;
  for (int i = 0; i < m->n_nodes; i++) n += !prepared || !m->nodes[i].dead;
  return n;
}

const char *lc_onnx_input_name(const lc_onnx_model *m, int i) {
  return m && i >= 0 && i < m->n_inputs ? m->values[m->inputs[i]].name : NULL;
}

const char *lc_onnx_output_name(const lc_onnx_model *m, int i) {
  return m && i >= 0 && i < m->n_outputs ? m->values[m->outputs[i]].name : NULL;
}

lc_status lc_onnx_input_info(const lc_onnx_model *m, int i, lc_dtype *dtype, int *ndim,
                             int64_t *dims) {
  if (!m || i < 0 || i >= m->n_inputs)
    return lc_set_error(LC_EINDEX,
                        "lc_onnx_input_info: input " LC_POS_D " out of range (the model has %d)", i,
                        m ? m->n_inputs : 0);
  if (dtype) *dtype = m->input_dtype[i];
  if (ndim) *ndim = m->input_ndim[i];
  if (dims)
    for (int k = 0; k < m->input_ndim[i]; k++)
      dims[k] = m->input_dims[i][k];
  return LC_OK;
}

int64_t lc_onnx_num_parameters(const lc_onnx_model *m) { return m ? m->n_params : 0; }

lc_status lc_onnx_parameter(const lc_onnx_model *m, int64_t i, const char **name,
                            lc_tensor **tensor) {
  if (!m || i < 0 || i >= m->n_params)
    return lc_set_error(LC_EINDEX,
                        "lc_onnx_parameter: " LC_POS_I " out of range (the model has %lld)",
                        (long long)i, (long long)(m ? m->n_params : 0));
  const ox_value *v = &m->values[m->params[i]];
  if (name) *name = v->name;
  if (tensor) *tensor = v->constant;
  return LC_OK;
}
