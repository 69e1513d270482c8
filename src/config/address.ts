// Network addresses as the configuration writes them: `[host]:port`. One parser serves the bind
// settings (-raft, -grpc, -http), the peer list and -advertise, and the transport and the gRPC
// server use formatAddress to print and dial them, so an address reads the same everywhere.

import { isIPv6 } from 'node:net';

/** A host and a port. `host` is '' for "all interfaces"; an IPv6 host is kept without brackets. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Thrown by parseAddress; `rule` is the sentence a configuration error quotes. */
export class AddressError extends Error {
  readonly rule: string;

  constructor(text: string, rule: string) {
    super(`invalid address ${JSON.stringify(text)}: ${rule}`);
    this.name = 'AddressError';
    this.rule = rule;
  }
}

export interface ParseAddressOptions {
  /** The port a bare host means (peers: 12000). Without it, an address needs its `:port`. */
  readonly defaultPort?: number;
  /** Whether an empty host (`:12000`, "all interfaces") is accepted; true for bind addresses. */
  readonly allowEmptyHost?: boolean;
}

/** The longest host name DNS allows; a longer host can never resolve. */
const maximumHostLength = 253;

// Host names, IPv4 addresses and node ids share one character set, so a node id can be used as a
// peer's host (the compose layout names containers after their node ids). Underscores are not
// legal in DNS names but are legal container names, hence accepted.
const hostPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Parses `host:port`, `:port`, `[ipv6]:port`, or a bare `host` / `[ipv6]` when `defaultPort` is
 * given. Throws AddressError naming the broken rule.
 */
export function parseAddress(text: string, options: ParseAddressOptions = {}): Address {
  const result = readAddress(text, options);
  if (typeof result === 'string') throw new AddressError(text, result);
  return result;
}

/** Formats an address so that parseAddress reads it back: IPv6 hosts go in brackets. */
export function formatAddress(address: Address): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** Whether binding to this host listens on every interface, so peers cannot dial it as written. */
export function isWildcardHost(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::';
}

/** Like parseAddress, but returns the broken rule instead of throwing (for collecting errors). */
export function readAddress(text: string, options: ParseAddressOptions = {}): Address | string {
  if (text.trim() === '') return 'must not be empty; expected [host]:port, e.g. ":12000" or "node1:12000"';
  if (text !== text.trim()) return 'must not contain spaces';

  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const closing = text.indexOf(']');
    if (closing < 0) return 'an IPv6 host opened with "[" must be closed with "]"';
    host = text.slice(1, closing);
    const rest = text.slice(closing + 1);
    if (rest !== '' && !rest.startsWith(':')) return 'after "[ipv6]" only ":port" may follow';
    portText = rest === '' ? undefined : rest.slice(1);
    if (!isIPv6(host)) return `"${host}" in brackets is not an IPv6 address`;
  } else {
    const colons = text.split(':').length - 1;
    // An unbracketed IPv6 address cannot be told apart from its port: "::1:12000" could be
    // host "::1" port 12000 or host "::1:12000" with no port.
    if (colons > 1) return 'an IPv6 host must be written in brackets, e.g. "[::1]:12000"';
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (host === '') {
      if (options.allowEmptyHost !== true) return 'needs a host before ":port"';
    } else if (host.length > maximumHostLength) {
      return `host must be at most ${maximumHostLength} characters`;
    } else if (!hostPattern.test(host)) {
      return `host "${host}" may contain only letters, digits, ".", "_" and "-", and must start with a letter, digit or "_"`;
    }
  }

  if (portText === undefined) {
    if (options.defaultPort === undefined) return 'needs a port: [host]:port, e.g. ":12000" or "node1:12000"';
    return { host, port: options.defaultPort };
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return `port "${portText}" must be a number from 1 to 65535`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} must be from 1 to 65535`;
  return { host, port };
}
