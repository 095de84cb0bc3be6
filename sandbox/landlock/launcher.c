/*
 * astry-landlock: confines the tool server where bubblewrap cannot run (containers whose seccomp
 * profile forbids user namespaces). sandbox/runner.ts starts it through prlimit (rlimits):
 *
 *   astry-landlock --parent PID [--ro PATH]... [--rx PATH]... --chdir DIR --seccomp-fd FD -- NODE ARG...
 *
 *   --ro PATH   readable: a directory's files and listing (read_file, read_dir), or one file (read_file)
 *   --rx PATH   readable and executable (read_file, execute): node and the C library directories
 *   tests only: --unsafe-no-landlock, --unsafe-no-landlock-fs, --unsafe-no-seccomp, --unsafe-abi N
 *
 * Steps, in order; any failure exits 125 with a message on stderr, so the command is never run
 * with less than all of them: die with the parent; no_new_privs; no capability; Landlock (every
 * filesystem right the kernel knows is handled, only the paths above are granted, no TCP, and from
 * ABI 6 no signal or abstract unix socket out of the domain); the seccomp program read from FD
 * (sandbox/seccomp.ts, which also covers what an older Landlock ABI cannot); no descriptor above 2;
 * chdir; execve with an empty environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Landlock's uapi (linux/landlock.h), spelled out here because the build machine's headers may be
 * older than the kernels it runs on. Values from the kernel's include/uapi/linux/landlock.h.
 */
struct ruleset_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct path_beneath_attr { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
#define CREATE_RULESET_VERSION (1U << 0)
#define RULE_PATH_BENEATH 1
#define FS_EXECUTE (1ULL << 0)
#define FS_WRITE_FILE (1ULL << 1)
#define FS_READ_FILE (1ULL << 2)
#define FS_READ_DIR (1ULL << 3)
#define FS_REMOVE_DIR (1ULL << 4)
#define FS_REMOVE_FILE (1ULL << 5)
#define FS_MAKE_CHAR (1ULL << 6)
#define FS_MAKE_DIR (1ULL << 7)
#define FS_MAKE_REG (1ULL << 8)
#define FS_MAKE_SOCK (1ULL << 9)
#define FS_MAKE_FIFO (1ULL << 10)
#define FS_MAKE_BLOCK (1ULL << 11)
#define FS_MAKE_SYM (1ULL << 12)
#define FS_REFER (1ULL << 13)    /* ABI 2 */
#define FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */
#define RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0) /* ABI 7 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/*
 * ABI 1 (Linux 5.13) is enough because sandbox/seccomp.ts's Landlock program refuses, on any ABI,
 * what later ABIs add: truncation (3), every socket (TCP is 4, abstract unix sockets 6) and
 * signals (6). Device ioctls (5) need a device, and no device can be opened. Every right of the
 * running ABI is still handled, so a newer kernel adds its walls to seccomp's.
 */
#define MIN_ABI 1
#define MAX_RULES 16
#define MAX_FILTER 4096 /* BPF_MAXINSNS */

static void die(const char *fmt, ...) {
  va_list ap;
  int saved = errno;
  fputs("astry-landlock: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (saved) fprintf(stderr, ": %s", strerror(saved));
  fputs("; refusing to start the tool server\n", stderr);
  exit(125);
}

static long parse_number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || *text == '\0' || *end != '\0' || value < 0) die("bad %s: %s", what, text);
  return value;
}

/* No capability survives: with an empty bounding set even uid 0 gains none at execve. */
static void drop_capabilities(void) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) die("clearing ambient capabilities");
  int cap;
  for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
    /* EPERM: no CAP_SETPCAP to shrink the set with; that matters only to uid 0, checked below. */
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EPERM) die("dropping capability %d", cap);
  }
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
  if (syscall(SYS_capset, &header, none)) die("clearing capabilities");
  if (getuid() == 0 || geteuid() == 0) {
    for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
      if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) { errno = 0; die("uid 0 keeps capability %d in its bounding set", cap); }
    }
  }
}

/* The program is a struct sock_filter[] that the runner writes to fd and closes. */
static struct sock_fprog read_filter(int fd) {
  static struct sock_filter insns[MAX_FILTER + 1];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, (char *)insns + got, sizeof insns - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("reading the seccomp program");
    if (n == 0) break;
    got += (size_t)n;
    if (got == sizeof insns) { errno = 0; die("seccomp program longer than %d instructions", MAX_FILTER); }
  }
  close(fd);
  errno = 0;
  if (got == 0 || got % sizeof insns[0]) die("seccomp program of %zu bytes is not whole instructions", got);
  return (struct sock_fprog){ .len = (unsigned short)(got / sizeof insns[0]), .filter = insns };
}

static void add_rule(int ruleset, const char *path, uint64_t access) {
  struct stat st;
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st)) die("opening %s", path);
  /* A rule on a file may only grant file rights (the kernel refuses directory rights there). */
  if (!S_ISDIR(st.st_mode)) access &= FS_EXECUTE | FS_READ_FILE;
  struct path_beneath_attr rule = { .allowed_access = access, .parent_fd = fd };
  if (syscall(SYS_landlock_add_rule, ruleset, RULE_PATH_BENEATH, &rule, 0)) die("Landlock rule for %s", path);
  close(fd);
}

