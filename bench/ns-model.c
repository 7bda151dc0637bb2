/* What `skiff run --net none IMG --exec /bin/true` does with the ns flavor,
 * as bare syscalls: bench/start.sh times it beside skiff to show how much of
 * a start is the isolation's own work (pod directory and state files,
 * cgroups in every hierarchy, pid/mount/uts/ipc/net namespaces with lo up,
 * the overlay with its /etc layer on a tmpfs, /proc, /dev, /sys and the
 * masked paths, pivot_root, the app's log pipes, seccomp, capabilities) and
 * how much is skiff's code, the way fly-model does for fly. The floor
 * (`unshare ... chroot`) does none of that work.
 * It is a model, not a runtime: no checks, no locks beyond the pod's, no
 * error handling worth the name.
 *
 *   ns-model STORE LOWER   (STORE/pods/{prepare,run} must exist)
 *
 * stage0's part runs in the first process, which then execs itself as the
 * flavor (argv[0] "flavor"), like skiff execs skiff-stage1-ns. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODEL_MANIFEST_SIZE 3200
#include "model.h"


static void write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, data, strlen(data)) < 0) {
    }
    close(fd);
  }
}


/* The pod's cgroup in every hierarchy but cpuset (v1) and in v2, as skiff's. */
#define MAX_H 16
static char cg[MAX_H][400];
static int cg_v2[MAX_H], n_cg;

static void cgroups_make(const char *id) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[1024];
  while (f && fgets(line, sizeof line, f) && n_cg < MAX_H) {
    char *sep = strstr(line, " - ");
    if (!sep) continue;
    char mnt[256], type[32], opts[256];
    if (sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1) continue;
    if (sscanf(sep + 3, "%31s %*s %255s", type, opts) != 2) continue;
    int v2 = strcmp(type, "cgroup2") == 0;
    if (!v2 && (strcmp(type, "cgroup") || strstr(opts, "cpuset"))) continue;
    char parent[280];
    snprintf(parent, sizeof parent, "%s/skiff-model", mnt);
    mkdir(parent, 0755);
    snprintf(cg[n_cg], sizeof cg[n_cg], "%s/%s", parent, id);
    mkdir(cg[n_cg], 0755);
    cg_v2[n_cg++] = v2;
  }
  if (f) fclose(f);
}

static void cgroups_remove(void) {
  for (int i = 0; i < n_cg; i++) rmdir(cg[i]);
}

