import type pg from 'pg';
import { recordCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.ts';
import { toEntry, type AuditEntry, type AuditEvent } from './entry.ts';
import type { CheckpointSigner } from './signer.ts';
import { readSpool, Spool } from './spool.ts';
import { chainHead, insertEntries, withTimeout, type ChainLink } from './store.ts';

export type { AuditEvent } from './entry.ts';

/** Options of an AuditLog. */
export interface AuditLogOptions {
  /** Pool of the application role (INSERT and SELECT on the audit tables). */
  pool: pg.Pool;
  /** Local directory for the spool used while Postgres is unreachable (created 0700; local disk, one host). */
  spoolDir: string;
  signer: CheckpointSigner;
  /** Directory outside the database receiving one signed JSON file per checkpoint (created 0700). */
  checkpointDir: string;
  /** A checkpoint is signed whenever the chain passes a multiple of this many entries. Default 100. */
  checkpointEvery?: number;
  /** How long an append waits for Postgres before spooling, in ms. Default 500. */
  insertTimeoutMs?: number;
  /** How often the background drainer looks for spooled events, in ms. Default 1000. */
  drainIntervalMs?: number;
  /** Receives what the log cannot tell a caller: drain failures, torn spool lines, failed checkpoints. Default console.warn. */
  onWarning?: (message: string, err?: unknown) => void;
}

/** Entries per drain transaction. */
const DRAIN_BATCH = 200;
/** Client-side limit on one drain transaction, in ms. */
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * The tamper-evident audit trail. append() never waits on Postgres for longer than insertTimeoutMs:
 * when the insert fails it writes the event to the local spool and returns once that is fsynced.
 * While the spool holds events, new ones join it (keeping this process's order), and a background
 * drainer moves them into the chain once Postgres answers again. append() rejects only when the
 * event is invalid or neither Postgres nor the spool took it: callers must then fail the request.
 */
export class AuditLog {
  readonly #pool: pg.Pool;
  readonly #spool: Spool;
  readonly #signer: CheckpointSigner;
  readonly #checkpointDir: string;
  readonly #checkpointEvery: number;
  readonly #insertTimeoutMs: number;
  readonly #warn: (message: string, err?: unknown) => void;
  readonly #timer: NodeJS.Timeout;
  readonly #background = new Set<Promise<unknown>>();
  readonly #checkpoints = new Set<Promise<unknown>>();
  readonly #onPoolError = (err: Error): void => this.#warn('audit: idle Postgres connection failed', err);
  #draining: Promise<unknown> = Promise.resolve();
  #drainInFlight = false;
  #closed = false;

  constructor(opts: AuditLogOptions) {
    this.#pool = opts.pool;
    this.#spool = new Spool(opts.spoolDir);
    this.#signer = opts.signer;
    this.#checkpointDir = opts.checkpointDir;
    this.#checkpointEvery = positiveInt('checkpointEvery', opts.checkpointEvery ?? 100);
    this.#insertTimeoutMs = positiveInt('insertTimeoutMs', opts.insertTimeoutMs ?? 500);
    const drainIntervalMs = positiveInt('drainIntervalMs', opts.drainIntervalMs ?? 1000);
    this.#warn = opts.onWarning ?? ((message, err) => console.warn(message, err ?? ''));
    // Without a listener, an idle connection dropped by Postgres would crash the process.
    this.#pool.on('error', this.#onPoolError);
    this.#timer = setInterval(() => this.#backgroundDrain(), drainIntervalMs);
    this.#timer.unref();
  }

  /** Records one event: in the chain, or durably in the spool when Postgres is unavailable. */
  async append(event: AuditEvent): Promise<void> {
    if (this.#closed) throw new Error('AuditLog is closed');
    const work = this.#append(toEntry(event));
    this.#track(work); // close() waits for it
    return work;
  }

  async #append(entry: AuditEntry): Promise<void> {
    if (this.#spool.ownPath === undefined) {
      try {
        this.#afterInsert(await insertEntries(this.#pool, [entry], this.#insertTimeoutMs));
        return;
      } catch (err) {
        this.#warn('audit: Postgres insert failed; spooling', err);
      }
    }
    await this.#spool.write(entry);
  }

  /**
   * Moves every spooled event (this process's, and orphans of crashed ones) into the chain, in
   * order, skipping any already stored, and waits for pending checkpoints. Resolves to the number
   * inserted; rejects if Postgres is still unavailable or a spool file is corrupt (what was not
   * drained stays spooled).
   */
  drain(): Promise<number> {
    const run = this.#draining.then(() => this.#drainAll());
    this.#draining = run.catch(() => undefined);
    return run;
  }

  /** Signs a checkpoint over the newest entry now; undefined while the log is empty. */
  async checkpoint(): Promise<Checkpoint | undefined> {
    const head = await chainHead(this.#pool);
    if (!head) return undefined;
    const checkpoint = await signCheckpoint(this.#signer, head);
    await recordCheckpoint(this.#pool, this.#checkpointDir, checkpoint);
    return checkpoint;
  }

  /** Stops the drainer, finishes pending work and tries a last drain; what stays spooled is drained on the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.allSettled(this.#background);
    await this.drain().catch((err: unknown) => this.#warn('audit: events remain spooled until the next start', err));
    await Promise.allSettled(this.#background);
    await this.#spool.close();
    this.#pool.off('error', this.#onPoolError);
  }

  async #drainAll(): Promise<number> {
    let inserted = 0;
    let failure: unknown;
    const orphans = await this.#spool.claimOrphans();
    const own = this.#spool.ownPath;
    // Orphans first: they are older than anything this process spooled. A file that fails is
    // released (claimable again) and the others still drain.
    for (const path of [...orphans, ...(own === undefined ? [] : [own])]) {
      try {
        inserted += await this.#drainFile(path, path === own);
      } catch (err) {
        failure ??= err;
        if (path !== own) this.#spool.release([path]);
      }
    }
    await Promise.allSettled(this.#checkpoints);
    if (failure !== undefined) throw failure;
    return inserted;
  }

  async #drainFile(path: string, own: boolean): Promise<number> {
    let inserted = 0;
    let from = 0;
    for (;;) {
      const chunk = await readSpool(path, from, !own);
      if (chunk.tornBytes > 0) this.#warn(`audit: ignored a torn last line (${chunk.tornBytes} bytes) in ${path}`);
      inserted += await this.#insert(chunk.entries);
      from = chunk.next;
      if (!own) {
        await this.#spool.removeClaimed(path);
        return inserted;
      }
      if (await this.#spool.releaseOwn(path, from)) return inserted;
    }
  }

  async #insert(entries: readonly AuditEntry[]): Promise<number> {
    let inserted = 0;
    for (let i = 0; i < entries.length; i += DRAIN_BATCH) {
      const batch = entries.slice(i, i + DRAIN_BATCH);
      const links = await insertEntries(this.#pool, batch, DRAIN_TIMEOUT_MS);
      this.#afterInsert(links);
      // An insert that timed out on our side may still have committed: those events were skipped just
      // now as already stored, and nobody signed the checkpoints their seqs were due. Sign them here.
      const missed = await this.#uncheckpointed(batch.map((e) => e.id), new Set(links.map((l) => l.seq)));
      this.#afterInsert(missed);
      inserted += links.length;
    }
    return inserted;
  }

  /** Stored links of these events whose seq is due a checkpoint that does not exist (excluding `handled`). */
  async #uncheckpointed(eventIds: readonly string[], handled: ReadonlySet<number>): Promise<ChainLink[]> {
    const { rows } = await this.#pool.query<{ seq: string; hash: Buffer }>(
      `SELECT l.seq, l.hash FROM audit_log l
       WHERE l.event_id = ANY($1::uuid[]) AND l.seq % $2 = 0
         AND NOT EXISTS (SELECT 1 FROM audit_checkpoints c WHERE c.seq = l.seq)`,
      [eventIds, this.#checkpointEvery],
    );
    return rows.map((r) => ({ seq: Number(r.seq), hash: r.hash })).filter((l) => !handled.has(l.seq));
  }

  /** Signs a checkpoint, in the background, over every inserted link whose seq is a multiple of checkpointEvery. */
  #afterInsert(links: readonly ChainLink[]): void {
    for (const link of links.filter((l) => l.seq % this.#checkpointEvery === 0)) {
      const work = withTimeout(
        signCheckpoint(this.#signer, link).then((c) => recordCheckpoint(this.#pool, this.#checkpointDir, c)),
        DRAIN_TIMEOUT_MS,
        'audit checkpoint',
      ).catch((err: unknown) => this.#warn(`audit: checkpoint at seq ${link.seq} failed`, err));
      this.#track(work);
      this.#checkpoints.add(work);
      void work.then(() => this.#checkpoints.delete(work));
    }
  }

  #backgroundDrain(): void {
    if (this.#drainInFlight || this.#closed) return;
    this.#drainInFlight = true;
    this.#track(
      this.drain()
        .catch((err: unknown) => this.#warn('audit: drain failed; retrying', err))
        .finally(() => {
          this.#drainInFlight = false;
        }),
    );
  }

  #track(work: Promise<unknown>): void {
    this.#background.add(work);
    const done = (): boolean => this.#background.delete(work);
    work.then(done, done);
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`AuditLog: ${name} must be a positive integer, got ${value}`);
  return value;
}