int main(int argc, char **argv) {
  const char *ro[MAX_RULES], *rx[MAX_RULES], *dir = NULL;
  int n_ro = 0, n_rx = 0, seccomp_fd = -1, landlock = 1, landlock_fs = 1, seccomp = 1, i;
  long parent = -1, pretend_abi = -1;
  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(flag, "--unsafe-no-landlock")) landlock = 0;
    else if (!strcmp(flag, "--unsafe-no-landlock-fs")) landlock_fs = 0;
    else if (!strcmp(flag, "--unsafe-no-seccomp")) seccomp = 0;
    else if (!value) die("%s needs a value", flag);
    else if (!strcmp(flag, "--ro") && n_ro < MAX_RULES) ro[n_ro++] = value, i++;
    else if (!strcmp(flag, "--rx") && n_rx < MAX_RULES) rx[n_rx++] = value, i++;
    else if (!strcmp(flag, "--chdir")) dir = value, i++;
    else if (!strcmp(flag, "--parent")) parent = parse_number(value, "--parent"), i++;
    else if (!strcmp(flag, "--seccomp-fd")) seccomp_fd = (int)parse_number(value, "--seccomp-fd"), i++;
    else if (!strcmp(flag, "--unsafe-abi")) pretend_abi = parse_number(value, "--unsafe-abi"), i++;
    else die("unknown or repeated too often: %s", flag);
  }
  errno = 0;
  if (i + 1 >= argc) die("no command after --");
  if (!dir || parent < 0 || (seccomp && seccomp_fd < 0)) die("--chdir, --parent and --seccomp-fd are required");
  char **command = argv + i + 1;

  /* Die with the worker; if it is already gone, the parent has changed. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) die("PR_SET_PDEATHSIG");
  if (getppid() != parent) die("the worker (pid %ld) has exited", parent);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("PR_SET_NO_NEW_PRIVS");
  drop_capabilities();
  struct sock_fprog filter = { 0, NULL };
  if (seccomp) filter = read_filter(seccomp_fd);

  if (landlock) {
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, CREATE_RULESET_VERSION);
    if (abi < 0) die("Landlock is not available (Linux 5.13+ with landlock in the lsm= list)");
    if (pretend_abi >= 0 && pretend_abi < abi) abi = (int)pretend_abi;
    errno = 0;
    if (abi < MIN_ABI) die("Landlock ABI %d is below the minimum %d", abi, MIN_ABI);
    struct ruleset_attr attr = {
      .handled_access_fs = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_REMOVE_DIR |
          FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR | FS_MAKE_REG | FS_MAKE_SOCK | FS_MAKE_FIFO |
          FS_MAKE_BLOCK | FS_MAKE_SYM | FS_REFER | FS_TRUNCATE | FS_IOCTL_DEV,
      .handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP,
      .scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
    };
    /* Best effort down to MIN_ABI, as in the kernel's Landlock documentation: drop what this ABI lacks. */
    switch (abi) {
    case 1: attr.handled_access_fs &= ~FS_REFER; /* fall through */
    case 2: attr.handled_access_fs &= ~FS_TRUNCATE; /* fall through */
    case 3: attr.handled_access_net &= ~(NET_BIND_TCP | NET_CONNECT_TCP); /* fall through */
    case 4: attr.handled_access_fs &= ~FS_IOCTL_DEV; /* fall through */
    case 5: attr.scoped &= ~(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL); /* fall through */
    default: break; /* 6 and later: all of the above (7 adds only audit logging flags) */
    }
    if (!landlock_fs) attr.handled_access_fs = 0;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0) die("creating the Landlock ruleset (ABI %d)", abi);
    /* No net rule: with TCP bind and connect handled, no port is allowed. */
    if (landlock_fs) {
      for (int r = 0; r < n_ro; r++) add_rule(ruleset, ro[r], FS_READ_FILE | FS_READ_DIR);
      for (int r = 0; r < n_rx; r++) add_rule(ruleset, rx[r], FS_READ_FILE | FS_EXECUTE);
    }
    /* From ABI 7 denials are audited until execve: the self-check below is one, at every start. */
    if (syscall(SYS_landlock_restrict_self, ruleset, abi >= 7 ? RESTRICT_SELF_LOG_SAME_EXEC_OFF : 0)) die("enforcing the Landlock ruleset");
    close(ruleset);
    /* Proof it holds: / is never granted, so opening it must now be refused. */
    int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (landlock_fs && (root >= 0 || errno != EACCES)) { errno = 0; die("Landlock is not enforced: / is readable"); }
    if (root >= 0) close(root);
  }

  if (seccomp && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter)) die("installing the seccomp program");
  if (syscall(SYS_close_range, 3, ~0U, 0)) die("closing descriptors above 2");
  if (chdir(dir)) die("chdir %s", dir);
  char *no_environment[] = { NULL };
  execve(command[0], command, no_environment);
  die("executing %s", command[0]);
}
