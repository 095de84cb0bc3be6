/**
 * The seccomp filter the tool server runs under: a classic-BPF program (the bytes `bwrap --seccomp
 * <fd>` or the Landlock launcher loads) that kills any non-x86_64 or x32 system call, refuses with
 * EPERM the calls a file reader never needs (network sockets, new processes, namespaces, mounts,
 * tracing, BPF, io_uring, keyrings, kexec) and allows the rest. Under bubblewrap it is the second
 * wall: even with the network namespace shared, `socket(AF_INET)` fails.
 *
 * The Landlock program (`buildSeccompProgram('landlock')`) also stands in for what Landlock mode
 * lacks: with no pid, ipc or net namespace the server shares the worker's uid, processes and unix
 * sockets, and Landlock itself controls neither file metadata (any ABI) nor, below ABI 3, 4 and 6,
 * truncation, TCP, abstract unix sockets and signals. So it refuses every socket (AF_UNIX too:
 * pathname sockets such as /var/run/docker.sock are not Landlock's at any ABI), signals and
 * scheduling changes aimed at other processes, metadata and truncation, SysV IPC and message queues.
 */
import type { Confinement } from './confinement.ts';

/** x86_64 system call numbers, from the kernel's arch/x86/entry/syscalls/syscall_64.tbl. */
export const SYSCALLS = {
  open: 2,
  ioctl: 16,
  shmget: 29,
  shmat: 30,
  shmctl: 31,
  socket: 41,
  socketpair: 53,
  clone: 56,
  fork: 57,
  vfork: 58,
  kill: 62,
  semget: 64,
  semop: 65,
  semctl: 66,
  msgget: 68,
  msgsnd: 69,
  msgrcv: 70,
  msgctl: 71,
  fcntl: 72,
  truncate: 76,
  ftruncate: 77,
  creat: 85,
  chmod: 90,
  fchmod: 91,
  chown: 92,
  fchown: 93,
  lchown: 94,
  ptrace: 101,
  rt_sigqueueinfo: 129,
  utime: 132,
  personality: 135,
  setpriority: 141,
  sched_setparam: 142,
  sched_setscheduler: 144,
  pivot_root: 155,
  mount: 165,
  umount2: 166,
  init_module: 175,
  delete_module: 176,
  setxattr: 188,
  lsetxattr: 189,
  fsetxattr: 190,
  removexattr: 197,
  lremovexattr: 198,
  fremovexattr: 199,
  tkill: 200,
  sched_setaffinity: 203,
  semtimedop: 220,
  tgkill: 234,
  utimes: 235,
  mq_open: 240,
  mq_unlink: 241,
  mq_timedsend: 242,
  mq_timedreceive: 243,
  mq_notify: 244,
  mq_getsetattr: 245,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  ioprio_set: 251,
  inotify_add_watch: 254,
  migrate_pages: 256,
  openat: 257,
  fchownat: 260,
  futimesat: 261,
  fchmodat: 268,
  unshare: 272,
  move_pages: 279,
  utimensat: 280,
  rt_tgsigqueueinfo: 297,
  perf_event_open: 298,
  fanotify_init: 300,
  prlimit64: 302,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  finit_module: 313,
  sched_setattr: 314,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  pidfd_send_signal: 424,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  pidfd_open: 434,
  clone3: 435,
  openat2: 437,
  pidfd_getfd: 438,
  process_madvise: 440,
  mount_setattr: 442,
  process_mrelease: 448,
  fchmodat2: 452,
  setxattrat: 463,
  removexattrat: 466,
  open_tree_attr: 467,
  file_setattr: 469,
} as const;


/** Calls refused outright with EPERM. */
export const DENIED_SYSCALLS: readonly (keyof typeof SYSCALLS)[] = [
  // No new processes (threads are clone with CLONE_THREAD, checked below): no shell, no fork bomb.
  'fork', 'vfork',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd',
  'personality',
  // The old and the new mount API, and namespace changes.
  'mount', 'umount2', 'pivot_root', 'open_tree', 'open_tree_attr', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
  'unshare', 'setns',
  'kexec_load', 'kexec_file_load',
  'add_key', 'request_key', 'keyctl',
  'bpf', 'perf_event_open', 'userfaultfd',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
];

