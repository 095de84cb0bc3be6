/**
 * The seccomp filter the tool server runs under: a classic-BPF program (the bytes `bwrap --seccomp
 * <fd>` loads) that kills any non-x86_64 or x32 system call, refuses with EPERM the calls a file
 * reader never needs (network sockets, new processes, namespaces, mounts, tracing, BPF, io_uring,
 * keyrings, kexec) and allows the rest. It is the second wall: even with the network namespace
 * shared, `socket(AF_INET)` fails.
 */

/** x86_64 system call numbers, from the kernel's arch/x86/entry/syscalls/syscall_64.tbl. */
export const SYSCALLS = {
  socket: 41,
  socketpair: 53,
  clone: 56,
  fork: 57,
  vfork: 58,
  ptrace: 101,
  personality: 135,
  pivot_root: 155,
  mount: 165,
  umount2: 166,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  clone3: 435,
  pidfd_getfd: 438,
  mount_setattr: 442,
} as const;

/** Calls refused outright with EPERM. */
export const DENIED_SYSCALLS: readonly (keyof typeof SYSCALLS)[] = [
  // No new processes (threads are clone with CLONE_THREAD, checked below): no shell, no fork bomb.
  'fork', 'vfork',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd',
  'personality',
  // The old and the new mount API, and namespace changes.
  'mount', 'umount2', 'pivot_root', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
  'unshare', 'setns',
  'kexec_load', 'kexec_file_load',
  'add_key', 'request_key', 'keyctl',
  'bpf', 'perf_event_open', 'userfaultfd',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
];

/** AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 calls carry this bit with the x86_64 arch value; none is legitimate here. */
export const X32_SYSCALL_BIT = 0x40000000;
export const AF_UNIX = 1;
export const CLONE_THREAD = 0x00010000;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const EPERM = 1;
export const ENOSYS = 38;

/** Offsets in struct seccomp_data: nr (u32), arch (u32), instruction_pointer (u64), args[6] (u64). */
export const SECCOMP_DATA = { nr: 0, arch: 4, arg0Low: 16 } as const;

// Classic BPF opcodes (linux/filter.h).
export const BPF_LD_W_ABS = 0x20;
export const BPF_JEQ_K = 0x15;
export const BPF_JGE_K = 0x35;
export const BPF_JSET_K = 0x45;
export const BPF_RET_K = 0x06;

type Label = 'next' | 'allow' | 'deny' | 'enosys' | 'kill' | 'unixOnly' | 'cloneCheck';
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

/** The filter as the bytes of a `struct sock_filter[]`, ready for `bwrap --seccomp <fd>`. */
export function buildSeccompProgram(): Buffer {
  const ld = (k: number, label?: Label): Insn => ({ op: BPF_LD_W_ABS, k, ...(label ? { label } : {}) });
  const ret = (k: number, label?: Label): Insn => ({ op: BPF_RET_K, k, ...(label ? { label } : {}) });
  const jeq = (k: number, jt: Label, jf: Label): Insn => ({ op: BPF_JEQ_K, k, jt, jf });
  return assemble([
    ld(SECCOMP_DATA.arch),
    jeq(AUDIT_ARCH_X86_64, 'next', 'kill'),
    ld(SECCOMP_DATA.nr),
    { op: BPF_JGE_K, k: X32_SYSCALL_BIT, jt: 'kill', jf: 'next' },
    ...DENIED_SYSCALLS.map((name) => jeq(SYSCALLS[name], 'deny', 'next')),
    // ENOSYS, not EPERM: glibc then falls back to clone(2), whose flags (unlike clone3's) BPF can see.
    jeq(SYSCALLS.clone3, 'enosys', 'next'),
    jeq(SYSCALLS.socket, 'unixOnly', 'next'),
    jeq(SYSCALLS.socketpair, 'unixOnly', 'next'),
    jeq(SYSCALLS.clone, 'cloneCheck', 'next'),
    ret(SECCOMP_RET_ALLOW),
    // The domain is an int: the kernel reads only the low 32 bits, and so does this check.
    ld(SECCOMP_DATA.arg0Low, 'unixOnly'),
    jeq(AF_UNIX, 'allow', 'deny'),
    // Threads only: a clone without CLONE_THREAD is a new process; namespace flags are never allowed.
    ld(SECCOMP_DATA.arg0Low, 'cloneCheck'),
    { op: BPF_JSET_K, k: CLONE_NAMESPACE_FLAGS, jt: 'deny', jf: 'next' },
    { op: BPF_JSET_K, k: CLONE_THREAD, jt: 'allow', jf: 'deny' },
    ret(SECCOMP_RET_ALLOW, 'allow'),
    ret(SECCOMP_RET_ERRNO | EPERM, 'deny'),
    ret(SECCOMP_RET_ERRNO | ENOSYS, 'enosys'),
    ret(SECCOMP_RET_KILL_PROCESS, 'kill'),
  ]);
}
