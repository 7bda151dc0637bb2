/* What bench/fly-model.c and bench/ns-model.c share: stage0's part (the pod
 * directory, its app directories and manifest, the move to run/, the exec of
 * the flavor), the state files, the /etc layer's files and main. A model
 * defines `static int flavor(const char *lower)` and MODEL_MANIFEST_SIZE
 * (the size of skiff's manifest for its pod) before including this. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int flavor(const char *lower);

/* A state file, written as skiff writes one: a temporary file renamed. */
static void put(const char *name, const char *data) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, data, strlen(data)) < 0) exit(125);
  close(fd);
  rename(tmp, name);
}

/* The /etc files of the flavor's layer in DIR/etc (on a tmpfs). */
static void etc_layer(const char *dir) {
  char p[1100];
  snprintf(p, sizeof p, "%s/etc", dir);
  mkdir(p, 0755);
  const char *files[] = {"hostname", "hosts", "resolv.conf"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/etc/%s", dir, files[i]);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 && write(fd, "x\n", 2) == 2) close(fd);
  }
  snprintf(p, sizeof p, "%s/etc/mtab", dir);
  symlink("/proc/self/mounts", p);
}

static int stage0(const char *store, const char *lower, const char *self) {
  char pod[512], path[640], run[512];
  snprintf(pod, sizeof pod, "%s/pods/prepare/%d-%ld", store, getpid(), (long)time(NULL));
  if (mkdir(pod, 0755)) return 125;
  int lock = open(pod, O_RDONLY | O_DIRECTORY);
  flock(lock, LOCK_EX);
  const char *dirs[] = {"apps", "apps/app", "apps/app/upper", "apps/app/work", "apps/app/rootfs"};
  for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(path, sizeof path, "%s/%s", pod, dirs[i]);
    mkdir(path, 0755);
  }
  if (chdir(pod)) return 125;
  char manifest[MODEL_MANIFEST_SIZE];
  memset(manifest, ' ', sizeof manifest - 1);
  manifest[sizeof manifest - 1] = 0;
  put("manifest.json", manifest);
  snprintf(run, sizeof run, "%s/pods/run/%s", store, strrchr(pod, '/') + 1);
  rename(pod, run);
  if (chdir(run)) return 125;
  execl(self, "flavor", lower, (char *)NULL);
  return 127;
}

int main(int argc, char **argv) {
  if (strcmp(argv[0], "flavor") == 0 && argc == 2) return flavor(argv[1]);
  if (argc != 3) {
    fprintf(stderr, "usage: %s STORE LOWER\n", argv[0]);
    return 125;
  }
  return stage0(argv[1], argv[2], "/proc/self/exe");
}
