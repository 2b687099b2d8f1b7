/* The cost of a preloaded library to a program that never uses it: execs of
 * PROGRAM without LD_PRELOAD and with each LIBRARY, alternating round-robin
 * in one run (so drift in the machine's load hits every variant alike). Each
 * exec is timed from posix_spawn to the child's exit (wall), and by the CPU
 * time the child used (user + system from wait4: the kernel's per-task
 * runtime, exact, and unaffected by waiting for a CPU on a busy machine).
 *
 * Usage: preload_exec_bench ROUNDS PROGRAM LIBRARY...
 * Prints per variant the median wall time with p10/p90 and the median CPU
 * time, in microseconds, and ratios to the exec without preload: of the
 * medians (wall, cpu), and the median of each round's paired wall ratio.
 * Run by benchmarks/preload_exec_bench.sh. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char** environ;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double quantile(double* v, int n, double q) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  return v[(int)(q * (n - 1) + 0.5)];
}

/* The environment minus any LD_PRELOAD, plus `preload` (NULL: none). */
static char** environment(const char* preload) {
  int n = 0;
  while (environ[n]) ++n;
  char** env = calloc((size_t)n + 2, sizeof *env);
  int k = 0;
  for (int i = 0; i < n; ++i)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
  if (preload) {
    size_t len = strlen(preload) + 12;
    env[k] = malloc(len);
    snprintf(env[k], len, "LD_PRELOAD=%s", preload);
    ++k;
  }
  env[k] = NULL;
  return env;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: preload_exec_bench ROUNDS PROGRAM LIBRARY...\n");
    return 2;
  }
  int rounds = atoi(argv[1]);
  char* program = argv[2];
  int variants = argc - 2; /* variant 0: no preload; variant i: argv[2 + i] */
  if (rounds < 10) rounds = 10;
  char*** envs = calloc((size_t)variants, sizeof *envs);
  double** times = calloc((size_t)variants, sizeof *times);
  double** cpu = calloc((size_t)variants, sizeof *cpu);
  for (int v = 0; v < variants; ++v) {
    envs[v] = environment(v == 0 ? NULL : argv[2 + v]);
    times[v] = calloc((size_t)rounds, sizeof **times);
    cpu[v] = calloc((size_t)rounds, sizeof **cpu);
  }
  char* child_argv[] = {program, NULL};
  for (int r = -rounds / 10; r < rounds; ++r) { /* the first tenth warms caches, uncounted */
    for (int k = 0; k < variants; ++k) {
      int v = (r + k) % variants; /* rotate which variant goes first */
      if (v < 0) v += variants;
      pid_t pid;
      double start = now_us();
      if (posix_spawn(&pid, program, NULL, NULL, child_argv, envs[v]) != 0) {
        perror("posix_spawn");
        return 1;
      }
      int status;
      struct rusage use;
      if (wait4(pid, &status, 0, &use) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s failed (variant %d)\n", program, v);
        return 1;
      }
      if (r >= 0) {
        times[v][r] = now_us() - start;
        cpu[v][r] = (double)(use.ru_utime.tv_sec + use.ru_stime.tv_sec) * 1e6 +
                    (double)(use.ru_utime.tv_usec + use.ru_stime.tv_usec);
      }
    }
  }
  double* paired = calloc((size_t)rounds, sizeof *paired);
  double* sorted = calloc((size_t)rounds, sizeof *sorted);
  memcpy(sorted, times[0], (size_t)rounds * sizeof *sorted);
  double base = quantile(sorted, rounds, 0.5);
  memcpy(sorted, cpu[0], (size_t)rounds * sizeof *sorted);
  double cpu_base = quantile(sorted, rounds, 0.5);
  printf("%d alternating execs of %s per variant\n", rounds, program);
  printf("%-44s %9s %9s %9s %8s %8s %8s %8s\n", "preload", "wall_us", "p10_us", "p90_us", "cpu_us", "wall_x",
         "paired_x", "cpu_x");
  for (int v = 0; v < variants; ++v) {
    for (int r = 0; r < rounds; ++r) paired[r] = times[v][r] / times[0][r];
    memcpy(sorted, times[v], (size_t)rounds * sizeof *sorted);
    double med = quantile(sorted, rounds, 0.5), p10 = quantile(sorted, rounds, 0.1),
           p90 = quantile(sorted, rounds, 0.9);
    memcpy(sorted, cpu[v], (size_t)rounds * sizeof *sorted);
    double cpu_med = quantile(sorted, rounds, 0.5);
    printf("%-44s %9.1f %9.1f %9.1f %8.1f %8.3f %8.3f %8.3f\n", v == 0 ? "(none)" : argv[2 + v], med, p10, p90,
           cpu_med, med / base, quantile(paired, rounds, 0.5), cpu_med / cpu_base);
  }
  return 0;
}