/** Also refused with EPERM in Landlock mode (see the top of this file for why). */
export const LANDLOCK_DENIED_SYSCALLS: readonly (keyof typeof SYSCALLS)[] = [
  // Other processes of the worker's uid, which no pid namespace hides: signals (Landlock scopes
  // them from ABI 6 only), pidfds, scheduling and I/O priority.
  'kill', 'tkill', 'tgkill', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'pidfd_open', 'pidfd_send_signal',
  'process_madvise', 'process_mrelease', 'kcmp', 'migrate_pages', 'move_pages',
  'setpriority', 'ioprio_set', 'sched_setaffinity', 'sched_setscheduler', 'sched_setparam', 'sched_setattr',
  // File metadata, which Landlock controls at no ABI, and truncation (Landlock ABI 3).
  'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat',
  'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat', 'removexattr', 'lremovexattr', 'fremovexattr', 'removexattrat',
  'file_setattr', 'utime', 'utimes', 'futimesat', 'utimensat', 'truncate', 'ftruncate', 'creat',
  // Watching host files; the worker's SysV IPC and POSIX message queues (no ipc namespace).
  'inotify_add_watch', 'fanotify_init',
  'shmget', 'shmat', 'shmctl', 'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'semget', 'semop', 'semctl', 'semtimedop',
  'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedreceive', 'mq_notify', 'mq_getsetattr',
  // Opening by handle skips path checks; modules. Both need capabilities the launcher drops.
  'name_to_handle_at', 'open_by_handle_at', 'init_module', 'finit_module', 'delete_module',
];

/** AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 calls carry this bit with the x86_64 arch value; none is legitimate here. */
export const X32_SYSCALL_BIT = 0x40000000;
export const AF_UNIX = 1;
export const CLONE_THREAD = 0x00010000;
export const O_TRUNC = 0o1000;
/** fcntl commands and ioctls that make the kernel signal a chosen process when a descriptor is ready. */
export const F_SETOWN = 8;
export const F_SETOWN_EX = 15;
export const FIOSETOWN = 0x8901;
export const SIOCSPGRP = 0x8902;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const EPERM = 1;
export const ENOSYS = 38;

/** Offsets in struct seccomp_data: nr (u32), arch (u32), instruction_pointer (u64), args[6] (u64). */
export const SECCOMP_DATA = { nr: 0, arch: 4, arg0Low: 16, arg1Low: 24, arg2Low: 32 } as const;

// Classic BPF opcodes (linux/filter.h).
export const BPF_LD_W_ABS = 0x20;
export const BPF_JEQ_K = 0x15;
export const BPF_JGE_K = 0x35;
export const BPF_JSET_K = 0x45;
export const BPF_RET_K = 0x06;

type Label = 'next' | 'allow' | 'deny' | 'enosys' | 'kill' | 'unixOnly' | 'cloneCheck' | 'openCheck' | 'openatCheck' | 'fcntlCheck' | 'ioctlCheck' | 'prlimitCheck';
type Insn =
  | { op: typeof BPF_LD_W_ABS | typeof BPF_RET_K; k: number; label?: Label }
  | { op: typeof BPF_JEQ_K | typeof BPF_JGE_K | typeof BPF_JSET_K; k: number; jt: Label; jf: Label; label?: Label };

function assemble(insns: Insn[]): Buffer {
  const at = new Map<Label, number>();
  insns.forEach((insn, i) => {
    if (insn.label) at.set(insn.label, i);
  });
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, little-endian on x86_64.
    out.writeUInt16LE(insn.op, i * 8);
    if ('jt' in insn) {
      const rel = (label: Label): number => {
        const target = label === 'next' ? i + 1 : at.get(label);
        if (target === undefined || target <= i || target - i - 1 > 255) throw new Error(`bad BPF jump to ${label} at ${i}`);
        return target - i - 1;
      };
      out.writeUInt8(rel(insn.jt), i * 8 + 2);
      out.writeUInt8(rel(insn.jf), i * 8 + 3);
    }
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}

/**
 * The filter as the bytes of a `struct sock_filter[]`, ready for `bwrap --seccomp <fd>` (`'bwrap'`)
 * or the Landlock launcher's `--seccomp-fd` (`'landlock'`).
 */
