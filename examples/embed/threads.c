/*
 * threads.c - two threads, each with its own lua_State running lucid, training two different
 * models on different data at the same time (examples/embed/train.lua).
 *
 * Checks that
 *   - both jobs learn (last loss < LOSS_FACTOR * first loss),
 *   - each job's results (first loss, last loss, sum of the trained parameters) are bitwise
 *     the results of the same job run alone on the main thread: the states do not disturb each
 *     other,
 *   - lc_last_error() is per thread: each thread provokes its own error at the same moment and
 *     reads back its own message,
 *   - lucid's random number generator is per thread: a new thread starts at the default seed
 *     (the one the main thread had at start-up), and a stream of lc_rand draws after
 *     lc_manual_seed, made while the other thread draws too, equals the same stream drawn alone.
 *
 * Rules this relies on (docs/embedding.md, "Threads"): one lua_State per thread (a lua_State is
 * never used by two threads at once), tensors and modules of one state stay in it, and the
 * generator is per OS thread (train.lua seeds it with lucid.manual_seed and draws its data and
 * initial weights from it).
 *
 * usage: threads [train.lua]     (default examples/embed/train.lua)
 * Last line, checked by the test suite:
 *   threads: OK <model> <first> -> <last>, <model> <first> -> <last>; concurrent == alone ...
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* pthread barriers under -std=c11 */
#endif
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lucid_lua.h"

#define STEPS 200
#define LOSS_FACTOR 0.2
#define RNG_DRAWS 2000 /* lc_rand calls of the random-stream check */

typedef struct job {
  const char *script; /* train.lua */
  const char *model;  /* "mlp" or "net" */
  int seed;
  pthread_barrier_t *barrier; /* concurrent runs: start the error check together (or NULL) */
  int waited;                 /* this job has passed the barrier */
  /* results */
  int ok;
  uint64_t initial_seed; /* lc_initial_seed() when the job started */
  double first, last, checksum;
  double rng_sum; /* the random-stream check's weighted sum */
  char err[1024];
} job;

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

/* Every concurrent job passes the barrier exactly once, also when it failed before the error
 * check, so its partner never waits forever. */
static void sync_jobs(job *jb) {
  if (jb->barrier && !jb->waited) pthread_barrier_wait(jb->barrier);
  jb->waited = 1;
}

/* Provokes a core error whose message holds this job's seed, and checks the thread's last
 * error is that message even while the other thread does the same. */
static int check_own_error(job *jb) {
  const int64_t shape[1] = {-1000 - jb->seed};
  lc_tensor *t = NULL;
  char want[32];
  snprintf(want, sizeof want, "%lld", (long long)shape[0]);
  for (int i = 0; i < 1000; i++) {
    if (lc_zeros(1, shape, LC_FLOAT32, &t) == LC_OK) {
      lc_release(t);
      snprintf(jb->err, sizeof jb->err, "lc_zeros accepted a negative size");
      return 0;
    }
    if (strstr(lc_last_error(), want) == NULL) {
      snprintf(jb->err, sizeof jb->err, "lc_last_error() is \"%s\", expected it to name %s",
               lc_last_error(), want);
      return 0;
    }
  }
  return 1;
}

/* Seeds this thread's generator and draws RNG_DRAWS small tensors, summing their values
 * weighted by position: any draw another thread took from this stream would change the sum. */
static int rng_stream(job *jb) {
  const int64_t shape[1] = {16};
  float v[16];
  double sum = 0;
  lc_manual_seed(1000u + (uint64_t)jb->seed);
  for (int i = 0; i < RNG_DRAWS; i++) {
    lc_tensor *t = NULL;
    if (lc_rand(1, shape, LC_FLOAT32, &t) != LC_OK ||
        lc_copy_to_buffer(t, LC_FLOAT32, v) != LC_OK) {
      snprintf(jb->err, sizeof jb->err, "lc_rand: %s", lc_last_error());
      lc_release(t);
      return 0;
    }
    lc_release(t);
    for (int k = 0; k < 16; k++)
      sum += (double)v[k] * (double)(i * 16 + k + 1);
  }
  jb->rng_sum = sum;
  return 1;
}

