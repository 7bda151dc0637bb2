/* What `skiff run --stage1 fly IMG --exec /bin/true` does, as bare syscalls:
 * bench/start.sh times it beside skiff to show how much of fly's start is the
 * design's own work (pod directory, manifest, overlay with its /etc layer on
 * a tmpfs, mount namespace, state files: the same files and mounts as skiff)
 * and how much is skiff's code.
 * It is a model, not a runtime: no checks, no locks beyond the pod's, no
 * error handling worth the name.
 *
 *   fly-model STORE LOWER   (STORE/pods/{prepare,run} must exist)
 *
 * stage0's part runs in the first process, which then execs itself as the
 * flavor (argv[0] "flavor"), like skiff execs skiff-stage1-fly. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void put(const char *name, const char *data) {
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s.tmp", name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, data, strlen(data)) < 0) exit(125);
  close(fd);
  rename(tmp, name);
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
  char manifest[1500];
  memset(manifest, ' ', sizeof manifest - 1);
  manifest[sizeof manifest - 1] = 0;
  put("manifest.json", manifest);
  snprintf(run, sizeof run, "%s/pods/run/%s", store, strrchr(pod, '/') + 1);
  rename(pod, run);
  if (chdir(run)) return 125;
  execl(self, "flavor", lower, (char *)NULL);
  return 127;
}

static int flavor(const char *lower) {
  char cwd[512], data[2048], root[600], target[700];
  if (!getcwd(cwd, sizeof cwd)) return 125;
  if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) return 125;
  snprintf(root, sizeof root, "%s/apps/app/rootfs", cwd);
  /* The /etc files: a layer on a tmpfs where the overlay then goes. */
  mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m");
  snprintf(target, sizeof target, "%s/.etc", root);
  mkdir(target, 0755);
  snprintf(target, sizeof target, "%s/.etc/etc", root);
  mkdir(target, 0755);
  const char *files[] = {"hostname", "hosts", "resolv.conf"};
  for (int i = 0; i < 3; i++) {
    snprintf(target, sizeof target, "%s/.etc/etc/%s", root, files[i]);
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 && write(fd, "x\n", 2) == 2) close(fd);
  }
  snprintf(target, sizeof target, "%s/.etc/etc/mtab", root);
  symlink("/proc/self/mounts", target);
  snprintf(data, sizeof data, "lowerdir=%s/.etc:%s,upperdir=%s/apps/app/upper,workdir=%s/apps/app/work,volatile",
           root, lower, cwd, cwd);
  if (mount("overlay", root, "overlay", 0, data)) return 125;
  const char *api[] = {"dev", "proc", "sys"};
  for (int i = 0; i < 3; i++) {
    char source[8];
    snprintf(source, sizeof source, "/%s", api[i]);
    snprintf(target, sizeof target, "%s/%s", root, api[i]);
    mount(source, target, NULL, MS_BIND | MS_REC, NULL);
  }
  int log = open("apps/app/log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t child = fork();
  if (child == 0) {
    if (chroot(root) || chdir("/")) _exit(125);
    execl("/bin/true", "true", (char *)NULL);
    _exit(127);
  }
  put("pid", "1\n");
  put("started", "t\n");
  put("ready", "t\n");
  int status;
  waitpid(child, &status, 0);
  put("apps/app/exit.json", "{}\n");
  close(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(int argc, char **argv) {
  if (strcmp(argv[0], "flavor") == 0 && argc == 2) return flavor(argv[1]);
  if (argc != 3) {
    fprintf(stderr, "usage: fly-model STORE LOWER\n");
    return 125;
  }
  return stage0(argv[1], argv[2], "/proc/self/exe");
}
