import net from 'node:net';

/**
 * A TCP proxy in front of a real server (here Postgres) that a test can cut: cut() destroys every
 * connection and refuses new ones (accepted, then reset at once) until restore(). Lets one test
 * simulate an outage without stopping the shared server other test files use.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;

  private constructor(target: { host: string; port: number }) {
    this.#server = net.createServer((client) => {
      if (this.#cut) {
        client.resetAndDestroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      this.#pair(client, upstream);
      this.#pair(upstream, client);
    });
  }

  /** Listens on an ephemeral port of 127.0.0.1 and forwards every connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  /** The port the proxy listens on. */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('tcp proxy is not listening');
    return address.port;
  }

  /** Drops every open connection and refuses new ones. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Accepts connections again. */
  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Pipes `from` into `to`; when either side fails or closes, both go. */
  #pair(from: net.Socket, to: net.Socket): void {
    this.#sockets.add(from);
    from.on('error', () => to.destroy());
    from.on('close', () => {
      this.#sockets.delete(from);
      to.destroy();
    });
    from.pipe(to);
  }
}
