// Reads the text chunks of a PNG file (tEXt, and uncompressed iTXt): SaveImage stores the API
// prompt under "prompt" and the UI workflow under "workflow", which a dropped PNG restores.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** {keyword: text} for every tEXt / uncompressed iTXt chunk of the PNG in `buffer`. */
export function readPngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b)) return null;
  const view = new DataView(buffer);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  const out = {};
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = latin1.decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (type === "tEXt") {
      const sep = data.indexOf(0);
      // ComfyUI writes JSON into tEXt as UTF-8 even though the spec says Latin-1.
      if (sep > 0) out[latin1.decode(data.subarray(0, sep))] = utf8.decode(data.subarray(sep + 1));
    } else if (type === "iTXt") {
      const sep = data.indexOf(0);
      const compressed = data[sep + 1];
      let p = data.indexOf(0, sep + 3);      // end of language tag
      p = data.indexOf(0, p + 1);            // end of translated keyword
      if (sep > 0 && compressed === 0 && p > 0) out[latin1.decode(data.subarray(0, sep))] = utf8.decode(data.subarray(p + 1));
    } else if (type === "IEND") {
      break;
    }
    pos += 12 + length;
  }
  return out;
}

/** Parse JSON that may hold bare NaN/Infinity (Python's json.dumps writes them). */
export function parseLooseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.replace(/\bNaN\b|-?\bInfinity\b/g, "null"));
  }
}