export function buildSeccompProgram(confinement: Confinement = 'bwrap'): Buffer {
  const ld = (k: number, label?: Label): Insn => ({ op: BPF_LD_W_ABS, k, ...(label ? { label } : {}) });
  const ret = (k: number, label?: Label): Insn => ({ op: BPF_RET_K, k, ...(label ? { label } : {}) });
  const jeq = (k: number, jt: Label, jf: Label): Insn => ({ op: BPF_JEQ_K, k, jt, jf });
  const jset = (k: number, jt: Label, jf: Label): Insn => ({ op: BPF_JSET_K, k, jt, jf });
  const landlock = confinement === 'landlock';
  // Call numbers, ioctl and fcntl commands, flags and pids are ints or unsigned ints: the kernel
  // reads only the low 32 bits of those arguments, and so do these checks.
  return assemble([
    ld(SECCOMP_DATA.arch),
    jeq(AUDIT_ARCH_X86_64, 'next', 'kill'),
    ld(SECCOMP_DATA.nr),
    { op: BPF_JGE_K, k: X32_SYSCALL_BIT, jt: 'kill', jf: 'next' },
    ...[...DENIED_SYSCALLS, ...(landlock ? LANDLOCK_DENIED_SYSCALLS : [])].map((name) => jeq(SYSCALLS[name], 'deny', 'next')),
    // ENOSYS, not EPERM: glibc then falls back to clone(2), whose flags (unlike clone3's) BPF can see.
    jeq(SYSCALLS.clone3, 'enosys', 'next'),
    ...(landlock
      ? [
          // Landlock: no socket of any family; arguments that reach other processes or truncate files.
          jeq(SYSCALLS.socket, 'deny', 'next'),
          jeq(SYSCALLS.socketpair, 'deny', 'next'),
          jeq(SYSCALLS.openat2, 'enosys', 'next'), // its flags are behind a pointer; glibc's open() uses openat
          jeq(SYSCALLS.open, 'openCheck', 'next'),
          jeq(SYSCALLS.openat, 'openatCheck', 'next'),
          jeq(SYSCALLS.fcntl, 'fcntlCheck', 'next'),
          jeq(SYSCALLS.ioctl, 'ioctlCheck', 'next'),
          jeq(SYSCALLS.prlimit64, 'prlimitCheck', 'next'),
        ]
      : [
          jeq(SYSCALLS.socket, 'unixOnly', 'next'),
          jeq(SYSCALLS.socketpair, 'unixOnly', 'next'),
        ]),
    jeq(SYSCALLS.clone, 'cloneCheck', 'next'),
    ret(SECCOMP_RET_ALLOW),
    ...(landlock
      ? [
          ld(SECCOMP_DATA.arg1Low, 'openCheck'),
          jset(O_TRUNC, 'deny', 'allow'),
          ld(SECCOMP_DATA.arg2Low, 'openatCheck'),
          jset(O_TRUNC, 'deny', 'allow'),
          ld(SECCOMP_DATA.arg1Low, 'fcntlCheck'),
          jeq(F_SETOWN, 'deny', 'next'),
          jeq(F_SETOWN_EX, 'deny', 'allow'),
          ld(SECCOMP_DATA.arg1Low, 'ioctlCheck'),
          jeq(FIOSETOWN, 'deny', 'next'),
          jeq(SIOCSPGRP, 'deny', 'allow'),
          // Only its own limits (pid 0): node reads (and may raise) them that way.
          ld(SECCOMP_DATA.arg0Low, 'prlimitCheck'),
          jeq(0, 'allow', 'deny'),
        ]
      : [
          ld(SECCOMP_DATA.arg0Low, 'unixOnly'),
          jeq(AF_UNIX, 'allow', 'deny'),
        ]),
    // Threads only: a clone without CLONE_THREAD is a new process; namespace flags are never allowed.
    ld(SECCOMP_DATA.arg0Low, 'cloneCheck'),
    jset(CLONE_NAMESPACE_FLAGS, 'deny', 'next'),
    jset(CLONE_THREAD, 'allow', 'deny'),
    ret(SECCOMP_RET_ALLOW, 'allow'),
    ret(SECCOMP_RET_ERRNO | EPERM, 'deny'),
    ret(SECCOMP_RET_ERRNO | ENOSYS, 'enosys'),
    ret(SECCOMP_RET_KILL_PROCESS, 'kill'),
  ]);
}
