/** Named float32 arrays in one little-endian binary blob, with a JSON-able index. */

export interface PackedEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

export interface NamedArray {
  shape: number[];
  values: Float32Array;
}

export function packFloats(arrays: Readonly<Record<string, NamedArray>>): {
  index: PackedEntry[];
  bytes: Uint8Array;
} {
  const index: PackedEntry[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(arrays)) {
    index.push({ name, shape: a.shape, offset, length: a.values.length });
    offset += a.values.length;
  }
  const bytes = new Uint8Array(offset * 4);
  const view = new DataView(bytes.buffer);
  for (const entry of index) {
    const values = arrays[entry.name]!.values;
    for (let i = 0; i < values.length; i++) view.setFloat32((entry.offset + i) * 4, values[i]!, true);
  }
  return { index, bytes };
}

/** `what` names the file in the error when the blob is shorter than the index says. */
export function unpackFloats(
  index: readonly PackedEntry[],
  raw: Uint8Array,
  what: string,
): Record<string, NamedArray> {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Record<string, NamedArray> = {};
  for (const entry of index) {
    if ((entry.offset + entry.length) * 4 > raw.byteLength) throw new Error(`${what} is truncated`);
    const values = new Float32Array(entry.length);
    for (let i = 0; i < entry.length; i++) values[i] = view.getFloat32((entry.offset + i) * 4, true);
    out[entry.name] = { shape: entry.shape, values };
  }
  return out;
}
