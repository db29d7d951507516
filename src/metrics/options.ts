// The command-line options of a served port (metrics, dashboard), one definition for every
// component: bind address, port, and the access options both ports share.
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { portNumber } from '../cli/commander.js';
import type { HttpAuth } from './http.js';

/** Adds --<name>-port and --<name>-host. */
export function addListenOptions(cmd: Command, name: 'metrics' | 'dashboard', what: string, defaultHost = '0.0.0.0'): Command {
  return cmd
    .addOption(new Option(`--${name}-port <port>`, `serve ${what} on this port (off when absent; 0 = any free port)`).argParser(portNumber))
    .option(`--${name}-host <addr>`, `address for the ${name} listener`, defaultHost);
}

/** Adds the access options shared by the metrics and dashboard ports. */
export function addAuthOptions(cmd: Command): Command {
  return cmd
    .option('--http-token-file <file>', 'metrics/dashboard: require "Authorization: Bearer <token>" with the token in this file')
    .option('--http-tls-cert <file>', 'metrics/dashboard: serve HTTPS with this certificate (PEM)')
    .option('--http-tls-key <file>', 'metrics/dashboard: its private key (PEM)')
    .option('--http-tls-ca <file>', 'metrics/dashboard: require client certificates signed by this CA (mutual TLS)');
}

export interface AuthFlags {
  httpTokenFile?: string;
  httpTlsCert?: string;
  httpTlsKey?: string;
  httpTlsCa?: string;
}

/** Reads the files the flags name; a problem is an Error whose message names the flag. */
export async function readAuth(o: AuthFlags): Promise<HttpAuth> {
  if ((o.httpTlsCert === undefined) !== (o.httpTlsKey === undefined)) throw new Error('--http-tls-cert and --http-tls-key go together');
  if (o.httpTlsCa !== undefined && o.httpTlsCert === undefined) throw new Error('--http-tls-ca needs --http-tls-cert and --http-tls-key (mutual TLS is served over HTTPS)');
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  const auth: HttpAuth = {};
  if (o.httpTokenFile !== undefined) {
    const token = (await read('--http-token-file', o.httpTokenFile)).toString('utf8').trim();
    if (token === '') throw new Error(`--http-token-file ${o.httpTokenFile}: the file is empty`);
    auth.bearerToken = token;
  }
  if (o.httpTlsCert !== undefined && o.httpTlsKey !== undefined) {
    auth.tls = {
      cert: await read('--http-tls-cert', o.httpTlsCert),
      key: await read('--http-tls-key', o.httpTlsKey),
      ...(o.httpTlsCa !== undefined ? { ca: await read('--http-tls-ca', o.httpTlsCa) } : {}),
    };
  }
  return auth;
}