static void mount_api(const char *root) {
  char p[800];
#define AT(sub) (snprintf(p, sizeof p, "%s/%s", root, sub), p)
  mount("proc", AT("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("tmpfs", AT("dev"), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  const struct { const char *name; int major, minor; } nodes[] = {
      {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
      {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
  for (unsigned i = 0; i < sizeof nodes / sizeof *nodes; i++)
    mknod(AT(nodes[i].name), S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor));
  mkdir(AT("dev/pts"), 0755);
  mount("devpts", AT("dev/pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  mkdir(AT("dev/shm"), 01777);
  mount("shm", AT("dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  const char *links[][2] = {{"pts/ptmx", "dev/ptmx"}, {"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
                            {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"}};
  for (unsigned i = 0; i < sizeof links / sizeof *links; i++) symlink(links[i][0], AT(links[i][1]));
  mount("sysfs", AT("sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  /* The masked paths: empty read-only tmpfs on directories, /dev/null on
   * files, read-only binds; each looked at first, as skiff does. */
  struct stat st;
  const char *masked[] = {"proc/acpi", "proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list",
                          "proc/timer_stats", "proc/sched_debug", "proc/scsi", "sys/firmware",
                          "sys/devices/virtual/powercap"};
  char null[800];
  snprintf(null, sizeof null, "%s/dev/null", root);
  for (unsigned i = 0; i < sizeof masked / sizeof *masked; i++) {
    if (stat(AT(masked[i]), &st)) continue;
    if (S_ISDIR(st.st_mode))
      mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
    else
      mount(null, p, NULL, MS_BIND, NULL);
  }
  const char *readonly[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};
  for (unsigned i = 0; i < sizeof readonly / sizeof *readonly; i++) {
    if (stat(AT(readonly[i]), &st)) continue;
    mount(p, p, NULL, MS_BIND | MS_REC, NULL);
    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  }
#undef AT
}

/* A filter of the size of skiff's default (about 340 instructions): the
 * arch check, then a list of syscalls denied with EPERM, and the
 * second filter skiff loads (clone3 → ENOSYS). */
static void load_seccomp(void) {
  struct sock_filter f[400];
  int n = 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4);
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0);
  for (int nr = 500; nr < 500 + 168; nr++) {
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1);
  }
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
  syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
  struct sock_filter g[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 38),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog2 = {.len = 4, .filter = g};
  syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog2);
}

/* Docker's default capabilities, the rest dropped from the bounding set. */
static void drop_caps(void) {
  const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID,
                      CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SYS_CHROOT, CAP_MKNOD,
                      CAP_AUDIT_WRITE, CAP_SETFCAP};
  uint64_t mask = 0;
  for (unsigned i = 0; i < sizeof keep / sizeof *keep; i++) mask |= 1ULL << keep[i];
  for (int c = 0; c <= 40; c++)
    if (!(mask & (1ULL << c))) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {{(uint32_t)mask, (uint32_t)mask, 0}, {(uint32_t)(mask >> 32), (uint32_t)(mask >> 32), 0}};
  syscall(SYS_capset, &h, d);
  gid_t groups[] = {0};
  setgroups(1, groups);
  setresgid(0, 0, 0);
  setresuid(0, 0, 0);
}

static int init(const char *cwd, const char *lower, int report, int out, int err) {
  char p[800], data[2048], root[700];
  for (int i = 0; i < n_cg; i++) {
    if (cg_v2[i]) continue; /* born there (CLONE_INTO_CGROUP) */
    snprintf(p, sizeof p, "%s/tasks", cg[i]);
    write_file(p, "0");
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET)) return 125;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  ioctl(s, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  ioctl(s, SIOCSIFFLAGS, &ifr);
  close(s);
  mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
  char pod_root[600];
  snprintf(pod_root, sizeof pod_root, "%s/stage1", cwd);
  mount("tmpfs", pod_root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m");
  const char *dirs[] = {"apps", "apps/app", ".etc", ".etc/app"};
  for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(p, sizeof p, "%s/%s", pod_root, dirs[i]);
    mkdir(p, 0755);
  }
  /* The /etc layer, after a look at the image's /etc. */
  struct stat st;
  const char *names[] = {"etc", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"};
  for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(p, sizeof p, "%s/apps/app/upper/%s", cwd, names[i]);
    lstat(p, &st);
    snprintf(p, sizeof p, "%s/%s", lower, names[i]);
    lstat(p, &st);
  }
  snprintf(p, sizeof p, "%s/.etc/app", pod_root);
  etc_layer(p);
  snprintf(root, sizeof root, "%s/apps/app", pod_root);
  snprintf(data, sizeof data, "lowerdir=%s/.etc/app:%s,upperdir=%s/apps/app/upper,workdir=%s/apps/app/work,volatile",
           pod_root, lower, cwd, cwd);
  if (mount("overlay", root, "overlay", 0, data)) return 125;
  mount_api(root);
  mount(NULL, pod_root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  sethostname("model", 5);
  if (chdir(root) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/")) return 125;
  setsid();
  /* What stage2 checks of the /etc files, in place already. */
  char buf[256];
  const char *checked[] = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"};
  for (unsigned i = 0; i < 3; i++) {
    int fd = open(checked[i], O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (read(fd, buf, sizeof buf) < 0) {
      }
      close(fd);
    }
  }
  pid_t app = fork();
  if (app == 0) {
    dup2(out, 1);
    dup2(err, 2);
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (read(fd, buf, sizeof buf) < 0) {
      }
      close(fd);
    }
    load_seccomp();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    drop_caps();
    execl("/bin/true", "true", (char *)NULL);
    _exit(127);
  }
  close(out);
  close(err);
  if (write(report, "started\n", 8) < 0) {
  }
  int status;
  waitpid(app, &status, 0);
  if (write(report, "exited\n", 7) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int flavor(const char *lower) {
  char cwd[512], id[64];
  if (!getcwd(cwd, sizeof cwd)) return 125;
  mkdir("stage1", 0755);
  snprintf(id, sizeof id, "%d", getpid());
  cgroups_make(id);
  int v2 = -1;
  for (int i = 0; i < n_cg; i++)
    if (cg_v2[i]) v2 = open(cg[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int report[2], out[2], err[2];
  if (pipe2(report, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return 125;
  int log = open("apps/app/log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (unshare(CLONE_NEWPID)) return 125;
  struct clone_args args = {.flags = v2 >= 0 ? CLONE_INTO_CGROUP : 0, .exit_signal = SIGCHLD,
                            .cgroup = (uint64_t)(v2 >= 0 ? v2 : 0)};
  pid_t child = (pid_t)syscall(SYS_clone3, &args, sizeof args);
  if (child == 0) {
    close(report[0]);
    close(out[0]);
    close(err[0]);
    _exit(init(cwd, lower, report[1], out[1], err[1]));
  }
  close(report[1]);
  close(out[1]);
  close(err[1]);
  put("pid", "1\n");
  put("started", "t\n");
  char buf[4096];
  if (read(report[0], buf, sizeof buf) > 0) put("ready", "t\n");
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0)
    if (write(log, buf, (size_t)n) < 0) break;
  while ((n = read(err[0], buf, sizeof buf)) > 0)
    if (write(log, buf, (size_t)n) < 0) break;
  while (read(report[0], buf, sizeof buf) > 0) {
  }
  int status;
  waitpid(child, &status, 0);
  put("apps/app/exit.json", "{}\n");
  cgroups_remove();
  close(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
