/**
 * The seccomp programs (bubblewrap's and Landlock's), run by a small classic-BPF interpreter over
 * every decision they must make. (Their effect on real processes is in sandbox-isolation.test.ts and
 * sandbox-landlock.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AF_UNIX, AUDIT_ARCH_X86_64, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_LD_W_ABS, BPF_RET_K, buildSeccompProgram, CLONE_THREAD,
  DENIED_SYSCALLS, ENOSYS, EPERM, F_SETOWN, F_SETOWN_EX, FIOSETOWN, LANDLOCK_DENIED_SYSCALLS, O_TRUNC, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS, SIOCSPGRP, SYSCALLS, X32_SYSCALL_BIT,
} from '../sandbox/seccomp.ts';

const program = buildSeccompProgram();
const ALLOW = SECCOMP_RET_ALLOW;
const DENY = SECCOMP_RET_ERRNO | EPERM;
const KILL = SECCOMP_RET_KILL_PROCESS;

/** A call as the kernel hands it to the filter: struct seccomp_data, little-endian. */
function seccompData(nr: number, args: bigint[] = [], arch = AUDIT_ARCH_X86_64): Buffer {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((arg, i) => data.writeBigUInt64LE(arg, 16 + i * 8));
  return data;
}

/** Classic BPF, just the instructions a seccomp filter may use here; any other opcode fails. */
function run(filter: Buffer, data: Buffer): number {
  let acc = 0;
  for (let pc = 0, steps = 0; steps < 4096; steps++) {
    assert.ok(pc >= 0 && pc * 8 < filter.length, `pc ${pc} out of the program`);
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case BPF_LD_W_ABS:
        assert.ok(k % 4 === 0 && k + 4 <= 64, `bad load offset ${k}`);
        acc = data.readUInt32LE(k);
        pc += 1;
        break;
      case BPF_JEQ_K:
        pc += 1 + (acc === k ? jt : jf);
        break;
      case BPF_JGE_K:
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case BPF_JSET_K:
        pc += 1 + ((acc & k) >>> 0 !== 0 ? jt : jf);
        break;
      case BPF_RET_K:
        return k;
      default:
        assert.fail(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  return assert.fail('program did not return');
}

const AF_INET = 2n;
const AF_INET6 = 10n;
const AF_NETLINK = 16n;
const SIGCHLD = 17n;
const PTHREAD_FLAGS = 0x3d0f00n; // glibc's pthread_create: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

describe('seccomp program', () => {
  it('is a whole number of sock_filter records, at most the kernel limit', () => {
    assert.equal(program.length % 8, 0);
    assert.ok(program.length / 8 <= 4096);
  });

  it('kills any call made with another architecture or the x32 ABI', () => {
    assert.equal(run(program, seccompData(SYSCALLS.socket, [AF_INET], 0x40000003 /* i386 */)), KILL);
    assert.equal(run(program, seccompData(0, [], 0xc00000b7 /* aarch64 */)), KILL);
    assert.equal(run(program, seccompData(X32_SYSCALL_BIT | SYSCALLS.socket, [AF_INET])), KILL);
    assert.equal(run(program, seccompData(X32_SYSCALL_BIT | 0)), KILL);
  });

  it('refuses every listed call with EPERM', () => {
    for (const name of DENIED_SYSCALLS) assert.equal(run(program, seccompData(SYSCALLS[name])), DENY, name);
    for (const name of ['fork', 'vfork', 'ptrace', 'bpf', 'mount', 'unshare', 'setns', 'io_uring_setup', 'keyctl', 'userfaultfd', 'perf_event_open', 'kexec_load', 'personality', 'process_vm_readv'] as const) {
      assert.ok(DENIED_SYSCALLS.includes(name), `${name} is denied`);
    }
  });

  it('allows sockets only in the AF_UNIX domain, judged on the int the kernel reads', () => {
    assert.equal(run(program, seccompData(SYSCALLS.socket, [BigInt(AF_UNIX)])), ALLOW);
    assert.equal(run(program, seccompData(SYSCALLS.socketpair, [BigInt(AF_UNIX)])), ALLOW);
    for (const domain of [AF_INET, AF_INET6, AF_NETLINK, 0n, 0xffffffffn]) {
      assert.equal(run(program, seccompData(SYSCALLS.socket, [domain])), DENY, `socket(${domain})`);
      assert.equal(run(program, seccompData(SYSCALLS.socketpair, [domain])), DENY, `socketpair(${domain})`);
    }
    // High bits are ignored by the kernel (int domain): (int)0x1_00000001 is AF_UNIX, 0x1_00000002 AF_INET.
    assert.equal(run(program, seccompData(SYSCALLS.socket, [0x1_00000001n])), ALLOW);
    assert.equal(run(program, seccompData(SYSCALLS.socket, [0x1_00000002n])), DENY);
  });

  it('allows threads but not processes or namespaces through clone, and sends clone3 back to clone', () => {
    assert.equal(run(program, seccompData(SYSCALLS.clone, [PTHREAD_FLAGS])), ALLOW);
    assert.equal(run(program, seccompData(SYSCALLS.clone, [SIGCHLD])), DENY, 'fork via clone');
    assert.equal(run(program, seccompData(SYSCALLS.clone, [0x4111n /* VM|VFORK|SIGCHLD */])), DENY, 'vfork via clone');
    assert.equal(run(program, seccompData(SYSCALLS.clone, [PTHREAD_FLAGS | 0x10000000n /* NEWUSER */])), DENY);
    assert.equal(run(program, seccompData(SYSCALLS.clone, [BigInt(CLONE_THREAD) | 0x40000000n /* NEWNET */])), DENY);
    assert.equal(run(program, seccompData(SYSCALLS.clone3)), SECCOMP_RET_ERRNO | ENOSYS);
  });

  it('allows what a file reader needs', () => {
    for (const nr of [0 /* read */, 1 /* write */, 3 /* close */, 9 /* mmap */, 42 /* connect: socket() is the gate */, 59 /* execve */, 202 /* futex */, 257 /* openat */, 318 /* getrandom */]) {
      assert.equal(run(program, seccompData(nr)), ALLOW, `syscall ${nr}`);
    }
  });

  it('allows any other x86_64 call number (property)', () => {
    const special = new Set<number>([...DENIED_SYSCALLS.map((n) => SYSCALLS[n]), SYSCALLS.socket, SYSCALLS.socketpair, SYSCALLS.clone, SYSCALLS.clone3]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: X32_SYSCALL_BIT - 1 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (nr, arg) => {
        fc.pre(!special.has(nr));
        return run(program, seccompData(nr, [arg])) === ALLOW;
      }),
    );
  });
});

describe('Landlock seccomp program', () => {
  const landlock = buildSeccompProgram('landlock');
  const O_RDONLY = 0n;
  const O_CLOEXEC = 0o2000000n;
  const AT_FDCWD = 0xffffff9cn;

  it('keeps every decision of the bubblewrap program but the AF_UNIX exception', () => {
    assert.equal(landlock.length % 8, 0);
    for (const name of DENIED_SYSCALLS) assert.equal(run(landlock, seccompData(SYSCALLS[name])), DENY, name);
    assert.equal(run(landlock, seccompData(SYSCALLS.socket, [AF_INET], 0x40000003)), KILL);
    assert.equal(run(landlock, seccompData(X32_SYSCALL_BIT | 0)), KILL);
    assert.equal(run(landlock, seccompData(SYSCALLS.clone, [PTHREAD_FLAGS])), ALLOW);
    assert.equal(run(landlock, seccompData(SYSCALLS.clone, [SIGCHLD])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.clone3)), SECCOMP_RET_ERRNO | ENOSYS);
  });

  it('refuses every socket, AF_UNIX included: pathname sockets are not Landlock\'s', () => {
    for (const domain of [BigInt(AF_UNIX), AF_INET, AF_INET6, AF_NETLINK, 0n, 0x1_00000001n]) {
      assert.equal(run(landlock, seccompData(SYSCALLS.socket, [domain])), DENY, `socket(${domain})`);
      assert.equal(run(landlock, seccompData(SYSCALLS.socketpair, [domain])), DENY, `socketpair(${domain})`);
    }
  });

  it('refuses signals, scheduling and limits aimed at other processes, metadata, truncation and IPC', () => {
    for (const name of LANDLOCK_DENIED_SYSCALLS) assert.equal(run(landlock, seccompData(SYSCALLS[name])), DENY, name);
    for (const name of ['kill', 'tgkill', 'pidfd_send_signal', 'setpriority', 'sched_setaffinity', 'chmod', 'fchmodat2', 'setxattr', 'utimensat', 'truncate', 'shmat', 'mq_open', 'inotify_add_watch'] as const) {
      assert.ok(LANDLOCK_DENIED_SYSCALLS.includes(name), `${name} is denied`);
    }
    assert.equal(run(landlock, seccompData(SYSCALLS.prlimit64, [0n])), ALLOW, 'its own limits');
    assert.equal(run(landlock, seccompData(SYSCALLS.prlimit64, [1234n])), DENY, 'another process\'s limits');
    assert.equal(run(landlock, seccompData(SYSCALLS.prlimit64, [0xffff_ffff_0000_0000n])), ALLOW, 'pid_t is an int: high bits ignored, as the kernel does');
    assert.equal(run(landlock, seccompData(SYSCALLS.fcntl, [0n, BigInt(F_SETOWN)])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.fcntl, [0n, BigInt(F_SETOWN_EX)])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.fcntl, [0n, 3n /* F_GETFL */])), ALLOW);
    assert.equal(run(landlock, seccompData(SYSCALLS.ioctl, [0n, BigInt(FIOSETOWN)])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.ioctl, [0n, BigInt(SIOCSPGRP)])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.ioctl, [0n, 0x5421n /* FIONBIO */])), ALLOW);
  });

  it('refuses opening with O_TRUNC (Landlock controls truncation only from ABI 3) and openat2, whose flags it cannot see', () => {
    assert.equal(run(landlock, seccompData(SYSCALLS.openat, [AT_FDCWD, 0n, O_RDONLY | O_CLOEXEC])), ALLOW);
    assert.equal(run(landlock, seccompData(SYSCALLS.openat, [AT_FDCWD, 0n, O_RDONLY | BigInt(O_TRUNC)])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.open, [0n, O_RDONLY])), ALLOW);
    assert.equal(run(landlock, seccompData(SYSCALLS.open, [0n, BigInt(O_TRUNC) | 1n])), DENY);
    assert.equal(run(landlock, seccompData(SYSCALLS.openat2)), SECCOMP_RET_ERRNO | ENOSYS);
  });

  it('allows any other x86_64 call number (property)', () => {
    const special = new Set<number>([
      ...[...DENIED_SYSCALLS, ...LANDLOCK_DENIED_SYSCALLS].map((n) => SYSCALLS[n]),
      ...(['socket', 'socketpair', 'clone', 'clone3', 'openat2', 'open', 'openat', 'fcntl', 'ioctl', 'prlimit64'] as const).map((n) => SYSCALLS[n]),
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: X32_SYSCALL_BIT - 1 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (nr, arg) => {
        fc.pre(!special.has(nr));
        return run(landlock, seccompData(nr, [arg, arg, arg])) === ALLOW;
      }),
    );
  });
});
