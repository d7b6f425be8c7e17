// Listen addresses in the configuration's `host:port` form (as mk3's baseserver writes them).

export interface ListenAddress {
  /** The host to bind; `::`/`0.0.0.0`-style "every interface" when the address had none. */
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (every interface, as Go's net.Listen reads it).
 * Port 0 asks for any free port. Throws a plain Error naming the address: the configuration
 * module validates addresses first, so this only fires for a programming error.
 */
export function parseListenAddress(address: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(address)} (expected host:port)`);
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '::' : host, port };
}

/** `host:port` again, with brackets around an IPv6 host: what URLs and gRPC targets need. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
