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

#define MODEL_MANIFEST_SIZE 1500
#include "model.h"



static int flavor(const char *lower) {
  char cwd[512], data[2048], root[600], target[700];
  if (!getcwd(cwd, sizeof cwd)) return 125;
  if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) return 125;
  snprintf(root, sizeof root, "%s/apps/app/rootfs", cwd);
  /* The /etc files: a layer on a tmpfs where the overlay then goes. */
  mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m");
  snprintf(target, sizeof target, "%s/.etc", root);
  mkdir(target, 0755);
  etc_layer(target);
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
