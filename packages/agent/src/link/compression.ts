import { availableCodecs, type HelloMessage, type MakeHelloOptions } from '@mimic/wire';

/*
 * What a hello says of compression. The fields travel only when a side asks for it, so a peer
 * that predates them never meets them: a node that asks lists the codecs it decodes and sets
 * `compress`; a mirror answering a primary's hello that listed codecs lists its own. The primary
 * then picks one both have (chooseCodec) and names it in its welcome.
 */
export function helloCompression(
  ask: boolean,
  peer: HelloMessage | null,
): Pick<MakeHelloOptions, 'codecs' | 'compress'> {
  if (!ask && peer?.codecs === undefined) return {};
  return { codecs: availableCodecs(), ...(ask ? { compress: true } : {}) };
}

/** `hello` with what it says of compression added (see helloCompression). */
export function withCompression(
  hello: HelloMessage,
  ask: boolean,
  peer: HelloMessage | null = null,
): HelloMessage {
  const { codecs, compress } = helloCompression(ask, peer);
  return { ...hello, ...(codecs ? { codecs: [...codecs] } : {}), ...(compress ? { compress } : {}) };
}
