import { posix } from 'node:path';
import { builtInFormat, type CellFormat, classify, GENERAL } from './number-formats.js';
import { decodeEscapes, prefixedAttribute, type XmlHandler } from './xml.js';

/**
 * Handlers for the parts of a workbook package other than worksheets: relationships, the
 * workbook, styles and shared strings. Parts are found through relationships, as Excel finds
 * them, never by name: Numbers names its sheets `sheet.xml`, `Sheet1.xml`; others write
 * `xl/SharedStrings.xml`.
 */

export interface PartParser<T> {
  handler: XmlHandler;
  result(): T;
}

export interface Relationship {
  id: string;
  /** The relationship type's last segment: `officeDocument`, `worksheet`, `styles`… */
  type: string;
  /** The part it points to, resolved to a name within the package. */
  target: string;
}

/** The relationships part of a part: `xl/workbook.xml` → `xl/_rels/workbook.xml.rels`. */
export function relationshipsPartOf(partName: string): string {
  const directory = posix.dirname(partName);
  return posix.join(
    directory === '.' ? '' : directory,
    '_rels',
    `${posix.basename(partName)}.rels`,
  );
}

export function relationshipsParser(sourcePart: string): PartParser<Relationship[]> {
  const relationships: Relationship[] = [];
  const directory = posix.dirname(sourcePart);
  return {
    handler: {
      open(name, attributes) {
        if (name !== 'Relationship' || attributes.TargetMode === 'External') return;
        const { Id: id, Type: type, Target: target } = attributes;
        if (!id || !type || !target) return;
        const path = target.replace(/\\/g, '/');
        relationships.push({
          id,
          type: type.slice(type.lastIndexOf('/') + 1),
          target: path.startsWith('/')
            ? posix.normalize(path.slice(1))
            : posix.normalize(posix.join(directory, path)),
        });
      },
      text() {},
      close() {},
    },
    result: () => relationships,
  };
}

export interface WorkbookSheet {
  name: string;
  state: string;
  relationshipId: string | undefined;
  /** Its position among all the workbook's sheets (what `activeTab` counts). */
  tabIndex: number;
}

export interface WorkbookInfo {
  sheets: WorkbookSheet[];
  /** `date1904` is "1" from Excel, "true" from LibreOffice. */
  date1904: boolean;
  activeTab: number;
}

export function workbookParser(): PartParser<WorkbookInfo> {
  const info: WorkbookInfo = { sheets: [], date1904: false, activeTab: 0 };
  let seenView = false;
  return {
    handler: {
      open(name, attributes) {
        if (name === 'sheet') {
          info.sheets.push({
            name: attributes.name ?? '',
            state: attributes.state ?? 'visible',
            relationshipId: prefixedAttribute(attributes, 'id'),
            tabIndex: info.sheets.length,
          });
        } else if (name === 'workbookPr') {
          info.date1904 = isTrue(attributes.date1904);
        } else if (name === 'workbookView' && !seenView) {
          seenView = true;
          info.activeTab = Number(attributes.activeTab ?? 0) || 0;
        }
      },
      text() {},
      close() {},
    },
    result: () => info,
  };
}

function isTrue(value: string | undefined): boolean {
  return value === '1' || value?.toLowerCase() === 'true';
}

/** The format of each cell style (`s` attribute of a cell) by its index. */
export function stylesParser(): PartParser<CellFormat[]> {
  const codes = new Map<number, string>();
  const styleFormatIds: number[] = [];
  let inCellStyles = false;
  return {
    handler: {
      open(name, attributes) {
        if (name === 'numFmt' && attributes.numFmtId && attributes.formatCode !== undefined) {
          codes.set(Number(attributes.numFmtId), attributes.formatCode);
        } else if (name === 'cellXfs') {
          inCellStyles = true;
        } else if (name === 'xf' && inCellStyles) {
          styleFormatIds.push(Number(attributes.numFmtId ?? 0));
        }
      },
      text() {},
      close(name) {
        if (name === 'cellXfs') inCellStyles = false;
      },
    },
    result: () => {
      const formats = new Map<number, CellFormat>();
      return styleFormatIds.map((id) => {
        let format = formats.get(id);
        if (!format) {
          const code = codes.get(id);
          format = code === undefined ? builtInFormat(id) : classify(code);
          formats.set(id, format);
        }
        return format ?? GENERAL;
      });
    },
  };
}

/**
 * The shared strings, each the text of its runs (`<t>`, or `<r><t>` for rich text) with
 * `_xHHHH_` escapes decoded. Phonetic runs (`<rPh>`, the reading of Japanese or Chinese text
 * shown above it) are not the text and are left out.
 */
export function sharedStringsParser(): PartParser<string[]> {
  const strings: string[] = [];
  let current = '';
  let inString = false;
  let inText = false;
  let phoneticDepth = 0;
  return {
    handler: {
      open(name) {
        if (name === 'si') {
          inString = true;
          current = '';
        } else if (name === 'rPh') {
          phoneticDepth += 1;
        } else if (name === 't' && inString && phoneticDepth === 0) {
          inText = true;
        }
      },
      text(text) {
        if (inText) current += text;
      },
      close(name) {
        if (name === 't') {
          inText = false;
        } else if (name === 'rPh') {
          phoneticDepth -= 1;
        } else if (name === 'si') {
          strings.push(decodeEscapes(current));
          inString = false;
        }
      },
    },
    result: () => strings,
  };
}