/* Runs one job in a fresh lua_State on the calling thread. */
static void *run_job(void *arg) {
  job *jb = arg;
  jb->ok = 0;
  jb->initial_seed = lc_initial_seed(); /* before anything here seeds this thread */
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    snprintf(jb->err, sizeof jb->err, "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  lucid_preload(L);
  lua_pushcfunction(L, traceback); /* index 1: message handler */
  if (luaL_loadfile(L, jb->script) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK) {
    snprintf(jb->err, sizeof jb->err, "%s", lua_tostring(L, -1));
    goto done;
  }
  /* train{model = ..., seed = ..., steps = ...} -> first, last, checksum */
  lua_createtable(L, 0, 3);
  lua_pushstring(L, jb->model);
  lua_setfield(L, -2, "model");
  lua_pushinteger(L, jb->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, STEPS);
  lua_setfield(L, -2, "steps");
  if (lua_pcall(L, 1, 3, 1) != LUA_OK) {
    snprintf(jb->err, sizeof jb->err, "%s", lua_tostring(L, -1));
    goto done;
  }
  jb->first = lua_tonumber(L, -3);
  jb->last = lua_tonumber(L, -2);
  jb->checksum = lua_tonumber(L, -1);
  sync_jobs(jb); /* concurrent runs: both threads do the two checks below at the same time */
  jb->ok = rng_stream(jb) && check_own_error(jb);
done:
  sync_jobs(jb);
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  const char *script = argc > 1 ? argv[1] : "examples/embed/train.lua";
  job alone[2] = {{.script = script, .model = "mlp", .seed = 1},
                  {.script = script, .model = "net", .seed = 2}};
  job together[2] = {alone[0], alone[1]};
  int rc = 0;
  const uint64_t default_seed = lc_initial_seed(); /* nothing has seeded this thread yet */

  /* each job alone, one after the other, on this thread */
  for (int i = 0; i < 2; i++) {
    run_job(&alone[i]);
    if (!alone[i].ok) {
      fprintf(stderr, "threads: %s alone: %s\n", alone[i].model, alone[i].err);
      return 1;
    }
    printf("alone:    %-3s loss %.6f -> %.6f, parameter sum %.9g, random stream %.9g\n",
           alone[i].model, alone[i].first, alone[i].last, alone[i].checksum, alone[i].rng_sum);
  }

  /* both at once, one thread each */
  pthread_barrier_t barrier;
  if (pthread_barrier_init(&barrier, NULL, 2) != 0) {
    fprintf(stderr, "threads: pthread_barrier_init failed\n");
    return 1;
  }
  pthread_t th[2];
  int started = 0;
  for (int i = 0; i < 2; i++) {
    together[i].barrier = &barrier;
    if (pthread_create(&th[i], NULL, run_job, &together[i]) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      rc = 1;
      break;
    }
    started++;
  }
  if (started == 1) { /* the partner never came: let the first thread through the barrier */
    pthread_barrier_wait(&barrier);
  }
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  if (rc) return rc;

  for (int i = 0; i < 2; i++) {
    job *a = &alone[i], *t = &together[i];
    if (!t->ok) {
      fprintf(stderr, "threads: %s in a thread: %s\n", t->model, t->err);
      rc = 1;
      continue;
    }
    printf("together: %-3s loss %.6f -> %.6f, parameter sum %.9g, random stream %.9g\n", t->model,
           t->first, t->last, t->checksum, t->rng_sum);
    if (!(t->last < LOSS_FACTOR * t->first)) {
      fprintf(stderr, "threads: %s did not learn: loss %g -> %g\n", t->model, t->first, t->last);
      rc = 1;
    }
    if (t->first != a->first || t->last != a->last || t->checksum != a->checksum) {
      fprintf(stderr, "threads: %s in a thread differs from %s alone\n", t->model, a->model);
      rc = 1;
    }
    if (t->rng_sum != a->rng_sum) {
      fprintf(stderr,
              "threads: %s's random stream in a thread (%.17g) differs from alone (%.17g)\n",
              t->model, t->rng_sum, a->rng_sum);
      rc = 1;
    }
    if (t->initial_seed != default_seed) {
      fprintf(stderr, "threads: a new thread started at seed %llu, expected the default %llu\n",
              (unsigned long long)t->initial_seed, (unsigned long long)default_seed);
      rc = 1;
    }
  }
  if (rc == 0)
    printf("threads: OK %s %.6f -> %.6f, %s %.6f -> %.6f; concurrent == alone (per-thread RNG)\n",
           together[0].model, together[0].first, together[0].last, together[1].model,
           together[1].first, together[1].last);
  return rc;
}
