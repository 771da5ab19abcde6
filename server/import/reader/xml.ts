import { SaxesParser } from 'saxes';

/**
 * Streaming XML for the parts of a workbook, through saxes (the parser exceljs uses). Element
 * names reach the handler without their namespace prefix: SpreadsheetML written as
 * `<x:row>` (.NET exports, Tencent Office) means the same as `<row>`. Only the predefined
 * entities are known, so a DOCTYPE's entities (billion laughs, external files) fail the parse.
 */
export interface XmlHandler {
  open(name: string, attributes: Record<string, string>): void;
  /** Character data, text or CDATA, possibly in several pieces. */
  text(text: string): void;
  close(name: string): void;
}

/** Parses the chunks with the handler, yielding after each chunk's events. */
export async function* parseXml(
  chunks: AsyncIterable<Buffer>,
  handler: XmlHandler,
): AsyncGenerator<void> {
  const parser = new SaxesParser({ xmlns: false, position: false });
  let failure: Error | undefined;
  parser.on('error', (error) => {
    failure ??= error;
  });
  parser.on('opentag', (tag) => {
    handler.open(localName(tag.name), tag.attributes as Record<string, string>);
  });
  parser.on('closetag', (tag) => handler.close(localName(tag.name)));
  parser.on('text', (text) => handler.text(text));
  parser.on('cdata', (text) => handler.text(text));
  // Decoded as a stream, so a character split across two chunks is kept.
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of chunks) {
    parser.write(decoder.decode(chunk, { stream: true }));
    if (failure) throw failure;
    yield;
  }
  parser.write(decoder.decode());
  parser.close();
  if (failure) throw failure;
  yield;
}

export function localName(name: string): string {
  return name.slice(name.indexOf(':') + 1);
}

/**
 * A namespaced attribute by its local name, whatever its prefix: `r:id`, `relationships:id`
 * and `ns:id` are the same relationship id.
 */
export function prefixedAttribute(
  attributes: Record<string, string>,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(attributes)) {
    if (key.includes(':') && localName(key) === name) return value;
  }
  return undefined;
}

/** Excel's `_xHHHH_` escapes (`_x000D_` is a carriage return; `_x005F_` an underscore). */
export function decodeEscapes(text: string): string {
  if (!text.includes('_x')) return text;
  return text.replace(/_x([0-9A-Fa-f]{4})_/g, (_match, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}
